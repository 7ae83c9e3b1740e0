"""The checkout itself: no merge-conflict markers left in any tracked text file (a merge once left
them in BENCHMARKS.md, and nothing else noticed); the suite's xdist lanes name tests that exist."""

from __future__ import annotations

import ast
import re
import subprocess

from tests.conftest import LANES, ORDER, REPO

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


def test_each_lane_names_a_test_that_exists():
    # a renamed real-model test would silently leave its lane and share a worker with the other
    for prefix, name in LANES.items():
        path, _, function = prefix.partition("::")
        assert (REPO / path).exists(), prefix
        if function:
            tree = ast.parse((REPO / path).read_text())
            assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, prefix
    assert set(ORDER) <= set(LANES.values())
