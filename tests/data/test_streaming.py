"""The data stage streams: normalising a file holds a bounded number of rows in memory, whatever
the file's length (the 10^6-row measurement is bench/data/run.py; this is its modest-size check).

    .venv/bin/pytest tests/data/test_streaming.py -q
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftlab.data.formats import load_examples, read_examples
from ftlab.data.stage import run_data
from ftlab.spec.schema import Dataset
from ftlab.contract import StageContext
from ftlab.contract.inputs import DataInputs

ROWS = 12_000  # x ~1 kB = ~12 MB of JSONL: big enough that holding it would show, ~2 s to stream


def big_rows(n: int) -> list[dict]:
    filler = "lorem ipsum dolor sit amet " * 36  # ~970 characters
    return [{"id": i, "prompt": f"Problem {i}: {filler}", "completion": f"#### {i}"} for i in range(n)]


def write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)  # one row group: a column chunk is the file
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def peak_mb(fn) -> float:
    """Peak Python heap of fn() in MB (tracemalloc sees every Python object the stage makes)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def stage(path: Path, out: Path):
    out.mkdir()
    inputs = DataInputs(dataset=Dataset(name="train", role="train", path=path.name), file=str(path), labels=None,
                        label_field=None, positive=None)
    return lambda: run_data(inputs, StageContext(out, out.parent))


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_stage_memory_does_not_grow_with_the_file(tmp_path: Path, suffix: str):
    small = write(tmp_path / f"small{suffix}", big_rows(ROWS // 10))
    big = write(tmp_path / f"big{suffix}", big_rows(ROWS))
    size_mb = (tmp_path / "big.jsonl").stat().st_size / 1e6 if suffix == ".jsonl" else ROWS * 1.0e-3
    small_peak = peak_mb(stage(small, tmp_path / "out_small"))
    big_peak = peak_mb(stage(big, tmp_path / "out_big"))
    # Holding the rows costs ~1.7x their text (a list of Examples: ~21 MB here); streaming keeps
    # a batch (1,024 parquet rows ~1 MB) plus the write buffer (1 MiB).
    assert big_peak < 6, (small_peak, big_peak)
    assert big_peak < small_peak + 2, (small_peak, big_peak)
    listed = peak_mb(lambda: load_examples(big))
    assert listed > size_mb > 3 * big_peak, (listed, size_mb, big_peak)  # what the stage does not do
    assert len(read_examples(tmp_path / "out_big" / "examples.jsonl")) == ROWS


def test_bad_row_in_a_streamed_file_leaves_no_output(tmp_path: Path):
    rows = big_rows(3000)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"prompt": "late"}\n')
    out = tmp_path / "out"
    with pytest.raises(Exception, match="line 3001: has 'prompt' but no 'completion'"):
        stage(path, out)()
    assert list(out.iterdir()) == []  # the half-written examples.jsonl was a temporary file, removed
