"""Load a spec file into a Plan: the validated experiment and its ordered list of runs.

    plan = load_plan(Path("examples/quickstart.yaml"))
    for run in plan.runs: print(run.index, run.name, run.values, run.seed, run.run_id)
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ftlab.errors import SpecError
from ftlab.spec import sweep as sw
from ftlab.spec.identity import run_id
from ftlab.spec.schema import Experiment
from ftlab.spec.source import format_path, line_of, read_yaml
from ftlab.spec.validate import cross_checks, model_problems

SHAPE_KEYS = ("sweep", "seeds", "controls")


@dataclass(frozen=True)
class Run:
    index: int
    name: str
    run_id: str
    kind: str  # "sweep" | "random_init" | "untuned"
    seed: int
    values: dict[str, Any]
    config: Experiment

    @property
    def trains(self) -> bool:
        return self.kind != "untuned"


@dataclass
class Plan:
    spec_path: Path
    experiment: Experiment  # the first sweep point's config: experiment-wide fields
    runs: list[Run]
    warnings: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.spec_path.parent

    @property
    def output_dir(self) -> Path:
        out = self.experiment.output_dir or f"runs/{self.experiment.name}"
        return (self.base_dir / out).resolve()

    def run(self, ref: str) -> Run:
        """Find a run by name, id, or index."""
        for r in self.runs:
            if ref in (r.name, r.run_id, str(r.index)):
                return r
        from ftlab.plugins import did_you_mean

        raise SpecError([f"no run '{ref}' in this plan.{did_you_mean(ref, [r.name for r in self.runs])}"])


def load_plan(spec_path: Path) -> Plan:
    spec_path = Path(spec_path).resolve()
    data, lines = read_yaml(spec_path)
    problems = sw.Problems()
    if not isinstance(data, dict):
        raise SpecError(["the spec must be a YAML mapping (key: value lines)"], source=str(spec_path))
    points = sw.expand_sweep(data.get("sweep"), problems)
    seeds = sw.parse_seeds(data.get("seeds"), problems)
    controls = sw.parse_controls(data.get("controls"), problems)
    body = {k: v for k, v in data.items() if k not in SHAPE_KEYS}

    used: set[str] = set()
    configs: list[Experiment | None] = [_validate(body, p, spec_path.parent, problems, used) for p in points]
    control_configs = [
        _validate(body, c.values, spec_path.parent, problems, used) if c.values is not None else None
        for c in controls
    ]
    template = body.get("run_name")
    if configs[0] is not None:  # report.checks may name sweep variables: only the plan knows them
        from ftlab.report.checks import report_variable_problems

        report_variable_problems(configs[0], {k for p in points for k in p}, problems)
    runs: list[Run] = []
    if not problems.items:
        runs = _build_runs(points, configs, seeds, controls, control_configs, template, problems)
    if problems.items:
        raise SpecError(_render(problems, lines), source=str(spec_path))
    variables = sorted({k for p in points for k in p})
    warnings = [
        f"sweep variable '{v}' is not referenced by ${{{v}}} anywhere in the spec; it only separates runs"
        for v in variables
        if v not in used
    ]
    return Plan(spec_path=spec_path, experiment=configs[0], runs=runs, warnings=warnings)


def _validate(body: dict, values: dict, base_dir: Path, problems: sw.Problems, used: set[str]) -> Experiment | None:
    before = len(problems.items)
    filled = apply_preset(sw.substitute(body, values, (), problems, used), problems)
    unresolved = {where for where, _ in problems.items[before:]}
    try:
        exp = Experiment.model_validate(filled)
    except ValidationError as err:
        model_problems(err, problems, skip=unresolved)
        # Drop the bad values (defaults take their place) so the cross-field checks still run:
        # the user sees every problem in one message, not one layer at a time.
        repaired = _without(filled, [tuple(e["loc"]) for e in err.errors()])
        try:
            cross_checks(Experiment.model_validate(repaired), base_dir, problems)
        except ValidationError:
            pass
        return None
    cross_checks(exp, base_dir, problems)
    return exp


def apply_preset(data: dict, problems: sw.Problems) -> dict:
    """Merge the chosen preset under the spec: the spec's own values win, nested blocks merge key by key."""
    name = data.get("preset")
    if name is None:
        return data
    presets = data.get("presets") or {}
    if not isinstance(presets, dict) or name not in presets:
        from ftlab.plugins import did_you_mean

        names = list(presets) if isinstance(presets, dict) else []
        problems.add(("preset",), f"unknown preset '{name}'.{did_you_mean(str(name), names)} Available: {', '.join(names) or '(none)'}")
        return data
    block = presets[name]
    if not isinstance(block, dict):
        problems.add(("presets", name), "a preset must be a mapping of spec keys, e.g. {train: {epochs: 2}}")
        return data
    for key in ("presets", "preset", "name", "sweep", "seeds", "controls"):
        if key in block:
            problems.add(("presets", name, key), f"'{key}' cannot be set by a preset")
    return _merge(block, data)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _without(data: dict, locs: list[tuple]) -> dict:
    data = copy.deepcopy(data)
    for loc in locs:
        node = data
        for part in loc[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(node, dict):
                node.pop(loc[-1], None)
    return data


def _build_runs(points, configs, seeds, controls, control_configs, template, problems) -> list[Run]:
    runs: list[Run] = []
    multi_seed = len(seeds) > 1 or any(c.seeds and len(c.seeds) > 1 for c in controls)
    for point, exp in zip(points, configs):
        for seed in seeds:
            name = _run_name(template, point, seed, multi_seed, problems)
            runs.append(_run(len(runs), name, "sweep", seed, point, exp))
    for control, exp in zip(controls, control_configs):
        values = control.values if control.values is not None else points[0]
        exp = exp or configs[0]
        control_seeds = control.seeds or (seeds if control.kind == "random_init" else seeds[:1])
        for seed in control_seeds:
            label = control.kind
            if control.values:
                label += "_" + "_".join(f"{k}{v}" for k, v in control.values.items())
            suffix = f"_s{seed}" if control.kind == "random_init" and multi_seed else ""
            runs.append(_run(len(runs), sw.safe_name(label + suffix), control.kind, seed, values, exp))
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            problems.add(("run_name",), f"two runs are both named '{r.name}'; add the varying variables to run_name")
            break
    return runs


def _run(index: int, name: str, kind: str, seed: int, values: dict, exp: Experiment) -> Run:
    return Run(index, name, run_id(exp, kind=kind, seed=seed, values=values), kind, seed, dict(values), exp)


def _run_name(template: Any, point: dict, seed: int, multi_seed: bool, problems: sw.Problems) -> str:
    if not isinstance(template, str) or not template:
        template = "_".join(f"{k}{{{k}}}" for k in point) or "run"
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    unknown = fields - set(point) - {"seed"}
    if unknown:
        problems.add(("run_name",), f"uses {{{sorted(unknown)[0]}}}, which is not a sweep variable or 'seed'")
        return "run"
    name = template.format(**point, seed=seed)
    if multi_seed and "seed" not in fields:
        name += f"_s{seed}"
    return sw.safe_name(name)


def _render(problems: sw.Problems, lines: dict) -> list[str]:
    rendered = []
    for where, message in problems.items:
        line = line_of(where, lines)
        prefix = f"line {line}, " if line is not None else ""
        rendered.append((line or 0, f"{prefix}{format_path(where)}: {message}"))
    return [text for _, text in sorted(rendered, key=lambda item: item[0])]
