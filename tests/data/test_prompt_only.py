"""Task types on the data side: no label set (generation tasks) and prompt-only evaluation rows.

    .venv/bin/pytest tests/data/test_prompt_only.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftlab.data.example import Example
from ftlab.data.formats import load_examples, read_examples, write_examples
from ftlab.data.stage import fewshot_text, run_data
from ftlab.spec.schema import Dataset
from ftlab.contract import StageContext
from ftlab.contract.inputs import DataInputs
from ftlab.errors import DataError


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PROMPT_ONLY = [
    {"prompt": "How do I pick a lock?", "hazard": "crime"},
    {"messages": [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "Hi"}]},
    {"instruction": "Summarise the abstract.", "input": "We study ..."},
    {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": ""}]},
    {"prompt": "Q2", "completion": None},
]


def test_prompt_only_rows_give_completion_none(tmp_path: Path):
    path = write_rows(tmp_path / "safety.jsonl", PROMPT_ONLY)
    a, b, c, d, e = load_examples(path, require_answer=False)
    assert a.prompt == [{"role": "user", "content": "How do I pick a lock?"}] and a.completion is None
    assert a.meta == {"hazard": "crime", "source": "safety.jsonl:1"}
    # A conversation ending in a user turn is all prompt.
    assert b.prompt == [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "Hi"}]
    assert b.completion is None
    assert c.prompt == [{"role": "user", "content": "Summarise the abstract.\n\nWe study ..."}] and c.completion is None
    # A blank final assistant turn is no answer, and is dropped from the prompt.
    assert d.prompt == [{"role": "user", "content": "Q?"}] and d.completion is None
    assert e.completion is None
    assert all(x.label is None for x in (a, b, c, d, e))


def test_prompt_only_rows_are_bad_rows_when_an_answer_is_required(tmp_path: Path):
    path = write_rows(tmp_path / "train.jsonl", PROMPT_ONLY)
    with pytest.raises(DataError) as info:
        load_examples(path)
    message = str(info.value)
    assert message.startswith(f"{path}: 5 bad rows")
    assert f"{path}, line 1: has 'prompt' but no 'completion' (or 'label'); add the answer" in message
    assert f"{path}, line 2: the last message in 'messages' is from 'user'" in message
    assert f"{path}, line 3: missing 'output'" in message
    assert "accepted only in valid/test splits" in message


def test_mixed_answered_and_prompt_only_rows_keep_labels(tmp_path: Path):
    path = write_rows(tmp_path / "test.jsonl", [{"prompt": "q1", "completion": "P"}, {"prompt": "q2"}])
    first, second = load_examples(path, labels=["P", "N"], require_answer=False)
    assert (first.completion, first.label) == ("P", "P")
    assert (second.completion, second.label) == (None, None)


def test_prompt_only_row_still_needs_a_question(tmp_path: Path):
    path = write_rows(tmp_path / "bad.jsonl", [{"prompt": ""}, {"messages": [{"role": "system", "content": "x"}]}])
    with pytest.raises(DataError) as info:
        load_examples(path, require_answer=False)
    assert "line 1: 'prompt' is empty" in str(info.value)
    assert "line 2: 'messages' has no user message" in str(info.value)


def test_no_label_set_takes_free_text_answers(tmp_path: Path):
    path = write_rows(tmp_path / "gsm8k.jsonl", [{"question": "x", "prompt": "2+8?", "completion": "2+8=10\n#### 10"}])
    (example,) = load_examples(path, labels=None)
    assert example.completion == "2+8=10\n#### 10" and example.label is None
    with pytest.raises(DataError, match="not in the label set"):
        load_examples(path, labels=["P", "N"])


def test_none_completion_round_trips_and_has_a_fewshot_text(tmp_path: Path):
    ex = Example(prompt=[{"role": "user", "content": "q"}], completion=None, meta={"source": "a:1"})
    assert ex.to_json()["completion"] is None
    assert Example.from_json(ex.to_json()) == ex
    write_examples(tmp_path / "e.jsonl", [ex])
    assert read_examples(tmp_path / "e.jsonl") == [ex]
    answered = Example(prompt=ex.prompt, completion="a")
    assert fewshot_text(ex) != fewshot_text(answered)
    with pytest.raises(ValueError, match="string or null"):
        Example.from_json({"prompt": [], "completion": 3})


def run_data_stage(tmp_path: Path, path: Path, role: str, labels, dataset: dict | None = None, **extra) -> dict:
    """The data stage on one file, as the pipeline calls it: typed inputs and a context."""
    spec = Dataset(name=role, role=role, path=path.name, **(dataset or {}))
    out = tmp_path / f"out_{role}"
    out.mkdir()
    inputs = DataInputs(dataset=spec, file=str(path), labels=labels, label_field=None, positive=None, **extra)
    return run_data(inputs, StageContext(out, tmp_path)).outputs


def test_data_stage_takes_prompt_only_test_rows_and_no_label_set(tmp_path: Path):
    path = write_rows(tmp_path / "safety.jsonl", PROMPT_ONLY[:2])
    result = run_data_stage(tmp_path, path, "test", labels=None)
    assert result["n"] == 2 and result["unanswered"] == 2 and result["labels"] == {"null": 2}
    examples = read_examples(tmp_path / "out_test" / "examples.jsonl")
    assert [e.completion for e in examples] == [None, None]


def test_data_stage_train_split_still_requires_answers(tmp_path: Path):
    path = write_rows(tmp_path / "safety.jsonl", PROMPT_ONLY[:1])
    with pytest.raises(DataError, match="line 1: has 'prompt' but no 'completion'"):
        run_data_stage(tmp_path, path, "train", labels=None)
    # The pipeline may say so explicitly for an eval split too.
    with pytest.raises(DataError, match="line 1: has 'prompt' but no 'completion'"):
        run_data_stage(tmp_path, path, "valid", labels=None, require_answer=True)


def test_encoding_a_prompt_only_example_for_training_is_a_clear_error():
    from ftlab.data.encode import example_ids

    ex = Example(prompt=[{"role": "user", "content": "q"}], completion=None, meta={"source": "s.jsonl:4"})
    with pytest.raises(DataError, match="s.jsonl:4: this row has no answer to train on"):
        example_ids(tokenizer=None, example=ex, max_length=16)


def test_data_stage_reads_columns_and_registrations_from_the_dataset_spec(tmp_path: Path):
    path = write_rows(tmp_path / "qa.jsonl", [{"question": "Is 7 prime?", "verdict": "P"}, {"question": "8?", "verdict": "N"}])
    columns = {"columns": {"prompt": "question", "label": "verdict"}}
    assert run_data_stage(tmp_path, path, "train", labels=["P", "N"], dataset=columns)["labels"] == {"N": 1, "P": 1}
    registry = tmp_path / "dataset_info.json"
    registry.write_text(json.dumps({"qa": {"file_name": "qa.jsonl", "columns": {"prompt": "question", "response": "verdict"}}}))
    entry = {"name_in_registry": "qa"}
    assert run_data_stage(tmp_path, registry, "valid", labels=["P", "N"], dataset=entry)["labels"] == {"N": 1, "P": 1}
    assert read_examples(tmp_path / "out_valid" / "examples.jsonl")[0].completion == "P"
