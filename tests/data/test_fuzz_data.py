"""Mutated data files (seeded) must each load or end in one DataError that starts with the file's
path and names a line or row: never another exception, never more than 2 s of CPU (issue 22).

Mutations hit syntax, encoding, structure, roles, columns and sizes of JSONL, JSON and CSV files;
~600 cases take ~3 s on 2 cores. Reproduce one: MUTATIONS[k](random.Random(seed), text).
    OMP_NUM_THREADS=1 .venv/bin/pytest tests/data/test_fuzz_data.py
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from ftlab.data.formats import load_examples
from ftlab.errors import DataError

SECONDS = 2.0
ROWS = [
    {"messages": [{"role": "user", "content": "Is 'fine, thanks' hallucinated?"}, {"role": "assistant", "content": "N"}]},
    {"conversations": [{"from": "human", "value": "q2"}, {"from": "gpt", "value": "P"}]},
    {"prompt": "q3", "completion": "N"},
    {"instruction": "q4", "input": "ctx", "output": "P"},
]
CSV = 'prompt,completion\nq1,N\n"q2, with comma",P\n"multi\nline",N\nq4,P\n'


def _jsonl() -> str:
    return "".join(json.dumps(r) + "\n" for r in ROWS)


def _json() -> str:
    return "[\n" + ",\n".join(json.dumps(r) for r in ROWS) + "\n]\n"


def _at(rng: random.Random, text: str) -> int:
    return rng.randrange(len(text) + 1)


MUTATIONS = {
    "delete": lambda rng, t: (lambda i: t[:i] + t[i + 1:])(_at(rng, t)),
    "insert_syntax": lambda rng, t: (lambda i: t[:i] + rng.choice('{}[]",:\n\\') + t[i:])(_at(rng, t)),
    "truncate": lambda rng, t: t[: _at(rng, t)],
    "bad_byte": lambda rng, t: (lambda i: t[:i] + "\udcff" + t[i:])(_at(rng, t)),  # written as a lone 0xff byte
    "surrogate": lambda rng, t: t.replace('"q', '"\\ud800q', 1).replace('"Is', '"\\udc00Is', 1),
    "deep": lambda rng, t: t.replace('"N"', "[" * rng.choice([70, 3000]), 1),  # unclosed
    "deep_closed": lambda rng, t: t.replace('"N"', "[" * 3000 + "]" * 3000, 1),
    "role": lambda rng, t: t.replace(rng.choice(['"user"', '"assistant"', '"human"', '"gpt"']),
                                     rng.choice(['"assistant"', '"user"', '"robot"', '"system"', "null", "1"]), 1),
    "type": lambda rng, t: t.replace(rng.choice(['"q3"', '"N"', '"P"', '"ctx"']), rng.choice(["1", "null", "[]", "{}", '""']), 1),
    "key": lambda rng, t: t.replace(rng.choice(['"prompt"', '"messages"', '"conversations"', '"output"', '"content"']),
                                    rng.choice(['"promt"', '"text"', '""']), 1),
    "quote": lambda rng, t: (lambda i: t[:i] + '"' + t[i:])(_at(rng, t)),
    "duplicate_line": lambda rng, t: (lambda lines: "".join(lines + [rng.choice(lines)]))(t.splitlines(True) or [""]),
    "empty": lambda rng, t: rng.choice(["", "\n", "\ufeff", "   \n\n"]),
    "bom": lambda rng, t: "\ufeff" + t,
    "crlf": lambda rng, t: t.replace("\n", "\r\n"),
}
LOCATED = re.compile(r"(line|row) \d+|: the file has no rows|: not UTF-8 text|\d+ bad rows")


def _cases():
    files = {"jsonl": _jsonl(), "json": _json(), "csv": CSV}
    for suffix, text in files.items():
        for name in MUTATIONS:
            for seed in range(13):
                yield suffix, text, name, seed


@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv"])
def test_mutated_files_load_or_fail_located(tmp_path: Path, suffix: str):
    failures, outcomes = [], {"loaded": 0, "refused": 0}
    for n, (kind, text, name, seed) in enumerate(c for c in _cases() if c[0] == suffix):
        mutated = MUTATIONS[name](random.Random(seed), text)
        path = tmp_path / f"case{n}.{kind}"
        path.write_bytes(mutated.encode("utf-8", "surrogateescape"))
        start = time.process_time()
        try:
            load_examples(path, labels=["P", "N"])
            outcomes["loaded"] += 1
        except DataError as err:
            outcomes["refused"] += 1
            message = str(err)
            if not message.startswith(str(path)) or not LOCATED.search(message.splitlines()[0] + message):
                failures.append((name, seed, message[:300]))
        except Exception as err:  # noqa: BLE001: any other exception is the bug this test is for
            failures.append((name, seed, f"{type(err).__name__}: {err}"[:300]))
        if time.process_time() - start > SECONDS:
            failures.append((name, seed, f"took {time.process_time() - start:.1f} s of CPU"))
    assert not failures, "\n".join(map(str, failures[:20]))
    assert outcomes["loaded"] > 10 and outcomes["refused"] > 50, outcomes  # the mutations bite, and not always


def test_corrupted_parquet_loads_or_fails_located(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": [f"q{i}" for i in range(3000)], "completion": ["P" if i % 2 else "N" for i in range(3000)]})
    pq.write_table(table, tmp_path / "good.parquet", row_group_size=500)
    data = (tmp_path / "good.parquet").read_bytes()
    failures = []
    for seed in range(30):
        rng, mutated = random.Random(seed), bytearray(data)
        if seed % 3 == 0:
            mutated = mutated[: rng.randrange(len(mutated))]  # truncated
        elif seed % 3 == 1:
            for _ in range(5):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)  # flipped bytes
        else:
            i = rng.randrange(4, len(mutated) - 8)
            del mutated[i: i + rng.randrange(1, 200)]  # a hole
        path = tmp_path / f"case{seed}.parquet"
        path.write_bytes(bytes(mutated))
        start = time.process_time()
        try:
            load_examples(path, labels=["P", "N"])
        except DataError as err:
            if not str(err).startswith(str(path)):
                failures.append((seed, str(err)[:200]))
        except Exception as err:  # noqa: BLE001
            failures.append((seed, f"{type(err).__name__}: {err}"[:200]))
        if time.process_time() - start > SECONDS:
            failures.append((seed, "slow"))
    assert not failures, failures
