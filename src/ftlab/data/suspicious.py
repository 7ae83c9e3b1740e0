"""Data that is legal but suspicious: counted, with the first locations, and never fatal.

    from ftlab.data.suspicious import Suspicious
    seen = Suspicious("valid", "valid", Path("data/valid.jsonl"), classification=True)
    for e in examples: seen.add(e)
    seen.lines()   # ["data/valid.jsonl: 2 rows start with the assistant's turn (line 4, line 9); ..."]

`ftlab validate` prints these lines (data/check.py) and the data stage keeps them in its outputs,
so the report's data section shows them. Each kind is one line: a head with the count, then the
first FIRST_SHOWN locations; a 10^6-row file wrong everywhere still gives one short line.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from ftlab.data.example import Example

LARGE_ROW = 10 << 20  # 10 M characters: ~2.5 M tokens, far past any context; a lost delimiter, not a row
FIRST_SHOWN = 3


def normalised(prompt: list[dict[str, str]]) -> str:
    """The prompt's text with whitespace runs collapsed and case folded: "What  is X?" = "what is x?"."""
    return "\x1f".join(" ".join(m["content"].split()).casefold() for m in prompt)


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


class Suspicious:
    """What one split's rows looked like that a user should see before training on them."""

    def __init__(self, name: str, role: str, where: Path | str, *, classification: bool, keep_digests: bool = False):
        self.name, self.role, self.where, self.classification = name, role, str(where), classification
        self.found: dict[str, list] = {}  # kind -> [count, first locations]
        self.classes: Counter = Counter()
        self.labels: dict[bytes, str] = {}  # normalised prompt digest -> the first row's label
        # every row's normalised prompt digest, 8 bytes each (8 MB for 10^6 rows), for leakage across splits
        self.digests: bytearray | None = bytearray() if keep_digests else None

    def _note(self, kind: str, where: str) -> None:
        entry = self.found.setdefault(kind, [0, []])
        entry[0] += 1
        if len(entry[1]) < FIRST_SHOWN:
            entry[1].append(where)

    def add(self, e: Example) -> None:
        where = _position(str(e.meta.get("source", "?")))
        turns = [m["role"] for m in e.prompt if m["role"] != "system"]
        if turns and turns[0] == "assistant":
            self._note("assistant_first", where)
        size = sum(len(m["content"]) for m in e.prompt) + len(e.completion or "")
        if size > LARGE_ROW:
            self._note("large", f"{where} ({size / 1e6:.0f} M characters)")
        key = digest(normalised(e.prompt))
        if self.digests is not None:
            self.digests += key
        if e.label is not None and self.classification:
            self.classes[e.label] += 1
            first = self.labels.setdefault(key, e.label)
            if first != e.label:
                self._note("contradiction", f"{where} says {e.label!r}, an earlier one {first!r}")

    def lines(self) -> list[str]:
        out = []
        heads = {
            "assistant_first": ("start{s} with the assistant's turn", "check that no user turn was lost"),
            "large": ("{is_are} over 10 M characters", "check the file's delimiters and quoting"),
            "contradiction": ("repeat{s} an earlier prompt with another label",
                              "the model cannot learn both; fix the labels or drop the repeats"),
        }
        for kind, (what, todo) in heads.items():
            if kind not in self.found:
                continue
            count, first = self.found[kind]
            rows = f"{count} row{'s' if count != 1 else ''}"
            what = what.format(s="" if count != 1 else "s", is_are="are" if count != 1 else "is")
            more = ", ..." if count > len(first) else ""
            out.append(f"{self.where}: {rows} {what} ({', '.join(first)}{more}); {todo}")
        n = sum(self.classes.values())
        if self.role in ("valid", "test") and len(self.classes) == 1 and n > 1:
            (label,) = self.classes
            out.append(f"datasets '{self.name}' ({self.role}): all {n} rows have label {label!r}; metrics that "
                       "compare classes (auc, f1, balanced accuracy) say little on one class; add rows of the others")
        return out


def shared_prompts(splits: list[tuple[str, str, str, set[str]]]) -> list[str]:
    """One warning per pair of splits (name, role, file, normalised prompt digests) sharing prompts
    once whitespace and case are ignored; two test splits may share (nothing is chosen on them)."""
    out = []
    for i, (a, role_a, file_a, keys_a) in enumerate(splits):
        for b, role_b, file_b, keys_b in splits[i + 1:]:
            if role_a == role_b == "test" or (file_a and file_a == file_b):
                continue
            n = len(keys_a & keys_b)
            if n:
                out.append(f"datasets '{a}' ({role_a}) and '{b}' ({role_b}) share {n} prompt{'s' if n != 1 else ''} "
                           f"once whitespace and case are ignored; remove them from one split so {role_b} results "
                           "are not inflated")
    return out


def _position(source: str) -> str:
    """ "train.jsonl:12" -> "line 12"; "hf#3" -> "row 3"."""
    if ":" in source and source.rsplit(":", 1)[-1].isdigit():
        return f"line {source.rsplit(':', 1)[-1]}"
    if "#" in source and source.rsplit("#", 1)[-1].isdigit():
        return f"row {source.rsplit('#', 1)[-1]}"
    return source
