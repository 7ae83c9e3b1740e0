"""A data task killed midway (SIGKILL: no cleanup runs) leaves no examples.jsonl and no done
marker; the re-run leaves no temp file behind and writes what a clean run writes (issue 22).

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/data/test_interrupt.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ftlab.cli import main
from tests.conftest import write_spec

# The child wraps the data stage's reader so that it kills its own process after 500 rows: a
# real kill at a known point, with the temp file open and half written.
KILLER = """
import os, signal, sys
import ftlab.data.stage as stage
real = stage.iter_examples
def dying(*a, **kw):
    for n, e in enumerate(real(*a, **kw)):
        if n == 500:
            os.kill(os.getpid(), signal.SIGKILL)
        yield e
stage.iter_examples = dying
from ftlab.cli import main
sys.exit(main(["run", sys.argv[1], "--only", "data"]))
"""


def _spec(d: Path) -> Path:
    d.mkdir()
    rows = [{"prompt": f"question {i}", "completion": "P" if i % 3 else "N"} for i in range(2000)]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = write_spec(d)
    spec.write_text(spec.read_text().replace("generate: {name: hem, n: 240, seed: 0}", "path: train.jsonl"))
    return spec


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("_started.json", "_done.json") and p.suffix != ".sqlite"
            and "registry" not in p.name}


def test_killed_data_task_leaves_no_output_and_rerun_is_identical(tmp_path: Path):
    killed, clean = _spec(tmp_path / "killed"), _spec(tmp_path / "clean")
    proc = subprocess.run([sys.executable, "-c", KILLER, str(killed)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    data = killed.parent / "out" / "data"
    train = [d for d in data.iterdir() if d.name.startswith("train")]
    assert len(train) == 1 and not (train[0] / "examples.jsonl").exists() and not (train[0] / "_done.json").exists()
    assert [p.name for p in train[0].glob("*.tmp")] != []  # the half-written temp file, as SIGKILL leaves it
    assert main(["run", str(killed), "--only", "data"]) == 0
    assert list(data.rglob("*.tmp")) == []
    assert main(["run", str(clean), "--only", "data"]) == 0
    assert _files(killed.parent / "out" / "data") == _files(clean.parent / "out" / "data")
