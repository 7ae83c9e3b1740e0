"""The checkout itself: no merge-conflict markers left in any tracked text file (a merge once left
them in BENCHMARKS.md, and nothing else noticed)."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.M)


def test_no_merge_conflict_markers():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = REPO / name
        if path.suffix in (".parquet", ".arrow", ".png", ".sqlite") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in MARKER.finditer(text)]
    assert not found, f"merge-conflict markers: {found[:10]}"
