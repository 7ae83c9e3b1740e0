"""Legal but suspicious data is warned about, with counts and first locations, and never fatal
(issue 22 class 6): in validate's output and in the report's data section.

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/data/test_suspicious.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import ftlab
from ftlab.data.example import Example
from ftlab.data.suspicious import LARGE_ROW, Suspicious
from tests.conftest import write_spec


def _m(*turns: tuple[str, str]) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def _files(d: Path) -> Path:
    train = [_m(("user", f"Question {i}?"), ("assistant", "P" if i % 2 else "N")) for i in range(20)]
    train.append(_m(("assistant", "Hi"), ("user", "Question x?"), ("assistant", "P")))  # line 21
    train.append(_m(("user", "question  1?"), ("assistant", "N")))  # line 22: "Question 1?" is P (line 2)
    valid = [_m(("user", f"Valid {i}?"), ("assistant", "P")) for i in range(5)]
    test = [_m(("user", "QUESTION 3?"), ("assistant", "P"))] + \
        [_m(("user", f"Test {i}?"), ("assistant", "N" if i % 2 else "P")) for i in range(4)]
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = write_spec(d)
    text = spec.read_text()
    for n in ("train", "valid", "test"):
        text = re.sub(r"\{name: %s, role: %s, generate: \{[^}]*\}\}" % (n, n), f"{{name: {n}, role: {n}, path: {n}.jsonl}}", text)
    spec.write_text(text)
    return spec


EXPECTED = [
    "train.jsonl: 1 row starts with the assistant's turn (line 21); check that no user turn was lost",
    "train.jsonl: 1 row repeats an earlier prompt with another label (line 22 says 'N', an earlier one 'P')",
    "datasets 'valid' (valid): all 5 rows have label 'P'",
]


def test_validate_warns_and_passes(tmp_path: Path, capsys):
    spec = _files(tmp_path)
    done = ftlab.validate(spec)
    err = capsys.readouterr().err
    for line in EXPECTED + ["datasets 'train' (train) and 'test' (test) share 1 prompt once whitespace and case "
                            "are ignored (test.jsonl:1 ~ train.jsonl:4)"]:
        assert sum(line in w for w in done.warnings) == 1, (line, done.warnings)
        assert err.count(line) == 1
    assert len(done.warnings) == 4 and not (tmp_path / "out").exists()  # validate writes nothing


def test_report_data_section_shows_the_warnings(tmp_path: Path, capsys):
    spec = _files(tmp_path)
    ftlab.run(spec, only=["data"], echo=None)
    stats = json.loads((tmp_path / "out" / "data").glob("train*/stats.json").__next__().read_text())
    assert any(EXPECTED[0] in w for w in stats["warnings"])
    html = ftlab.report(spec).html.read_text()
    for line in EXPECTED:
        assert line.replace("'", "&#x27;") in html or line in html, line


def test_large_row_and_clean_rows():
    seen = Suspicious("train", "train", "train.jsonl", classification=True)
    seen.add(Example([{"role": "user", "content": "q"}], "P", "P", {"source": "train.jsonl:1"}))
    assert seen.lines() == []
    seen.add(Example([{"role": "user", "content": "x" * (LARGE_ROW + 1)}], "P", "P", {"source": "train.jsonl:2"}))
    assert seen.lines() == ["train.jsonl: 1 row is over 10 M characters (line 2 (10 M characters)); "
                            "check the file's delimiters and quoting"]


def test_report_warns_of_prompts_shared_once_normalised(tmp_path: Path):
    spec = _files(tmp_path)
    ftlab.run(spec, only=["data"], echo=None)
    html = ftlab.report(spec).html.read_text()
    assert "datasets &#x27;train&#x27; (train) and &#x27;test&#x27; (test) share 1 prompt once whitespace and case" in html
