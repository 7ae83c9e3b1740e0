"""`json.dumps(rows, indent=2)` for a list of flat-ish dicts (the runs of `ftlab plan --json`), ~3x faster.

Python's json module has no C path for indented output: 100,000 plan rows took 1.3 s that way, and
the C encoder writes the same rows compact in 0.45 s. Here each scalar goes through the C encoder and
only the layout is written by hand; containers other than a dict of scalars take the plain route.
The text is byte-for-byte json.dumps(rows, indent=2) (tests/test_jsonout.py).
"""

from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder().encode  # compact, ensure_ascii: the same scalars json.dumps writes
_SCALARS = (str, int, float, bool, type(None))


def dumps_rows(rows: list[dict[str, Any]]) -> str:
    if not rows or not all(type(r) is dict for r in rows):
        return json.dumps(rows, indent=2)
    return "[\n" + ",\n".join(_row(r) for r in rows) + "\n]"


def _row(row: dict[str, Any]) -> str:
    if not row:
        return "  {}"
    fields = [f"    {_encode(str(k) if not isinstance(k, str) else k)}: {_value(v)}" for k, v in row.items()]
    return "  {\n" + ",\n".join(fields) + "\n  }"


def _value(value: Any) -> str:
    if isinstance(value, _SCALARS):
        return _encode(value)
    if type(value) is dict and value and all(isinstance(k, str) and isinstance(v, _SCALARS) for k, v in value.items()):
        return "{\n" + ",\n".join(f"      {_encode(k)}: {_encode(v)}" for k, v in value.items()) + "\n    }"
    return json.dumps(value, indent=2).replace("\n", "\n    ")
