"""`ftlab validate` reads the data: bad rows with locations, labels, empty files, repeats, and
splits that share examples, before anything runs; counts per split and label on success.

    .venv/bin/pytest tests/data/test_check.py -q
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ftlab
from ftlab.cli import main
from ftlab.data.check import check_datasets, check_plan
from ftlab.errors import DataError
from ftlab.spec.plan import load_plan

SPEC = """\
name: check
model: {{tiny: {{}}}}
task: {{labels: [P, N]}}
datasets:
{datasets}
"""


VALID = "- {name: valid, role: valid, generate: {name: hem, n: 20}}\n"


def rows(n: int, start: int = 0, label=lambda i: "P" if i % 2 else "N") -> list[dict]:
    return [{"prompt": f"question {i}", "completion": label(i)} for i in range(start, start + n)]


def write_jsonl(path: Path, items: list) -> str:
    path.write_text("".join((json.dumps(r) if not isinstance(r, str) else r) + "\n" for r in items))
    return path.name


def spec(tmp_path: Path, datasets: str, task: str = "{labels: [P, N]}") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(datasets=textwrap.indent(textwrap.dedent(datasets), "  ")).replace("{labels: [P, N]}", task))
    return path


def test_clean_splits_print_counts_per_split_and_label(tmp_path: Path, capsys):
    write_jsonl(tmp_path / "train.jsonl", rows(6))
    write_jsonl(tmp_path / "valid.jsonl", rows(3, start=100))
    pq.write_table(pa.Table.from_pylist(rows(4, start=200) + [{"prompt": "unanswered", "completion": None}]),
                   tmp_path / "test.parquet")
    path = spec(tmp_path, """\
        - {name: train, role: train, path: train.jsonl}
        - {name: valid, role: valid, path: valid.jsonl}
        - {name: test, role: test, path: test.parquet}
    """)
    problems, counts = check_datasets(load_plan(path).experiment, tmp_path)
    assert problems == []
    assert counts["train"] == {"role": "train", "n": 6, "labels": {"N": 3, "P": 3}, "unanswered": 0}
    assert counts["test"] == {"role": "test", "n": 5, "labels": {"N": 2, "P": 2, "null": 1}, "unanswered": 1}
    out = "\n".join(ftlab.validate(path).data)
    assert "  train (train): 6 rows; N 3, P 3" in out
    assert "  valid (valid): 3 rows; N 2, P 1" in out
    assert "  test (test): 5 rows; N 2, P 2; 1 without an answer" in out


def test_every_bad_row_label_and_empty_file_is_reported_with_its_location(tmp_path: Path):
    bad = rows(2) + ["{not json", {"prompt": "q", "completion": "Maybe"}, {"prompt": "only a prompt"}]
    write_jsonl(tmp_path / "train.jsonl", bad)
    (tmp_path / "valid.jsonl").write_text("")
    pq.write_table(pa.Table.from_pylist([{"prompt": f"t{i}", "completion": "Maybe"} for i in range(14)]),
                   tmp_path / "test.parquet")
    path = spec(tmp_path, """\
        - {name: train, role: train, path: train.jsonl}
        - {name: valid, role: valid, path: valid.jsonl}
        - {name: test, role: test, path: test.parquet}
    """)
    problems, _ = check_datasets(load_plan(path).experiment, tmp_path)
    text = "\n".join(problems)
    train = tmp_path / "train.jsonl"
    assert f"{train}: 3 bad rows; fix or drop each row" in text
    assert f"{train}, line 3: not valid JSON" in text
    assert f"{train}, line 4: label 'Maybe' is not in the label set ['P', 'N']" in text
    # Train needs answers; the same row in a test split would be a prompt-only example.
    assert f"{train}, line 5: has 'prompt' but no 'completion'" in text
    assert f"{tmp_path / 'valid.jsonl'}: the file has no rows" in text
    test = tmp_path / "test.parquet"
    assert f"{test}: 14 bad rows" in text and f"{test}, row 9: label 'Maybe'" in text
    assert f"{test}, row 10:" not in text and "... and 4 more" in text  # at most 10 listed, then a count


def test_one_file_for_all_three_roles_is_named(tmp_path: Path):
    write_jsonl(tmp_path / "all.jsonl", rows(12))
    path = spec(tmp_path, """\
        - {name: train, role: train, path: all.jsonl}
        - {name: valid, role: valid, path: all.jsonl}
        - {name: test, role: test, path: all.jsonl}
    """)
    problems, _ = check_datasets(load_plan(path).experiment, tmp_path)
    assert len(problems) == 3
    assert problems[1].startswith(f"datasets 'train' (train) and 'test' (test) read the same file {tmp_path / 'all.jsonl'}")
    assert "all 12 prompts are in both; give each role its own file" in problems[1]


def test_shared_prompts_between_files_and_repeated_rows(tmp_path: Path):
    train = rows(6) + [rows(1, start=3)[0]]  # line 7 repeats line 4
    write_jsonl(tmp_path / "train.jsonl", train)
    # Two test prompts were also trained on, one with another answer: still a leak.
    write_jsonl(tmp_path / "test.jsonl", rows(3, start=100) + [{"prompt": "question 1", "completion": "N"}, rows(1, start=2)[0]])
    path = spec(tmp_path, """\
        - {name: train, role: train, path: train.jsonl}
        - {name: valid, role: valid, generate: {name: hem, n: 20}}
        - {name: test, role: test, path: test.jsonl}
    """)
    problems, _ = check_datasets(load_plan(path).experiment, tmp_path)
    text = "\n".join(problems)
    assert f"{tmp_path / 'train.jsonl'}: 1 repeated row" in text
    assert f"{tmp_path / 'train.jsonl'}, line 7: repeats train.jsonl:4 (same prompt and answer)" in text
    assert ("datasets 'train' (train) and 'test' (test) share 2 prompts "
            "(test.jsonl:4 = train.jsonl:2, test.jsonl:5 = train.jsonl:3)") in text


def test_generation_task_takes_free_text_and_generated_splits_are_checked(tmp_path: Path):
    write_jsonl(tmp_path / "train.jsonl", [{"prompt": "2+8?", "completion": "2+8=10\n#### 10"}])
    path = spec(tmp_path, """\
        - {name: train, role: train, path: train.jsonl}
        - {name: valid, role: valid, generate: {name: hem, n: 40}}
    """)
    exp = load_plan(path).experiment
    problems, counts = check_datasets(exp, tmp_path)
    assert "label '2+8=10\\n#### 10' is not in the label set" in "\n".join(problems)
    assert counts["valid"]["n"] == 40 and set(counts["valid"]["labels"]) == {"P", "N"}
    generation = exp.model_copy(update={"task": exp.task.model_copy(update={"labels": []})})
    problems, counts = check_datasets(generation, tmp_path)
    assert problems == [] and counts["train"]["labels"] == {"null": 1}


def test_cli_validate_fails_with_one_message_and_no_traceback(tmp_path: Path, capsys):
    write_jsonl(tmp_path / "train.jsonl", rows(2) + ["[1, 2]"])
    path = spec(tmp_path, "- {name: train, role: train, path: train.jsonl}\n" + VALID)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 problem in the data:")
    assert f"{tmp_path / 'train.jsonl'}, line 3: expected a JSON object, got an array" in err
    assert "Traceback" not in err
    with pytest.raises(DataError, match="1 problem in the data"):
        check_plan(load_plan(path))


def test_sweep_points_reading_the_same_file_read_it_once(tmp_path: Path, monkeypatch):
    import ftlab.data.check as check

    write_jsonl(tmp_path / "train.jsonl", rows(4))
    path = spec(tmp_path, "- {name: train, role: train, path: train.jsonl}\n" + VALID)
    path.write_text(path.read_text() + "sweep:\n  - grid: {lr: [0.1, 0.2, 0.3]}\ntrain: {learning_rate: \"${lr}\"}\n")
    calls = []
    real = check.scan_dataset
    monkeypatch.setattr(check, "scan_dataset", lambda *a: calls.append(a) or real(*a))
    assert check_plan(load_plan(path))[0] == "  train (train): 4 rows; N 2, P 2"
    assert len(calls) == 2  # train once, valid once, for three sweep points
