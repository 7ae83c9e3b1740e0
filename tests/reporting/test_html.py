"""report/index.html renders in real headless Chromium: not blank, no console errors, self-contained."""

from __future__ import annotations

import os
import re

import pytest

from tests.reporting.chromium import chromium, pixel_spread, render

pytestmark = pytest.mark.slow


def _need_chromium():
    if chromium() is None:
        if os.environ.get("FTLAB_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (scripts/chromium-local.sh install)")
        pytest.skip("chromium not installed (scripts/chromium-local.sh install)")


def test_the_detector_sees_errors_and_blank_pages(tmp_path):
    _need_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script></body></html>")
    shot = render(bad, width=800, height=600)
    assert any("boom" in e for e in shot.errors) and any("nope" in e for e in shot.errors)
    std, inked = pixel_spread(shot.png)
    assert std < 5 and inked < 0.01  # a blank page reads as blank


def test_report_renders_in_chromium(finished, tmp_path):
    _need_chromium()
    page = finished.parent / "out" / "report" / "index.html"
    text = page.read_text()
    # Self-contained: no scripts, nothing fetched over the network; plots are inline PNGs.
    assert "<script" not in text and not re.search(r"(src|href)=['\"]https?://", text)
    assert text.count("data:image/png;base64,") >= 5
    for section in ("Summary", "Checks", "Aggregated results", "Plots", "Runs", "Provenance"):
        assert f">{section}</h2>" in text
    assert "easy bar" in text and "holds" in text and "r1-" in text and "torch" in text
    shot = render(page)
    (tmp_path / "report.png").write_bytes(shot.png)
    assert shot.errors == []
    assert shot.title == "reptiny: ftlab report"
    std, inked = pixel_spread(shot.png)
    assert std > 20 and inked > 0.03, (std, inked)  # text, tables and plots on the first screen
