"""Load a spec file into a Plan: the validated experiment and its ordered list of runs.

    plan = load_plan(Path("examples/quickstart.yaml"))
    for run in plan.runs: print(run.index, run.name, run.values, run.seed, run.run_id)
"""

from __future__ import annotations

import copy
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ftlab.errors import SpecError
from ftlab.gcpause import gc_paused
from ftlab.spec import sweep as sw
from ftlab.spec.identity import config_json, run_id_from
from ftlab.spec.points import PointValidator, references
from ftlab.spec.scale import apply_scale
from ftlab.spec.schema import Experiment
from ftlab.spec.source import clip, clip_text, env_int, format_path, line_of, pending_outputs, read_yaml
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
    scale: str | None = None  # the spec's chosen scale (ftlab.spec.scale), if it has scales
    requires: list["Plan"] = field(default_factory=list)  # `requires:` specs, loaded: they run first

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


MAX_RUNS = 100_000  # default limit on runs per spec; --max-runs N or FTLAB_MAX_RUNS=N raise it
MAX_SLOW = 100  # points validated in full after a problem (~1 ms each); the rest of a broken sweep is skipped
MAX_SHOWN = 50  # problems printed; the rest are counted (a bad value in a 10,000-point sweep is 10,000 problems)
# Experiment-wide fields: one value for every run. With a sweep variable in them every run would
# silently share (or fight over) one name, one output directory, one cluster profile.
EXPERIMENT_WIDE = ("name", "output_dir", "cluster", "requires")


def load_plan(spec_path: Path, max_runs: int | None = None, scale: str | None = None) -> Plan:
    """Read, validate and expand a spec. `max_runs` (default FTLAB_MAX_RUNS or 100,000) bounds the
    work: the runs are counted before anything is expanded, and a larger spec is refused."""
    with gc_paused():  # ftlab.gcpause: ~30% of a 100,000-run load
        return _load_plan(spec_path, max_runs, scale)


def _load_plan(spec_path: Path, max_runs: int | None, scale: str | None) -> Plan:
    spec_path = _absolute(Path(spec_path))
    limit = max_runs if max_runs is not None else env_int("FTLAB_MAX_RUNS", MAX_RUNS)
    data, lines = read_yaml(spec_path)
    source = clip_text(str(spec_path), 200)
    problems = sw.Problems()
    if not isinstance(data, dict):
        raise SpecError([f"line {lines.key_line(()) or 1}: the spec must be a YAML mapping (key: value lines)"], source=source)
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise SpecError([f"line {lines.key_line(()) or 1}: top-level key {clip(bad_keys[0])} is not a name"], source=source)
    original = data
    data, chosen = apply_scale(data, scale, problems)
    required = _required(data.get("requires"), spec_path, problems)
    seeds = sw.parse_seeds(data.get("seeds"), problems)
    controls = sw.parse_controls(data.get("controls"), problems)
    count = sw.count_points(data.get("sweep")) * len(seeds)
    count += sum(len(c.seeds or (seeds if c.kind == "random_init" else seeds[:1])) for c in controls)
    if count > limit:
        problems.add(("sweep",), f"expands to {count:,} runs (sweep points x {len(seeds)} seeds + controls); the limit is "
                     f"{limit:,}: split the study, or raise it with --max-runs {count} or FTLAB_MAX_RUNS={count}")
        raise SpecError(_render(problems, lines), source=source)
    points = sw.expand_sweep(data.get("sweep"), problems)
    controls = sw.expand_per(controls, points, problems)
    body = {k: v for k, v in data.items() if k not in SHAPE_KEYS}
    for key in EXPERIMENT_WIDE:
        refs = references(body.get(key))
        if refs and any(refs & set(p) for p in points):
            problems.add((key,), f"uses sweep variable ${{{sorted(refs)[0]}}}, but '{key}' is one value for the whole "
                         "experiment (every run would share it); vary run_name instead")

    used: set[str] = set()
    validator = PointValidator(body, spec_path.parent, problems, used,
                               slow=lambda point: _validate(body, point, spec_path.parent, problems, used))
    with pending_outputs(_outputs(required)):  # what they (and what they require) write need not exist yet
        configs: list[Experiment | None] = [_validate(body, points[0], spec_path.parent, problems, used)]
        for point in points[1:]:
            if len(problems.items) > MAX_SHOWN or validator.slow_points > MAX_SLOW:
                break  # enough to fix first; validating 100,000 bad points more would only repeat them
            configs.append(validator(point))
        control_configs = [
            validator(c.values) if c.values is not None else None
            for c in controls
        ] if len(problems.items) <= MAX_SHOWN else []
    if configs[0] is not None and configs[0].cluster:
        # The profile is its own file, but a typo in it (`tme:`) should fail here, not at submit time.
        from ftlab.spec.checks import owner

        for found in owner("runners.check_profile")(spec_path.parent / configs[0].cluster)[1]:
            problems.add(("cluster",), f"in {clip_text(configs[0].cluster, 100)}: {found}")
    template = body.get("run_name")
    if configs[0] is not None:  # report.checks may name sweep variables: only the plan knows them
        from ftlab.spec.checks import owner

        owner("reporting.variable_problems")(configs[0], {k for p in points for k in p}, problems)
    runs: list[Run] = []
    if not problems.items:
        runs = _build_runs(points, configs, seeds, controls, control_configs, template, problems)
    if problems.items:
        raise SpecError(_render(_from_scale(problems, original, chosen), lines), source=source)
    variables = sorted({k for p in points for k in p})
    warnings = [
        f"sweep variable '{v}' is not referenced by ${{{v}}} anywhere in the spec; it only separates runs"
        for v in variables
        if v not in used
    ]
    return Plan(spec_path=spec_path, experiment=configs[0], runs=runs, warnings=warnings, scale=chosen, requires=required)


# Specs being loaded through `requires:` in this process, outermost first: a cycle is an error.
_LOADING: list[Path] = []


def _required(raw: Any, spec_path: Path, problems: sw.Problems) -> list[Plan]:
    """Load the specs of `requires:` (each at its own default scale), reporting their problems here."""
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list) or not all(isinstance(r, str) and r.strip() for r in raw):
        problems.add(("requires",), "must be a list of spec files, e.g. requires: [safety_judge.yaml]")
        return []
    plans = []
    for i, rel in enumerate(raw):
        path = _absolute(spec_path.parent / rel)
        if path == spec_path or path in _LOADING:
            chain = " -> ".join(p.name for p in [*_LOADING, spec_path, path])
            problems.add(("requires", i), f"{clip(rel)} requires this spec back ({clip_text(chain, 200)}): remove the cycle")
            continue
        if not path.is_file():
            problems.add(("requires", i), f"no spec file {clip_text(str(path), 200)}")
            continue
        _LOADING.append(spec_path)
        try:
            plans.append(load_plan(path))
        except SpecError as err:
            first = str(err).splitlines()
            problems.add(("requires", i), f"{clip(rel)} is not a valid spec: " + clip_text(" ".join(first[1:2] or first), 300)
                         + f" (ftlab validate {clip_text(rel, 100)})")
        finally:
            _LOADING.pop()
    return plans


def _outputs(plans: list[Plan]) -> list[Path]:
    return [d for p in plans for d in (p.output_dir, *_outputs(p.requires))]


def _from_scale(problems: sw.Problems, original: Any, chosen: str | None) -> sw.Problems:
    """Problems at the line where their value was written: inside the chosen `scales:` block when
    the scale supplied it (a scale's dicts merge into the spec; its lists and values replace)."""
    block = original.get("scales", {}).get(chosen) if isinstance(original, dict) and chosen and isinstance(original.get("scales"), dict) else None
    if not isinstance(block, dict):
        return problems
    out = sw.Problems()
    for where, message in problems.items:
        node, supplied = block, True
        for part in where:
            if isinstance(node, dict):
                if part not in node:
                    supplied = False
                    break
                node = node[part]
            else:  # a list or value the scale replaced wholesale: everything under it is the scale's
                break
        out.add(("scales", chosen) + tuple(where) if supplied and where else where, message)
    return out


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, ValueError, RuntimeError):  # a path the OS refuses (ENAMETOOLONG, a symlink loop)
        return Path.cwd() / path if not path.is_absolute() else path


def _validate(body: dict, values: dict, base_dir: Path, problems: sw.Problems, used: set[str]) -> Experiment | None:
    """Validate the whole spec at one sweep point, adding every problem (ftlab.spec.points is the fast path)."""
    filled_raw = sw.substitute(body, values, (), problems, used)
    unresolved = {where for where, _ in problems.items}
    filled = apply_preset(filled_raw, problems)
    local = sw.Problems()
    exp: Experiment | None = None
    try:
        exp = Experiment.model_validate(filled)
    except ValidationError as err:
        model_problems(err, local, skip=unresolved)
        # Drop the bad values (defaults take their place) so the cross-field checks still run:
        # the user sees every problem in one message, not one layer at a time.
        repaired = _without(filled, [tuple(e["loc"]) for e in err.errors()])
        try:
            cross_checks(Experiment.model_validate(repaired), base_dir, local)
        except ValidationError:
            pass
    else:
        cross_checks(exp, base_dir, local)
    for where, message in local.items:
        problems.add(_origin(filled_raw, where), message)
    return exp


def _origin(data: dict, where: tuple) -> tuple:
    """Where a merged value came from: the spec's own path, or ("presets", name, ...) when the chosen
    preset supplied it (a typo inside a preset is reported at the preset's line, not the spec's)."""
    name = data.get("preset")
    presets = data.get("presets")
    if not isinstance(name, str) or not isinstance(presets, dict) or not isinstance(presets.get(name), dict):
        return where
    if _reach(presets[name], where) > _reach(data, where):
        return ("presets", name) + tuple(where)
    return where


def _reach(data: Any, where: tuple) -> int:
    """How many leading parts of `where` exist in `data`."""
    depth = 0
    for part in where:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            break
        depth += 1
    return depth


def apply_preset(data: dict, problems: sw.Problems) -> dict:
    """Merge the chosen preset under the spec: the spec's own values win, nested blocks merge key by key."""
    name = data.get("preset")
    if name is None:
        return data
    presets = data.get("presets") or {}
    if not isinstance(presets, dict) or not isinstance(name, str) or name not in presets:
        from ftlab.plugins import did_you_mean

        names = [str(n) for n in presets] if isinstance(presets, dict) else []
        hint = did_you_mean(clip_text(name, 60), names)
        problems.add(("preset",), f"unknown preset {clip(name)}.{hint} Available: {clip_text(', '.join(names), 200) or '(none)'}")
        return data
    block = presets[name]
    if not isinstance(block, dict):
        problems.add(("presets", name), "a preset must be a mapping of spec keys, e.g. {train: {epochs: 2}}")
        return data
    for key in ("presets", "preset", "name", "sweep", "seeds", "controls"):
        if key in block:
            problems.add(("presets", name, key), f"'{key}' cannot be set by a preset")
    return merge(block, data)


def merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
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
    variables = {k for p in points for k in p}
    name_of = RunName(template, variables, problems)
    pieces: dict = {}  # JSON of field values the runs share (see identity.config_json)
    for point, exp in zip(points, configs):
        config = config_json(exp, pieces)
        for seed in seeds:
            name = name_of(point, seed, multi_seed)
            runs.append(Run(len(runs), name, run_id_from(config, kind="sweep", seed=seed, values=point), "sweep", seed, dict(point), exp))
    for control, exp in zip(controls, control_configs):
        values = control.values if control.values is not None else points[0]
        exp = exp or configs[0]
        config = config_json(exp, pieces)
        control_seeds = control.seeds or (seeds if control.kind == "random_init" else seeds[:1])
        for seed in control_seeds:
            label = control.kind
            if control.label_vars:  # per: [base] -> untuned_<base>, as the sweep's runs show it
                label += "_" + "_".join(str(control.values[k]) for k in control.label_vars)
            elif control.values:
                label += "_" + "_".join(f"{k}{v}" for k, v in control.values.items())
            suffix = f"_s{seed}" if control.kind == "random_init" and multi_seed else ""
            run_id = run_id_from(config, kind=control.kind, seed=seed, values=values)
            runs.append(Run(len(runs), sw.safe_name(label + suffix), run_id, control.kind, seed, dict(values), exp))
    first: dict[str, int] = {}
    for r in runs:  # a dict, not list.count per run: 10,000 runs made this check 0.9 s
        if r.name in first:
            problems.add(("run_name",), f"runs {first[r.name]} and {r.index} are both named {clip(r.name)}; "
                         "add the varying variables to run_name")
            break
        first[r.name] = r.index
    return runs


class RunName:
    """`run_name: "{variant}_gamma{gamma}"` checked once, then filled per run. Each run's directory is
    <output_dir>/runs/<name>, and safe_name keeps that one plain path component: no '/', never '..'."""

    def __init__(self, template: Any, variables: set[str], problems: sw.Problems):
        self.problems = problems
        self.custom = isinstance(template, str) and bool(template)
        self.template = template if self.custom else None
        self.fields: set[str] = set()
        self.failed = False
        if self.custom:
            self.failed = not self._check(template, variables)

    def _check(self, template: str, variables: set[str]) -> bool:
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as err:  # "{lr}}": Single '}' encountered; "{lr": expected '}'
            self.problems.add(("run_name",), f"is not a valid name template ({err}); write {{var}}, and {{{{ or }}}} for a literal brace")
            return False
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if not sw.NAME.match(name):
                shown = "{" + clip_text(name, 40) + "}"
                self.problems.add(("run_name",), f"{shown}: name a sweep variable or seed, e.g. {{lr}} (no positions, attributes or indexes)")
                return False
            if name not in variables and name != "seed":
                known = ", ".join(sorted(variables | {"seed"}))
                self.problems.add(("run_name",), f"uses {{{name}}}, which is not a sweep variable or 'seed' (known: {clip_text(known, 200)})")
                return False
            if conversion not in (None, "s", "r", "a"):
                self.problems.add(("run_name",), f"{{{name}!{clip_text(conversion, 10)}}}: the conversion must be !s, !r or !a")
                return False
            if spec and ("{" in spec or re.search(r"\d{4,}", spec)):
                # A nested {field} or a width like {lr:>999999999} (a 1 GB string) is never a run name.
                self.problems.add(("run_name",), f"{{{name}:{clip_text(spec, 20)}}}: use a plain format spec such as :.0e or :03d")
                return False
            self.fields.add(name)
        return True

    def __call__(self, point: dict, seed: int, multi_seed: bool) -> str:
        if self.failed:
            return "run"
        if self.template is None:
            name = "_".join(f"{k}{v}" for k, v in point.items()) or "run"
            return sw.safe_name(name + (f"_s{seed}" if multi_seed else ""))
        try:
            name = self.template.format(**point, seed=seed)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as err:  # "{lr:d}" with lr=0.001
            shown = ", ".join(f"{k}={clip(point.get(k), 30)}" for k in sorted(self.fields & set(point)))
            self.problems.add(("run_name",), f"cannot be filled at {shown or 'seed=' + str(seed)}: {clip_text(err, 120)}")
            self.failed = True
            return "run"
        if multi_seed and "seed" not in self.fields:
            name += f"_s{seed}"
        return sw.safe_name(name)


def _render(problems: sw.Problems, lines) -> list[str]:
    rendered = []
    for where, message in problems.items:
        line = line_of(where, lines)
        prefix = f"line {line}, " if line is not None else ""
        rendered.append((line or 0, f"{prefix}{format_path(where)}: {clip_text(message, 600)}"))
    out = [text for _, text in sorted(rendered, key=lambda item: item[0])]
    if len(out) > MAX_SHOWN:
        out = out[:MAX_SHOWN] + [f"... and {len(out) - MAX_SHOWN} more problems (fix these first)"]
    return out
