"""Deterministic mutated specs for tests/spec/test_fuzz.py.

    cases = make_cases(directory, n=1100, seed=10)   # -> [Case(name, path, op)], files written
    python tests/spec/fuzzing.py OUT_DIR             # write them to look at by hand

Each case starts from one of the base specs (the two examples and conftest's TINY_SPEC) and applies
one mutation chosen by a seeded random.Random: a wrong type, an unknown key, a missing field, a bad
reference, an extreme number, a format string in run_name, a long string, bad bytes, a YAML bomb,
a syntax break. The same (n, seed) always writes the same files.
"""

from __future__ import annotations

import copy
import math
import random
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest import TINY_SPEC  # noqa: E402

LONG = 100_000


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    op: str


def base_specs() -> dict[str, str]:
    tiny = textwrap.dedent(TINY_SPEC.format(method="lora", epochs=1, save_steps=10, sweep="[{lr: 0.1}, {lr: 0.2}]",
                                            seeds="[0, 1]", controls="[random_init, untuned]"))
    tiny = tiny.replace("learning_rate: 0.003", "learning_rate: '${lr}'").replace("name: tiny\n", "name: tiny\nrun_name: \"lr{lr}\"\n")
    return {
        "quickstart": (REPO / "examples" / "quickstart.yaml").read_text(),
        "weighted": (REPO / "examples" / "weighted_loss.yaml").read_text(),
        "tiny": tiny,
    }


WEIRD: list[Any] = [None, 0, -1, 1.5, -0.0, "", " ", "x", [], {}, [1, 2], {"a": 1}, True, False, "${nope}", "${lr",
                    math.inf, -math.inf, math.nan, 10**30, -(10**30), 2**63, 1e308, 1e-320, "\x00", "../../etc/passwd",
                    "{lr}}", "\u202e", "🙂" * 3, [None], [[[]]], {"grid": {}}, "a" * 300]
NUMBERS: list[Any] = [0, -1, -1e-9, 1e308, -1e308, math.inf, -math.inf, math.nan, 2**31, 2**32, 2**63, 2**64, 10**40, 0.5, 3]
FORMATS = ["{lr}}", "{lr:d}", "{0}", "{}", "{lr.real}", "{lr[0]}", "{nope}", "{lr!z}", "{lr:>99999999}", "{{", "}", "{",
           "{lr:{seed}}", "{seed:x}", "{lr!r:>5}", "{lr:,}", "../{lr}", "/abs/{lr}", "", "{seed}", "{lr}{lr}", "{ lr }"]
TYPOS = ["epoch", "learnig_rate", "tme", "datsets", "labls", "hiden_size", "evaluatorz", "seeds_", "nme", "Name"]


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, at + (i,))
    return out


def _get(node: Any, at: tuple) -> Any:
    for part in at:
        node = node[part]
    return node


def _set(node: Any, at: tuple, value: Any) -> None:
    _get(node, at[:-1])[at[-1]] = value


Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARSED: dict[str, Any] = {}


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=False, width=10**9)


def mutate(rng: random.Random, base: str, op: str) -> bytes:
    if base not in _PARSED:
        _PARSED[base] = yaml.load(base, Loader=Loader)
    data = copy.deepcopy(_PARSED[base])
    paths = [p for p in _paths(data) if p]
    at = rng.choice(paths)
    if op == "wrong_type":
        _set(data, at, rng.choice(WEIRD))
    elif op == "unknown_key":
        maps = [p for p in _paths(data) if isinstance(_get(data, p), dict)]
        target = _get(data, rng.choice(maps))
        key = rng.choice(list(target) or ["x"])
        typo = rng.choice([key[:-1] or "k", key + "s", key[::-1], rng.choice(TYPOS)])
        target[typo] = target.pop(key) if key in target and rng.random() < 0.5 else rng.choice(WEIRD[:10])
    elif op == "missing":
        parent = _get(data, at[:-1])
        if isinstance(parent, dict):
            del parent[at[-1]]
        else:
            parent.pop(at[-1])
    elif op == "bad_reference":
        strings = [p for p in paths if isinstance(_get(data, p), str)] or paths
        choice = rng.choice(["${zz}", "${lr", "$ {lr}", "${}", "${1x}", "nosuchsplit", "${lr}${lr}", "$${lr}", "${seed}"])
        _set(data, rng.choice(strings), choice)
    elif op == "extreme_number":
        numbers = [p for p in paths if isinstance(_get(data, p), (int, float)) and not isinstance(_get(data, p), bool)] or paths
        _set(data, rng.choice(numbers), rng.choice(NUMBERS))
    elif op == "format_string":
        data["run_name"] = rng.choice(FORMATS)
    elif op == "sweep_shape":
        variables = {f"v{i}": list(range(rng.choice([2, 10, 40]))) for i in range(rng.choice([1, 3, 6, 8]))}
        data["sweep"] = rng.choice([
            [{"grid": variables}], {"grid": variables}, [{"grid": variables, "extra": 1}], [{"seed": 1}],
            [{"lr": [1, 2]}], [{"grid": {"lr": []}}], [{"lr": 1}, {"lr": 1}], "grid", [[1, 2]], [{"1bad": 1}],
        ])
        data["seeds"] = rng.choice([[0], [-1], [2**32], [0, 0], [], "0", [True], [1.5], list(range(3))])
    elif op == "long_string":
        strings = [p for p in paths if isinstance(_get(data, p), str)] or paths
        _set(data, rng.choice(strings), rng.choice(["a", "/", "é", "${lr}", "{lr}"]) * LONG)
    elif op == "experiment_wide":
        data[rng.choice(["name", "output_dir", "cluster"])] = rng.choice(["x_${lr}", "out_${lr}", "${lr}", "${nope}"])
    elif op == "evaluator":
        ev = rng.choice([
            {"name": "logits"}, {"name": "logitz"}, {"name": "generate", "parser": rng.choice(["boxd", {"regex": "("}, 3, None])},
            {"name": "judge", "template": rng.choice(["{reponse}", "{", "}", "{response}", "{0}"])}, {"name": "judge", "template_file": "x" * LONG},
            {"name": "generate", "max_new_tokens": rng.choice(NUMBERS)}, {"name": "logits", "splits": ["nosuch"]}, {"name": None}, "logits", 3,
        ])
        data.setdefault("eval", {})["evaluators"] = rng.choice([[ev], [ev, ev], ev, []])
    elif op == "paths":
        where = rng.choice([("datasets", 0, "path"), ("model", "path"), ("output_dir",), ("cluster",), ("datasets", 1, "path")])
        value = rng.choice(["x" * LONG, "/" * LONG, "a\x00b", "\x00", "/dev/null", "/", ".", "..", "data", "~/nope", "data/" + "d/" * 2000 + "f"])
        node = data
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = value
        if where[-1] == "path" and where[0] == "datasets":
            node.pop("generate", None)
    elif op == "preset":
        data["presets"] = rng.choice([
            {"fast": {"train": {"epoch": 1}}}, {"fast": {"train": {"epochs": -1}}}, {"fast": "train"}, {"fast": {"name": "x"}},
            {"fast": {"train": {"learning_rate": "${nope}"}}}, [], {"fast": {"model": {"tiny": {"hiden": 2}}}},
        ])
        data["preset"] = rng.choice(["fast", "slow", None, 3, ["fast"], "${lr}"])
    return _dump(data).encode("utf-8")


def text_mutation(rng: random.Random, base: str, op: str) -> bytes:
    raw = base.encode("utf-8")
    cut = rng.randrange(len(raw))
    if op == "bytes":
        junk = rng.choice([b"\xff", b"\xfe\xff", b"\x00", b"\x07", b"\x1b[31m", b"\xed\xa0\x80", b"\xc3", b"\x85", b"\x7f", b"\r"])
        return raw[:cut] + junk + raw[cut:]
    if op == "encoding":
        return rng.choice([base.encode("utf-16"), base.encode("utf-32"), b"\xef\xbb\xbf" + raw, base.encode("latin-1", "replace") + "é".encode("latin-1")])
    if op == "truncate":
        return raw[:cut]
    if op == "indent":
        lines = base.splitlines(keepends=True)
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(["  ", "\t", " ", ""]) + lines[i].lstrip(rng.choice([" ", ""]))
        return "".join(lines).encode("utf-8")
    if op == "duplicate":
        lines = base.splitlines(keepends=True)
        i = rng.randrange(len(lines))
        return "".join(lines[: i + 1] + [lines[i]] + lines[i + 1:]).encode("utf-8")
    if op == "bomb":
        return rng.choice(BOMBS)(rng, base).encode("utf-8")
    raise ValueError(op)


def _laughs(rng: random.Random, base: str) -> str:
    # The classic: 9 levels of 10 aliases each = 10^9 strings from ~2.5 kB of text.
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return base + "\n".join(lines) + "\n"


def _laughs_in_sweep(rng: random.Random, base: str) -> str:
    data = [f"x0: &x0 [{', '.join(['0.1'] * 10)}]"]
    for i in range(1, 8):
        data.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    return "\n".join(data) + "\n" + base.replace("sweep:", "sweep: *x7\nold_sweep:", 1)


def _recursive(rng: random.Random, base: str) -> str:
    return base + rng.choice(["loop: &l [*l]\n", "loop: &l {a: *l}\n", "sweep: &s [{grid: {lr: *s}}]\n"])


def _deep(rng: random.Random, base: str) -> str:
    depth = rng.choice([60, 500, 990, 1200, 5000])
    if rng.random() < 0.5:
        return base + "deep: " + "[" * depth + "]" * depth + "\n"
    return base + "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 1100))) + "  " * min(depth, 1100) + "v\n"


def _merge_bomb(rng: random.Random, base: str) -> str:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for i in range(1, 25):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}")
    return base + "\n".join(lines) + "\n"


def _anchors_ok(rng: random.Random, base: str) -> str:
    # A legitimate use: a merge key reusing a block. Must validate (or fail) like the plain spec.
    return base.replace("train:", "tdefaults: &td {batch_size: 4}\ntrain:\n  <<: *td", 1) if "train:\n" in base else base


BOMBS = [_laughs, _laughs_in_sweep, _recursive, _deep, _merge_bomb, _anchors_ok]
DATA_OPS = ["wrong_type", "unknown_key", "missing", "bad_reference", "extreme_number", "format_string", "sweep_shape",
            "long_string", "experiment_wide", "preset", "evaluator", "paths"]
TEXT_OPS = ["bytes", "encoding", "truncate", "indent", "duplicate", "bomb"]


def make_cases(directory: Path, n: int, seed: int) -> list[Case]:
    """Write n mutated specs (plus the data file the weighted example reads) under `directory`."""
    (directory / "data").mkdir(parents=True, exist_ok=True)
    bases = base_specs()
    rng = random.Random(seed)
    ops = DATA_OPS * 3 + TEXT_OPS * 2  # data mutations reach deeper into the checks: weight them up
    cases = []
    for i in range(n):
        base_name = rng.choice(sorted(bases))
        op = rng.choice(ops)
        case_rng = random.Random(f"{seed}-{i}")
        try:
            raw = mutate(case_rng, bases[base_name], op) if op in DATA_OPS else text_mutation(case_rng, bases[base_name], op)
        except (ValueError, IndexError, KeyError, TypeError, yaml.YAMLError):  # a mutation that does not apply here
            raw = text_mutation(case_rng, bases[base_name], "truncate")
        path = directory / f"case{i:04d}_{base_name}_{op}.yaml"
        path.write_bytes(raw)
        cases.append(Case(path.stem, path, op))
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(f"wrote {len(make_cases(out, 1100, 10))} specs to {out}")
