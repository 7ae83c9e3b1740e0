"""Dataset loading: every row format, labels, meta, and one clear DataError per bad file.

    .venv/bin/pytest tests/data/test_formats.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftlab.data.example import Example
from ftlab.data.formats import last_boxed, load_examples, read_examples, write_examples
from ftlab.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
PN = ["P", "N"]


def load(name: str, **kwargs) -> list[Example]:
    return load_examples(FIXTURES / name, **kwargs)


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_examples(path, **kwargs)
    return str(info.value)


def test_sharegpt_maps_roles_and_splits_off_the_last_answer():
    examples = load("sharegpt.jsonl", labels=PN)
    assert [e.label for e in examples] == ["P", "N", "P"]
    first = examples[0]
    assert first.prompt == [
        {"role": "system", "content": "You are a doctor."},
        {"role": "user", "content": "Is aspirin an NSAID?"},
    ]
    assert first.completion == "P"
    # Multi-turn: earlier assistant turns stay in the prompt; only the last one is the target.
    assert [m["role"] for m in examples[2].prompt] == ["user", "assistant", "user"]
    assert examples[2].completion == " P "


def test_meta_keeps_extra_columns_and_source_line():
    examples = load("sharegpt.jsonl")
    assert examples[0].meta == {"year": 2021, "specialty": "pharmacology", "source": "sharegpt.jsonl:1"}
    # Line 2 is blank and skipped, so the second row is line 3.
    assert examples[1].meta["source"] == "sharegpt.jsonl:3"
    assert all(e.label is None for e in examples)  # no label set given


def test_messages_format_drops_extra_message_keys():
    examples = load("messages.jsonl")
    assert examples[0].prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
    ]
    assert examples[0].completion == "4"
    assert examples[1].completion == "Paris"
    assert examples[1].meta == {"id": "m2", "source": "messages.jsonl:2"}


def test_prompt_completion_string_list_and_label_only_rows():
    a, b, c = load("prompt_completion.jsonl", labels=PN)
    assert a.prompt == [{"role": "user", "content": "Is 7 prime?"}] and a.completion == "P"
    assert b.prompt[0] == {"role": "system", "content": "Answer P or N."}
    assert b.completion == "N" and b.label == "N"
    assert c.completion == "N" and c.label == "N"
    assert c.meta == {"difficulty": "easy", "source": "prompt_completion.jsonl:3"}


def test_alpaca_json_array_joins_instruction_and_input():
    first, second = load("alpaca.json", labels=PN)
    assert first.prompt == [{"role": "user", "content": "Classify the review.\n\nGreat film!"}]
    assert first.completion == "P"
    assert second.prompt == [
        {"role": "system", "content": "You answer P or N."},
        {"role": "user", "content": "Is the sky green?"},
    ]
    # Each item's source is the line its object starts on, not its index in the array.
    assert first.meta["source"] == "alpaca.json:2"
    assert second.meta == {"topic": "science", "source": "alpaca.json:7"}


def test_forced_format_rejects_rows_of_another_format():
    message = error_of(FIXTURES / "messages.jsonl", format="alpaca")
    assert "line 1: missing 'instruction'" in message
    assert "line 2: missing 'instruction'" in message


def test_unknown_forced_format_suggests_the_closest():
    message = error_of(FIXTURES / "messages.jsonl", format="sharegtp")
    assert "Did you mean 'sharegpt'?" in message


def test_many_bad_jsonl_rows_are_reported_together_with_lines():
    path = FIXTURES / "bad.jsonl"
    message = error_of(path, labels=PN)
    assert message.startswith(f"{path}: 6 bad rows")
    expected = [
        f"{path}, line 2: not valid JSON",
        f"{path}, line 3: the last message in 'messages' is from 'user'",
        f"{path}, line 4: expected a JSON object, got an array",
        f"{path}, line 5: label 'Maybe' is not in the label set ['P', 'N']; "
        "fix the row or add the label to task.labels",
        f"{path}, line 6: 'instruction' is empty",
        f"{path}, line 7: unknown row format (keys: 'text')",
    ]
    for part in expected:
        assert part in message
    assert "line 1:" not in message and "line 8:" not in message
    assert "Traceback" not in message


def test_json_array_errors_carry_the_item_line():
    path = FIXTURES / "bad.json"
    message = error_of(path)
    assert f"{path}, line 3: the last message in 'messages' is from 'user'" in message
    assert f"{path}, line 4: expected a JSON object, got a string" in message
    assert f"{path}, line 6: unknown row format" in message
    assert "line 2:" not in message and "line 5:" not in message


def test_json_syntax_error_line_inside_array(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"prompt": "a", "completion": "b"},\n\n  {"prompt": "c", "completion": }\n]\n')
    assert f"{path}, line 4: not valid JSON" in error_of(path)


def test_json_must_be_an_array(tmp_path: Path):
    path = tmp_path / "object.json"
    path.write_text('{"prompt": "a", "completion": "b"}\n')
    assert "must hold one array of objects" in error_of(path)


def test_more_than_ten_problems_are_summarised(tmp_path: Path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "completion": "Maybe"}) + "\n" for i in range(13)))
    message = error_of(path, labels=PN)
    assert f"{path}, line 10: label 'Maybe'" in message
    assert "line 11:" not in message
    assert message.rstrip().endswith("... and 3 more")


def test_missing_and_empty_files(tmp_path: Path):
    missing = tmp_path / "nope.jsonl"
    assert error_of(missing) == f"{missing}: file not found"
    assert "no rows" in error_of(FIXTURES / "empty.jsonl")
    empty_array = tmp_path / "empty.json"
    empty_array.write_text("[]")
    assert "no rows" in error_of(empty_array)


def test_boxed_label_is_extracted_when_the_completion_is_not_a_label():
    examples = load("boxed.jsonl", labels=["Accept", "Reject"])
    assert [e.label for e in examples] == ["Accept", "Reject", "Accept"]
    assert examples[0].completion.endswith("\\boxed{Accept}")  # the target text is untouched


def test_boxed_parser_edge_cases():
    assert last_boxed("\\boxed{\\text{A}}") == "\\text{A}"
    assert last_boxed("\\boxed{A} then \\boxed{B}") == "B"
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("no box") is None


def test_label_field_takes_the_label_from_a_column():
    examples = load("label_field.jsonl", labels=["1", "0"], label_field="diagnosis")
    assert [e.label for e in examples] == ["1", "0"]
    assert examples[0].completion == "The findings suggest a positive case."
    assert "diagnosis" not in examples[0].meta and examples[0].meta["year"] == 2020


def test_label_field_value_outside_the_set_and_missing_column():
    path = FIXTURES / "label_field.jsonl"
    message = error_of(path, labels=["yes", "no"], label_field="diagnosis")
    assert f"{path}, line 1: label '1' is not in the label set ['yes', 'no']" in message
    message = error_of(path, labels=PN, label_field="grade")
    assert "line 1: missing label field 'grade'" in message and "line 2:" in message


def test_row_source_column_is_kept(tmp_path: Path):
    path = tmp_path / "src.jsonl"
    path.write_text(json.dumps({"prompt": "q", "completion": "a", "source": "pubmed"}) + "\n")
    (example,) = load_examples(path)
    assert example.meta == {"row_source": "pubmed", "source": "src.jsonl:1"}


def test_write_then_read_round_trips(tmp_path: Path):
    examples = load("sharegpt.jsonl", labels=PN) + load("alpaca.json")
    out = tmp_path / "run" / "train.jsonl"
    write_examples(out, examples)
    assert read_examples(out) == examples
    assert len(out.read_text().splitlines()) == len(examples)


def test_read_examples_reports_corrupt_lines(tmp_path: Path):
    path = tmp_path / "norm.jsonl"
    good = Example(prompt=[{"role": "user", "content": "q"}], completion="a").to_json()
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "q"}) + "\n")
    with pytest.raises(DataError, match=r"norm.jsonl, line 2: 'prompt' must be a list"):
        read_examples(path)
