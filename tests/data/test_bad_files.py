"""Hostile data files give one located DataError, never a traceback or a hang (issue 22).

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/data/test_bad_files.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftlab.data.formats import load_examples
from ftlab.data.sources import data_digest
from ftlab.errors import DataError, FtlabError
from tests.conftest import write_spec

GOOD = '{"prompt": "a", "completion": "P"}'
DEEP = "[" * 5000 + "]" * 5000  # past Python's recursion limit (1,000) in json's C decoder
NESTED_100 = "[" * 100 + "]" * 100  # decodes, but deeper than any chat row needs


def _error(path: Path, **kw) -> str:
    with pytest.raises(DataError) as info:
        load_examples(path, labels=["P", "N"], **kw)
    return str(info.value)


@pytest.mark.parametrize("inner", [DEEP, NESTED_100], ids=["past-recursion-limit", "100-levels"])
def test_deep_json_line_is_a_located_row_problem(tmp_path: Path, inner: str):
    path = tmp_path / "train.jsonl"
    path.write_text(f'{GOOD}\n{{"prompt": {inner}, "completion": "P"}}\n')
    assert _error(path) == f"{path}, line 2: nested more than 64 levels deep; flatten the row (chat rows need 4 levels)"


def test_deep_json_file_item_is_located(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_text(f'[{GOOD},\n{{"prompt": {DEEP}, "completion": "P"}}]')
    assert _error(path).startswith(f"{path}, line 2: nested more than 64 levels deep")


def test_deep_registry_is_one_error(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    path.write_text('{"d": ' + DEEP + "}")
    with pytest.raises(DataError, match="dataset_info.json: nested more than 64"):
        data_digest(path, "d")


def test_lone_surrogate_is_rejected_with_its_field(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    pair = '{"prompt": "smile \\ud83d\\ude00", "completion": "P"}'  # a surrogate pair is an emoji: fine
    path.write_text(f'{pair}\n{{"prompt": "x\\ud800y", "completion": "P"}}\n')
    assert _error(path).startswith(f"{path}, line 2: 'prompt' holds a lone UTF-16 surrogate")
    path = tmp_path / "train.json"
    path.write_text('[{"messages": [{"role": "user", "content": "q\\udc00"}, {"role": "assistant", "content": "P"}]}]')
    assert _error(path).startswith(f"{path}, line 1: 'messages[0].content' holds a lone UTF-16 surrogate")
    path.write_text(f"[{pair}]")
    assert load_examples(path, labels=["P"])[0].prompt[0]["content"] == "smile \U0001f600"


def test_io_error_while_reading_is_located(tmp_path: Path):
    # /proc/self/mem stats as a regular file and answers every read at offset 0 with EIO: a real I/O error.
    path = tmp_path / "train.jsonl"
    path.symlink_to("/proc/self/mem")
    assert _error(path) == f"{path}, line 1: cannot read the file (Input/output error); check the disk"
    with pytest.raises(DataError, match=r"train.jsonl: cannot read the file \(Input/output error\)"):
        data_digest(path)


def test_permission_denied_while_hashing_is_one_error(tmp_path: Path, monkeypatch):
    # Tests run as root, whom chmod 000 does not stop; the module's open stands in for the kernel's answer.
    from ftlab.data import sources

    path = tmp_path / "train.jsonl"
    path.write_text(GOOD + "\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources, "open", denied, raising=False)
    with pytest.raises(DataError, match=r"train.jsonl: cannot read the file \(Permission denied\)"):
        data_digest(path)


def test_fifo_and_non_dataset_directory_are_refused_before_reading(tmp_path: Path):
    fifo = tmp_path / "train.jsonl"
    os.mkfifo(fifo)  # opening it would block until a writer came
    for call in (lambda: data_digest(fifo), lambda: load_examples(fifo)):
        with pytest.raises(DataError, match="train.jsonl: is a FIFO"):
            call()
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"\0" * (1 << 20))
    with pytest.raises(DataError, match="data: is a directory but not an HF dataset"):
        data_digest(folder)


def _bad_path_spec(tmp_path: Path, name: str) -> Path:
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("generate: {name: hem, n: 240, seed: 0}", f"path: {name}"))
    return spec


@pytest.mark.parametrize("command", [["run", "--dry-run"], ["status"], ["plan"]], ids=" ".join)
def test_run_and_status_refuse_a_fifo_without_hanging(tmp_path: Path, command):
    os.mkfifo(tmp_path / "train.jsonl")
    spec = _bad_path_spec(tmp_path, "train.jsonl")
    proc = subprocess.run([sys.executable, "-m", "ftlab.cli", command[0], str(spec), *command[1:]],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    if proc.returncode != 0:  # plan may not read the data at all
        assert "datasets 'train' (path: train.jsonl): " in out
        assert "train.jsonl: is a FIFO (named pipe), not a data file" in out
        assert out.count("is a FIFO") == 1


def test_run_refuses_an_unreadable_file_in_one_line(tmp_path: Path):
    (tmp_path / "train.jsonl").symlink_to("/proc/self/mem")
    spec = _bad_path_spec(tmp_path, "train.jsonl")
    for command in (["run", str(spec), "--dry-run"], ["validate", str(spec)]):
        proc = subprocess.run([sys.executable, "-m", "ftlab.cli", *command], capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "Traceback" not in out, out
        assert "train.jsonl" in out and "cannot read the file (Input/output error)" in out, out


def test_mlflow_tracking_dir_that_cannot_be_created(tmp_path: Path):
    from ftlab.reporting.mlflow_export import tracking_uri

    (tmp_path / "file").write_text("")
    for target in (tmp_path / "file" / "store", (tmp_path / "file" / "store").as_uri()):
        with pytest.raises(FtlabError, match=r"--tracking-uri .*: cannot create the directory .*; give a directory you can write to"):
            tracking_uri(target)
    assert tracking_uri(tmp_path / "store") == (tmp_path / "store").as_uri()
    assert json.dumps(tracking_uri("http://host:5000")) == '"http://host:5000"'


@pytest.mark.parametrize("bad_line", [2, 4, 3000], ids=["first-row", "early", "far-in"])
def test_invalid_utf8_in_csv_is_reported_on_its_own_line(tmp_path: Path, bad_line: int):
    # A text stream decodes 8 kB ahead of the csv reader, so the line used to be 0 or thousands off.
    lines = [b"prompt,completion"] + [f"q{i},P".encode() for i in range(1, 4000)]
    lines[bad_line - 1] = b"q,\xff\xfeP"
    path = tmp_path / "train.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    assert _error(path) == f"{path}, line {bad_line}: not UTF-8 text (byte 2 of the line); re-save the file as UTF-8"


def test_invalid_utf8_in_a_json_file_names_its_line(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_bytes(b'[{"prompt": "a", "completion": "P"},\n {"prompt": "b\xff", "completion": "P"}]')
    assert _error(path) == f"{path}, line 2: not UTF-8 text (byte 14 of the line); re-save the file as UTF-8"
