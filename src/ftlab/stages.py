"""The stage table: the one place that names ftlab's stages, in pipeline order.

    data/<dataset> -> model/<kind> -> [curate/<dataset>] -> train/<run> -> eval/<run>[@<ckpt>] -> report
    data/<dataset> -> [baseline/<model>] ------------------------------------------------------> report

    row("train").function()(inputs, ctx)   # the stage's code, imported only now
    ORDER                                   # ("data", "model", "curate", "baseline", "train", "eval", "report")

Each row (ftlab.contract.Stage) gives the entry point as a lazy "module:function" string (the way
lm-eval registers components: naming a stage imports no torch), its inputs class, its version (a
task's identity hashes it: bump it when the stage's code changes what it produces; these values
are pinned, and changing one re-runs every finished task of that stage), whether it keeps its
outputs when its identity changes, and the SLURM group its tasks are submitted in. The graph, the
local and SLURM runners, the cost estimate, the API and the CLI read this table; the contract is
handed a row with each task and imports no stage.
"""

from __future__ import annotations

from collections.abc import Iterable

from ftlab.contract.task import Stage
from ftlab.errors import StageError

_INPUTS = "ftlab.contract.inputs:"

# curate reads data (and a model, for difficulty) and feeds train; baselines read data only.
TABLE: tuple[Stage, ...] = (
    Stage("data", "ftlab.data.stage:run_data", _INPUTS + "DataInputs", 1, "prepare", uses_torch=False),
    Stage("model", "ftlab.models.stage:run_model", _INPUTS + "ModelInputs", 1, "prepare"),
    Stage("curate", "ftlab.curate.stage:run_curate", _INPUTS + "CurateInputs", 1, "curate"),
    Stage("baseline", "ftlab.baselines.stage:run_baseline", _INPUTS + "BaselineInputs", 1, "prepare"),
    Stage("train", "ftlab.train.stage:run_train", _INPUTS + "TrainInputs", 3, "train",
          launcher="ftlab.train.launch:launch"),
    # Eval keeps its outputs: it validates each cached (checkpoint, evaluator, split) result itself,
    # so adding an evaluator runs only it. A part is one checkpoint: eval/<run>@<checkpoint>.
    Stage("eval", "ftlab.evaluate.stage:run_eval", _INPUTS + "EvalInputs", 3, "eval", keeps_outputs=True,
          part_entry="ftlab.evaluate.parts:run_checkpoint", parts_planner="ftlab.evaluate.parts:planned_checkpoints"),
    Stage("report", "ftlab.reporting.stage:run_report", _INPUTS + "ReportInputs", 2, "report", uses_torch=False),
)
STAGES: dict[str, Stage] = {s.name: s for s in TABLE}
ORDER: tuple[str, ...] = tuple(STAGES)


def row(name: str) -> Stage:
    """The stage named `name`; an unknown name says which exist."""
    found = STAGES.get(name)
    if found is None:
        from ftlab.plugins import did_you_mean

        raise StageError(f"Unknown stage '{name}'.{did_you_mean(name, ORDER)} Available: {', '.join(ORDER)}")
    return found


def select_tasks(graph, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list:
    """The graph's tasks of the stages in `only` (all when empty) and not in `skip`, in order."""
    only, skip = set(only), set(skip)
    check_selection(only, skip)
    return [t for t in graph.tasks if (not only or t.stage in only) and t.stage not in skip]


def check_selection(only: Iterable[str] = (), skip: Iterable[str] = ()) -> None:
    """Unknown stage names, and a stage both chosen and skipped, are errors before anything runs."""
    only, skip = set(only), set(skip)
    for name in sorted(only | skip):
        row(name)
    both = sorted(only & skip, key=ORDER.index)
    if both:  # `--only train --skip train` would run nothing and exit 0, which reads as success
        raise StageError(f"--only and --skip both name {', '.join(both)}, so {'they' if len(both) > 1 else 'it'} "
                         f"would not run{' and nothing else is chosen' if only <= skip else ''}; "
                         "drop it from one of them")
