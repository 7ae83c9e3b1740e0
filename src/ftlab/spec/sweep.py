"""Sweep expansion and `${var}` substitution.

A sweep is a list whose items are explicit points (`{variant: baseline, gamma: 1.0}`) or grids
(`{grid: {prop: [1/2], variant: [accept, reject], gamma: [2, 4, 8]}}`). Index order is list order;
within a grid the LAST key varies fastest (itertools.product over the keys as written). This order
reproduces seed 002's 19-row index table exactly (tests/spec/test_sweep.py).

Seeds multiply runs: all seeds of point 0, then all seeds of point 1, ... Controls come after the
sweep runs. An empty sweep is one point with no variables.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ftlab.spec.source import clip, clip_text

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTROL_KINDS = ("random_init", "untuned")
SCALARS = (str, int, float, bool)

Where = tuple[str | int, ...]


SEED_MAX = 2**32 - 1  # numpy's seed range (transformers.set_seed seeds numpy too); negative seeds fail there


@dataclass
class Problems:
    """Problems found while reading a spec, each with the YAML path it belongs to."""

    items: list[tuple[Where, str]] = field(default_factory=list)
    _seen: set[tuple[Where, str]] = field(default_factory=set, repr=False)

    def add(self, where: Where, message: str) -> None:
        if (where, message) not in self._seen:  # a set: 100,000 points may each add one
            self._seen.add((where, message))
            self.items.append((where, message))


def count_points(raw: Any) -> int:
    """How many points `sweep:` expands to, counted without expanding (a grid of 8 variables x 10
    values is 10^8 points: expanding it first took 24 GB before the kernel killed ftlab)."""
    if not isinstance(raw, list):
        return 1
    total = 0
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("grid"), dict):
            sizes = [len(v) if isinstance(v, list) else 0 for v in item["grid"].values()]
            total += math.prod(sizes) if sizes else 0
        else:
            total += 1
    return max(total, 1)


@dataclass(frozen=True)
class ControlRequest:
    kind: str
    values: dict[str, Any] | None  # sweep values to use; None = the first sweep point
    seeds: list[int] | None  # None = the experiment's seeds (untuned: the first seed only)
    per: tuple[str, ...] = ()  # one control per distinct value of these sweep variables (seed 004: per base)
    label_vars: tuple[str, ...] | None = None  # the variables its run name shows; None = all of `values`


def expand_sweep(raw: Any, problems: Problems) -> list[dict[str, Any]]:
    """Expand the `sweep:` list into ordered points (dicts of variable -> value)."""
    if raw is None or raw == []:
        return [{}]
    if not isinstance(raw, list):
        problems.add(("sweep",), "must be a list of points and/or {grid: {...}} items")
        return [{}]
    points: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where: Where = ("sweep", i)
        if not isinstance(item, dict) or not item:
            problems.add(where, "each sweep item must be a mapping: a point {var: value} or {grid: {var: [values]}}")
            continue
        if "grid" in item:
            points += _expand_grid(item, where, problems)
        else:
            point = {k: v for k, v in item.items() if _check_var(k, v, where + (k,), problems)}
            points.append(point)
    seen: dict[tuple, int] = {}
    for n, point in enumerate(points):
        key = tuple(sorted((k, repr(v)) for k, v in point.items()))
        if key in seen:
            problems.add(("sweep",), f"point {clip(point)} appears twice (points {seen[key]} and {n}); remove one")
        seen.setdefault(key, n)
    return points or [{}]


def _expand_grid(item: dict, where: Where, problems: Problems) -> list[dict[str, Any]]:
    extra = [k for k in item if k != "grid"]
    if extra:
        problems.add(where + (extra[0],), f"a grid item takes only 'grid:'; move '{clip_text(extra[0])}' into the grid")
    grid = item["grid"]
    if not isinstance(grid, dict) or not grid:
        problems.add(where + ("grid",), "must map each variable to a non-empty list of values")
        return []
    axes: list[tuple[str, list]] = []
    for key, values in grid.items():
        at = where + ("grid", key)
        if not isinstance(values, list) or not values:
            problems.add(at, f"must be a non-empty list of values, e.g. {clip_text(key, 40)}: [1, 2]")
            continue
        if all(_check_var(key, v, at, problems) for v in values):
            axes.append((key, values))
    if len(axes) != len(grid):
        return []
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in axes))]


def _check_var(key: Any, value: Any, where: Where, problems: Problems) -> bool:
    if not isinstance(key, str) or not NAME.match(key):
        problems.add(where, f"sweep variable name {clip(key)} must be an identifier (letters, digits, _)")
        return False
    if key == "seed":
        problems.add(where, "'seed' is reserved: list seeds under 'seeds:' instead")
        return False
    if not isinstance(value, SCALARS):
        problems.add(where, f"sweep value must be a string, number or boolean, got {type(value).__name__}")
        return False
    return True


def parse_seeds(raw: Any, problems: Problems, where: Where = ("seeds",)) -> list[int]:
    if raw is None:
        return [0]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw):
        problems.add(where, "must be a non-empty list of integers, e.g. seeds: [0, 1, 2]")
        return [0]
    for i, seed in enumerate(raw):
        if not 0 <= seed <= SEED_MAX:
            problems.add(where + (i,), f"seed {clip(seed)} is out of range: seeds are 0 to {SEED_MAX} (2^32 - 1)")
            return [0]
    if len(set(raw)) != len(raw):
        problems.add(where, "lists a seed twice")
    return list(raw)


def parse_controls(raw: Any, problems: Problems) -> list[ControlRequest]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(("controls",), f"must be a list, e.g. controls: [{', '.join(CONTROL_KINDS)}]")
        return []
    out: list[ControlRequest] = []
    for i, item in enumerate(raw):
        where: Where = ("controls", i)
        if isinstance(item, str):
            item = {"kind": item}
        if not isinstance(item, dict):
            problems.add(where, "must be a control name or {kind: ..., values: {...}, seeds: [...]}")
            continue
        unknown = set(item) - {"kind", "values", "seeds", "per"}
        for key in sorted(unknown, key=str):
            problems.add(where + (key,), "unknown key; allowed: kind, values, seeds, per")
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in CONTROL_KINDS:
            from ftlab.plugins import did_you_mean

            hint = did_you_mean(clip_text(kind, 40), CONTROL_KINDS)
            problems.add(where, f"unknown control {clip(kind)}.{hint} Available: {', '.join(CONTROL_KINDS)}")
            continue
        values = item.get("values")
        if values is not None and not isinstance(values, dict):
            problems.add(where + ("values",), "must map sweep variables to values, e.g. values: {lr: 0.001}")
            continue
        if values is not None and not all(_check_var(k, v, where + ("values", k), problems) for k, v in values.items()):
            continue
        seeds = parse_seeds(item["seeds"], problems, where + ("seeds",)) if "seeds" in item else None
        per = item.get("per", [])
        if isinstance(per, str):
            per = [per]
        if not isinstance(per, list) or not all(isinstance(v, str) for v in per) or (per and values is not None):
            problems.add(where + ("per",), "must list sweep variables, e.g. per: [base], and not be combined with values:")
            continue
        out.append(ControlRequest(kind=kind, values=values, seeds=seeds, per=tuple(per)))
    return out


def expand_per(controls: list[ControlRequest], points: list[dict[str, Any]], problems: Problems) -> list[ControlRequest]:
    """A control with `per: [base]` becomes one control per distinct base in the sweep, each at the
    first point with that base, named by it: seed 004 evaluates every base model untuned."""
    out: list[ControlRequest] = []
    variables = {k for p in points for k in p}
    for i, c in enumerate(controls):
        if not c.per:
            out.append(c)
            continue
        missing = [v for v in c.per if v not in variables]
        if missing:
            from ftlab.plugins import did_you_mean

            problems.add(("controls", i, "per"), f"{clip(missing[0])} is not a sweep variable."
                         f"{did_you_mean(missing[0], sorted(variables))} Sweep variables: {', '.join(sorted(variables)) or 'none'}")
            continue
        seen: set[str] = set()
        for point in points:
            key = repr([point.get(v) for v in c.per])
            if key not in seen:
                seen.add(key)
                out.append(ControlRequest(kind=c.kind, values=dict(point), seeds=c.seeds, label_vars=c.per))
    return out


def substitute(obj: Any, values: dict[str, Any], where: Where, problems: Problems, used: set[str]) -> Any:
    """Fill `${var}` references from `values`. A string that is exactly `${var}` takes the value's type."""
    if isinstance(obj, dict):
        return {k: substitute(v, values, where + (k,), problems, used) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, values, where + (i,), problems, used) for i, v in enumerate(obj)]
    if not isinstance(obj, str) or "${" not in obj:
        return obj
    names = VAR.findall(obj)
    missing = [n for n in names if n not in values]
    if missing:
        known = ", ".join(sorted(values)) or "(none: the sweep is empty)"
        problems.add(where, f"uses ${{{missing[0]}}}, which this sweep point does not set; sweep variables: {clip_text(known, 200)}")
        return obj
    if "${" in VAR.sub("", obj):
        problems.add(where, "malformed variable reference; write ${name}")
    used.update(names)
    whole = VAR.fullmatch(obj)
    if whole:
        return values[whole.group(1)]
    return VAR.sub(lambda m: str(values[m.group(1)]), obj)


SAFE_NAME = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(name: str) -> str:
    """A run name that is one plain path component: '1/2' -> '1_2', never '..' or absolute."""
    cleaned = SAFE_NAME.sub("_", name).strip("._") or "run"
    return cleaned[:120]
