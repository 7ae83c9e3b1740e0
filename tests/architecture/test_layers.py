"""The import graph reads as the pipeline: every import, function-local ones included, points down
the declared layer order, and no two units import each other (directly or in a circle).

    .venv/bin/pytest tests/architecture/test_layers.py

Layers, bottom up (a unit may import its own layer and those below; ARCHITECTURE.md says why):
    foundation  errors, plugins, atomic, jsonout, gcpause, threads, registry, version
    experiment  spec            (the experiment schema, sweep, identity, plan)
    contract    contract        (task, keys, markers, execute, inputs, identity hashing, run-dir layout)
    stages-1    data, models
    stages-2    evaluate, train
    stages-3    curate, baselines
    stages-4    reporting
    table       stages          (the stage table: entry points as "module:function" strings)
    graph       graph
    runners     runners
    api         api, ftlab      (the package itself re-exports the API lazily)
    cli         cli
A unit is a top-level module or package of ftlab. What the spec validator needs from above it is
named in ftlab.spec.checks ("module:name" strings, imported when a spec is validated), and the
contract reaches a stage only through its stage-table row's strings; both are checked below.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ftlab"

LAYERS: list[set[str]] = [
    {"errors", "plugins", "atomic", "jsonout", "gcpause", "threads", "registry", "version"},
    {"spec"},
    {"contract"},
    {"data", "models"},
    {"evaluate", "train"},
    {"curate", "baselines"},
    {"reporting"},
    {"stages"},
    {"graph"},
    {"runners"},
    {"api", ""},
    {"cli"},
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str:
    """ftlab.evaluate.stage -> evaluate; ftlab -> "" (the package's own __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported ftlab module, line) for every import statement anywhere in a file."""
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        here = module_name(path)
        package = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(here, a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "ftlab"]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] != "ftlab":
                    continue
                for alias in node.names:  # `from ftlab import atomic` imports the module ftlab.atomic
                    sub = f"{base}.{alias.name}"
                    found.append((here, sub if sub in modules else base, node.lineno))
    return found


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in SRC.rglob("*.py")}
    assert units <= set(LEVEL), f"put these in a layer (here and in ARCHITECTURE.md): {sorted(units - set(LEVEL))}"


def test_no_import_points_up_the_layers():
    upward = [f"{src} -> {dst} (line {line}): {unit_of(src) or 'ftlab'} is below {unit_of(dst) or 'ftlab'}"
              for src, dst, line in imports() if LEVEL[unit_of(dst)] > LEVEL[unit_of(src)]]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_circle_between_units():
    edges: dict[str, set[str]] = defaultdict(set)
    for src, dst, _ in imports():
        if unit_of(src) != unit_of(dst):
            edges[unit_of(src)].add(unit_of(dst))

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    circles = sorted(u or "ftlab" for u in list(edges) if u in reach(u))
    assert not circles, f"units that reach themselves through imports: {circles}"


def test_lazy_entry_points_point_down_from_where_they_are_named():
    """The "module:name" strings are imports too: the stage table's point below the table, the spec
    checks' name the unit that owns each check, and every one resolves."""
    from ftlab.plugins import load_entry
    from ftlab.spec.checks import OWNERS
    from ftlab.stages import TABLE

    for row in TABLE:
        for entry in (row.entry, row.inputs, row.launcher, row.part_entry, row.parts_planner):
            if entry:
                assert LEVEL[unit_of(entry.split(":")[0])] < LEVEL["stages"], entry
                assert load_entry(entry) is not None
    for name, entry in OWNERS.items():
        assert unit_of(entry.split(":")[0]) == name.split(".")[0], (name, entry)
        assert load_entry(entry) is not None


def test_the_contract_names_no_stage():
    """The contract reaches a stage only through its row's "module:function" strings."""
    stage_units = set().union(*LAYERS[3:7])
    bad = [f"{src} -> {dst}" for src, dst, _ in imports() if unit_of(src) == "contract" and unit_of(dst) in stage_units]
    assert not bad, bad


def test_the_walker_sees_function_local_imports(tmp_path: Path):
    """The test can fail: a function-local import is an edge like any other."""
    tree = ast.parse("def f():\n    from ftlab.graph import build_graph\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "ftlab.graph" for n in ast.walk(tree))
    found = [(s, d) for s, d, _ in imports() if s == "ftlab.reporting.stage"]
    assert ("ftlab.reporting.stage", "ftlab.reporting.results") in found  # a function-local import in run_report
