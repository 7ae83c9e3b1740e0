"""Broken data that used to pass silently is now one located problem (issue 22, class 4).

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/data/test_broken_rows.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftlab.data.formats import load_examples
from ftlab.errors import DataError
from tests.conftest import write_spec

U, A, S = "user", "assistant", "system"


def _msgs(*turns: tuple[str, str]) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def _error(path: Path, rows: list[dict], **kw) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_examples(path, labels=["P", "N"], **kw)
    return str(info.value)


GOOD = _msgs((U, "q"), (A, "P"))


@pytest.mark.parametrize("row,expected", [
    (_msgs((U, "q"), (A, "N"), (A, "P")), "'messages' has two assistant turns in a row (messages[1] and messages[2])"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "x"}, {"from": "gpt", "value": "P"}]},
     "'conversations' has two assistant turns in a row (conversations[1] and conversations[2])"),
    ({"prompt": [{"role": U, "content": "q"}, {"role": A, "content": "x"}], "completion": "P"},
     "'prompt' ends with an assistant turn"),
    (_msgs((S, "be brief"), (A, "P")), "'messages' has no user message before the answer; add the question"),
    ({"conversations": [{"from": "gpt", "value": "P"}], "system": "be brief"},
     "'conversations' has no user message before the answer"),
    ({"prompt": [{"role": S, "content": "be brief"}], "completion": "P"}, "'prompt' has no user message; add the question"),
], ids=["messages-aa", "sharegpt-aa", "prompt-ends-assistant", "system-no-user", "sharegpt-system-column", "prompt-system-only"])
def test_turn_order_problems_are_located(tmp_path: Path, row: dict, expected: str):
    path = tmp_path / "train.jsonl"
    message = _error(path, [GOOD, row])
    assert message.startswith(f"{path}, line 2: {expected}"), message


def test_same_column_for_prompt_and_completion(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    rows = [{"text": "q", "verdict": "P"}]
    message = _error(path, rows, columns={"prompt": "text", "completion": "text"})
    assert message == f"{path}: columns maps prompt and completion to the same column 'text'; give each its own column"
    # the label may be read from the answer's own column
    assert load_examples(path, labels=["P"], columns={"prompt": "text", "completion": "verdict", "label": "verdict"})


def test_same_column_is_a_spec_problem_at_its_yaml_path(tmp_path: Path, capsys):
    from ftlab.cli import main

    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "q", "v": "P"}) + "\n")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("generate: {name: hem, n: 240, seed: 0}",
                                             "path: train.jsonl, columns: {prompt: text, completion: text}"))
    assert main(["validate", str(spec)]) == 2
    out = capsys.readouterr()
    assert "line 8, datasets[0].columns: maps prompt and completion to the same column 'text'; give each its own column" \
        in out.out + out.err


def test_unclosed_csv_quote_is_reported_where_it_opened(tmp_path: Path):
    path = tmp_path / "train.csv"
    path.write_text('prompt,completion\nq1,P\nq2,"P\nq3,N\nq4,P\nq5,N\nq6,P\n')
    with pytest.raises(DataError) as info:
        load_examples(path, labels=["P", "N"])
    assert str(info.value).startswith(
        f"{path}, line 3: the quoted cell 'completion' opened here runs to line 7 and holds 4 lines shaped like rows"
    )
    path.write_text('prompt,completion\nq1,P\n"q2,P\nq3,N\nq4,P\nq5,N\n')  # opened in the first column, never closed
    with pytest.raises(DataError) as info:
        load_examples(path, labels=["P", "N"])
    assert str(info.value).startswith(f"{path}, line 3: the quoted cell 'prompt' opened here runs to line 6")
    # a multi-line answer in prose stays one good row
    path.write_text('prompt,completion\nq1,"First line.\nSecond, with a comma.\nThird.\nFourth line here.\nP"\n')
    assert len(load_examples(path)) == 1


def test_a_valid_split_choosing_checkpoints_needs_answers(tmp_path: Path, capsys):
    from ftlab.cli import main

    (tmp_path / "valid.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(3)))
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("{name: valid, role: valid, generate: {name: hem, n: 40, seed: 0}}",
                                             "{name: valid, role: valid, path: valid.jsonl}"))
    assert "path: valid.jsonl" in spec.read_text()
    assert main(["validate", str(spec)]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "valid.jsonl: datasets 'valid' chooses checkpoints (eval.select.split) but none of its 3 rows has an answer" in text
    assert text.count("chooses checkpoints") == 1
