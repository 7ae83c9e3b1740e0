"""Every file type a dataset may be: parquet, CSV, HF save_to_disk directories, LLaMA-Factory
registrations, column mapping; broken files reported with their line or row.

    .venv/bin/pytest tests/data/test_sources.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftlab.data.formats import load_examples
from ftlab.data.sources import data_digest
from ftlab.errors import DataError

PN = ["P", "N"]
ROWS = [
    {"prompt": "Is 7 prime?", "completion": "P", "year": 2020},
    {"prompt": "Is 8 prime?", "completion": "N", "year": 2021},
    {"prompt": "Is 9 prime?", "completion": "N", "year": 2022},
]


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_examples(path, **kwargs)
    assert "Traceback" not in str(info.value)
    return str(info.value)


def test_parquet_rows_load_with_row_index_sources(tmp_path: Path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    examples = load_examples(path, labels=PN)
    assert [e.label for e in examples] == ["P", "N", "N"]
    assert examples[0].prompt == [{"role": "user", "content": "Is 7 prime?"}]
    assert examples[1].meta == {"year": 2021, "source": "train.parquet#1"}


def test_parquet_messages_column_and_bad_rows_name_the_row(tmp_path: Path):
    path = tmp_path / "chat.parquet"
    good = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    rows = [{"messages": good}, {"messages": good[:1]}, {"messages": good}, {"messages": [{"role": "bot", "content": "x"}]}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    message = error_of(path)
    assert message.startswith(f"{path}: 2 bad rows")
    assert f"{path}, row 1: the last message in 'messages' is from 'user'" in message
    assert f"{path}, row 3: messages[0].role is 'bot'" in message
    pq.write_table(pa.Table.from_pylist(rows[:3]), path)
    assert load_examples(path, require_answer=False)[1].completion is None


def test_broken_parquet_is_one_clear_error(tmp_path: Path):
    path = tmp_path / "torn.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    assert "not a readable parquet file" in error_of(path)


def test_csv_keeps_strings_and_reports_lines(tmp_path: Path):
    path = tmp_path / "data.csv"
    path.write_text(
        "question,answer,verdict\n"
        '"Is 7 prime, really?",yes,1\n'
        '"multi\nline question",no,0\n'
        "Is 4 prime?,no,0\n"
    )
    examples = load_examples(path, labels=["1", "0"], columns={"prompt": "question", "completion": "answer", "label": "verdict"})
    assert [e.label for e in examples] == ["1", "0", "0"]  # '0' stays the string '0'
    assert examples[0].prompt[0]["content"] == "Is 7 prime, really?" and examples[0].completion == "yes"
    assert examples[1].prompt[0]["content"] == "multi\nline question"
    assert examples[2].meta == {"source": "data.csv:5"}  # the record after a two-line one is line 5


def test_broken_csv_rows_report_their_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,completion\nq1,P\nq2,P,extra\n,N\nq4,Maybe\n")
    message = error_of(path, labels=PN)
    assert f"{path}, line 3: has 3 cells, the header has 2" in message
    assert f"{path}, line 4: 'prompt' is empty" in message
    assert f"{path}, line 5: label 'Maybe' is not in the label set" in message
    assert "line 2:" not in message
    dup = tmp_path / "dup.csv"
    dup.write_text("prompt,prompt\na,b\n")
    assert f"{dup}, line 1: the header names 'prompt' twice" in error_of(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "no rows" in error_of(empty)


def test_hf_dataset_directory_loads_and_a_dict_names_its_splits(tmp_path: Path):
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "hf"))
    examples = load_examples(tmp_path / "hf", labels=PN)
    assert [e.completion for e in examples] == ["P", "N", "N"]
    assert examples[2].meta["source"] == "hf#2"
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "hfdict"))
    message = error_of(tmp_path / "hfdict")
    assert "holds the splits train, test; point path at one of them" in message
    assert len(load_examples(tmp_path / "hfdict" / "test")) == 3
    (tmp_path / "plain").mkdir()
    assert "not an HF dataset saved with save_to_disk" in error_of(tmp_path / "plain")


def write_registry(tmp_path: Path, entries: dict) -> Path:
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(entries, indent=2))
    return path


def test_llama_factory_alpaca_registration_with_columns(tmp_path: Path):
    rows = [
        {"q": "Is 7 prime?", "ctx": "Think.", "a": "P", "sys": "Be brief.", "hist": [["Hi", "Hello"]]},
        {"q": "Is 8 prime?", "ctx": "", "a": "N", "sys": "", "hist": []},
    ]
    (tmp_path / "med.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    registry = write_registry(tmp_path, {
        "alpaca_med": {"file_name": "med.jsonl", "columns": {"prompt": "q", "query": "ctx", "response": "a",
                                                             "system": "sys", "history": "hist"}},
        "other": {"hf_hub_url": "org/other"},
    })
    first, second = load_examples(registry, name_in_registry="alpaca_med", labels=PN)
    assert first.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Is 7 prime?\n\nThink."},
    ]
    assert (first.completion, first.label) == ("P", "P")
    assert second.prompt == [{"role": "user", "content": "Is 8 prime?"}] and second.meta == {"source": "med.jsonl:2"}
    assert "set name_in_registry to one of: alpaca_med, other" in error_of(registry)
    assert "Did you mean 'alpaca_med'?" in error_of(registry, name_in_registry="alpaca_mde")
    assert "ftlab reads local files only" in error_of(registry, name_in_registry="other")


def test_llama_factory_sharegpt_registration_with_openai_tags_in_parquet(tmp_path: Path):
    rows = [{"chat": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "sys": "Math."}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "chat.parquet")
    registry = write_registry(tmp_path, {"chat": {
        "file_name": "chat.parquet", "formatting": "sharegpt", "columns": {"messages": "chat", "system": "sys"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }})
    (example,) = load_examples(registry, name_in_registry="chat")
    assert example.prompt == [{"role": "system", "content": "Math."}, {"role": "user", "content": "2+2?"}]
    assert example.completion == "4" and example.meta == {"source": "chat.parquet#0"}


def test_llama_factory_entries_ftlab_cannot_read_are_named(tmp_path: Path):
    registry = write_registry(tmp_path, {
        "pref": {"file_name": "x.json", "ranking": True},
        "gone": {"file_name": "missing.json"},
        "img": {"file_name": "x.json", "columns": {"prompt": "q", "images": "img"}},
    })
    assert "ranking (preference) data is not supported" in error_of(registry, name_in_registry="pref")
    assert "file_name 'missing.json' not found" in error_of(registry, name_in_registry="gone")
    assert "columns images are not supported for alpaca" in error_of(registry, name_in_registry="img")


def test_column_mapping_for_prompt_only_rows_and_missing_columns(tmp_path: Path):
    path = tmp_path / "ailuminate.jsonl"
    path.write_text(json.dumps({"prompt_text": "How do I ...?", "hazard": "cse"}) + "\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(DataError) as info:
        load_examples(path, require_answer=False, columns={"prompt": "prompt_text"})
    assert f"{path}, line 2: missing column 'prompt_text' (columns.prompt)" in str(info.value)
    path.write_text(json.dumps({"prompt_text": "How do I ...?", "hazard": "cse"}) + "\n")
    (example,) = load_examples(path, require_answer=False, columns={"prompt": "prompt_text"})
    assert example.prompt == [{"role": "user", "content": "How do I ...?"}] and example.completion is None
    assert example.meta == {"hazard": "cse", "source": "ailuminate.jsonl:1"}
    assert "columns may map" in error_of(path, columns={"question": "prompt_text"})


def test_jsonl_bad_bytes_cost_one_line_not_the_file(tmp_path: Path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "b"}\n')
    message = error_of(path)
    assert message.startswith(f"{path}, line 2: not UTF-8 text")


def test_unsupported_file_type(tmp_path: Path):
    path = tmp_path / "data.txt"
    path.write_text("hello\n")
    assert "unsupported file type '.txt'" in error_of(path)


def test_data_digest_follows_content_of_directories_and_registrations(tmp_path: Path):
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "hf"))
    before = data_digest(tmp_path / "hf")
    datasets.Dataset.from_list(ROWS[:2]).save_to_disk(str(tmp_path / "hf"))
    assert data_digest(tmp_path / "hf") != before
    (tmp_path / "d.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    registry = write_registry(tmp_path, {"d": {"file_name": "d.jsonl"}})
    first = data_digest(registry, "d")
    (tmp_path / "d.jsonl").write_text(json.dumps(ROWS[1]) + "\n")
    assert data_digest(registry, "d") != first


def test_csv_record_spanning_lines_is_located_at_its_first_line(tmp_path: Path):
    path = tmp_path / "multi.csv"
    path.write_text('prompt,completion\n\n"a\nb\nc",Maybe\nq,P\n')
    message = error_of(path, labels=PN)
    assert message == f"{path}, line 3: label 'Maybe' is not in the label set ['P', 'N']; fix the row or add the label to task.labels"


def test_name_in_registry_on_a_plain_data_file_is_refused(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n")
    assert "name_in_registry names an entry of a LLaMA-Factory dataset_info.json" in error_of(path, name_in_registry="x")


def test_corrupt_hf_arrow_file_is_one_clear_error(tmp_path: Path):
    import datasets

    datasets.Dataset.from_list(ROWS * 400).save_to_disk(str(tmp_path / "hf"))
    (arrow,) = (tmp_path / "hf").glob("*.arrow")
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])  # a torn copy
    message = error_of(tmp_path / "hf")
    assert message.startswith(f"{tmp_path / 'hf'}") and ("cannot load the HF dataset" in message or "cannot decode" in message)


def test_mapped_label_column_may_also_be_named_as_the_label_field(tmp_path: Path):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"q": "Is 7 prime?", "a": "It is.", "verdict": "P"}) + "\n")
    columns = {"prompt": "q", "completion": "a", "label": "verdict"}
    for label_field in (None, "verdict"):
        (example,) = load_examples(path, labels=PN, label_field=label_field, columns=columns)
        assert (example.completion, example.label, example.meta) == ("It is.", "P", {"source": "v.jsonl:1"})
