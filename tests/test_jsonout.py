"""ftlab.jsonout writes exactly what json.dumps(rows, indent=2) writes."""

from __future__ import annotations

import json

from ftlab.jsonout import dumps_rows


def test_rows_match_json_dumps_indent_2():
    rows = [
        {"index": 0, "name": "lr1e-06_bs1", "kind": "sweep", "seed": 0, "values": {"lr": 1e-06, "bs": 1}, "run_id": "r1-ab"},
        {"index": 1, "name": "é \"q\" \n", "kind": "untuned", "seed": None, "values": {}, "run_id": "r1-cd"},
        {"index": 2, "values": {"grid": [1, [2, {"a": None}]], "nested": {"x": True}}, "inf": float("inf"), "list": [], "d": {}},
        {"values": {"prop": "1/2", "gamma": 2.0, "flag": False}},
        {},
    ]
    for case in (rows, rows[:1], [], [{"a": 1}], [1, 2]):
        assert dumps_rows(case) == json.dumps(case, indent=2)
