"""What `ftlab plan` shows about SLURM: each stage's resources and why, and the cost estimate.

    ftlab plan examples/weighted_loss.yaml --scale full --cost

GPU-hours are an upper bound: GPUs x the time limit each job asks for (what a cluster reserves
and most accounting charges at most). Checkpoint storage counts every checkpoint a run keeps
(every `save_steps`, every epoch end, the last step) at the policy's bytes per parameter, and,
for comparison with hand estimates like seed 002's, one final bf16 copy of the weights per run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ftlab.runners.slurm.resources import choose, choose_for_run, format_params, model_size, policy_table


@dataclass
class Cost:
    gpu_hours: dict[str, float] = field(default_factory=dict)  # by stage
    checkpoints: int = 0
    checkpoint_gb: float = 0.0
    final_weights_gb: float = 0.0
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"gpu_hours": self.gpu_hours, "gpu_hours_total": sum(self.gpu_hours.values()), "checkpoints": self.checkpoints,
                "checkpoint_gb": round(self.checkpoint_gb, 1), "final_weights_gb": round(self.final_weights_gb, 1)}


def resource_lines(graph, profile) -> list[str]:
    """One line per distinct (stage, request) with why it was chosen, e.g. for `ftlab plan`."""
    table = policy_table(profile)
    seen: dict[str, list[str]] = {}
    for run in graph.plan.runs:
        size = model_size(graph.plan, run.config)
        stages = (["train"] if run.trains else []) + ["eval"]
        for stage in stages:
            res = choose_for_run(table, size, stage=stage, exp=run.config, limits=profile.limits)
            line = f"{stage:<6} {' '.join(res.sbatch_options())}  ({'; '.join(res.why)})"
            seen.setdefault(line, []).append(run.name)
    cpu = choose(table, None, stage="cpu", method="", limits=profile.limits)
    lines = [f"prepare/report {' '.join(cpu.sbatch_options())}"]
    for line, runs in seen.items():
        lines.append(f"{line}: {len(runs)} run{'s' if len(runs) != 1 else ''}")
    from ftlab.runners.slurm.render import slurm_group

    curates = [t for t in graph.tasks if slurm_group(t) == "curate"]
    if curates:  # a difficulty filter asks a model: its own array on that model's GPUs (render.py)
        exp = graph.plan.experiment
        res = choose_for_run(table, model_size(graph.plan, exp), stage="curate", exp=exp, limits=profile.limits)
        lines.append(f"curate {' '.join(res.sbatch_options())}  ({'; '.join(res.why)}): {len(curates)} task{'s' if len(curates) != 1 else ''}")
    return lines


def estimate(graph, profile) -> Cost:
    """GPU-hours of the jobs `ftlab submit` would render for every task (render.build_jobs), summed by
    stage group: an array asks its request once per task; checkpoint storage per trained run."""
    from ftlab.runners.slurm.render import build_jobs

    table = policy_table(profile)
    cost = Cost(gpu_hours={"train": 0.0, "eval": 0.0})
    eval_tasks = 0
    for job in build_jobs(graph, {t.key for t in graph.tasks}, {}, profile):
        stage = _stage_of(job.group)
        tasks = len(job.keys) if job.array else 1
        if stage == "eval":
            eval_tasks += tasks
        if job.resources.gpus:
            cost.gpu_hours[stage] = cost.gpu_hours.get(stage, 0.0) + tasks * job.resources.gpus * job.resources.hours()
    for run in graph.plan.runs:
        if not run.trains:
            continue
        exp = run.config
        count = checkpoint_count(graph.plan, exp)
        params = model_size(graph.plan, exp).params or _default_params(table)
        cost.checkpoints += count
        cost.checkpoint_gb += count * params * table["checkpoint_bytes_per_param"].get(exp.method.name, 2.0) / 1e9
        cost.final_weights_gb += params * table["final_weights_bytes_per_param"] / 1e9
    total = sum(cost.gpu_hours.values())
    trained = sum(1 for r in graph.plan.runs if r.trains)
    cost.lines = [
        "GPU-hours (upper bound: GPUs x time limit): "
        + " + ".join(f"{stage} {hours:,.1f}" for stage, hours in cost.gpu_hours.items()) + f" = {total:,.1f}"
        + f" ({eval_tasks} eval tasks: one per checkpoint where the checkpoints are known, plus one per run)",
        f"checkpoints: {cost.checkpoints} over {trained} trained runs, {cost.checkpoint_gb:,.1f} GB with optimizer state (what exact resume needs)",
        f"final weights only (one bf16 copy per trained run): {cost.final_weights_gb:,.1f} GB",
    ]
    return cost


def _stage_of(group: str) -> str:
    """The stage a job group's GPU time is counted under: eval-ckpt-2 -> eval, train-2 -> train."""
    for stage in ("eval", "train", "curate", "release"):
        if group.startswith(stage):
            return stage
    return group


def _default_params(table) -> float:
    return table["sizes"][table["default_size"]]["max_params"] / 2  # e.g. 1B for the 1B row (max 2e9)


def checkpoint_count(plan, exp) -> int:
    """Checkpoints one run keeps: every save_steps, every epoch end, the last step (as ftlab.train saves)."""
    examples = _train_examples(plan, exp)
    hp = exp.train
    per_epoch = max(1, math.ceil(examples / (hp.batch_size * hp.grad_accum))) if examples else 1
    total = hp.max_steps or max(1, math.ceil(per_epoch * hp.epochs))
    steps = {total}
    steps.update(per_epoch * k for k in range(1, math.ceil(hp.epochs) + 1) if per_epoch * k <= total)
    if hp.save_steps:
        steps.update(range(hp.save_steps, total + 1, hp.save_steps))
    keep_last = getattr(hp, "keep_last", None)
    return min(len(steps), keep_last) if keep_last else len(steps)


def _train_examples(plan, exp) -> int:
    ds = exp.datasets_with_role("train")[0]
    if ds.generate is not None:
        n = ds.generate.n
    else:
        path = plan.base_dir / ds.path
        try:
            text = path.read_text()
            n = len(json.loads(text)) if path.suffix == ".json" else sum(1 for line in text.splitlines() if line.strip())
        except (OSError, ValueError):
            return 0
    return min(n, ds.limit) if ds.limit else n


def params_note(graph) -> str:
    size = model_size(graph.plan, graph.plan.experiment)
    return f"model size: {format_params(size.params)} parameters ({size.source})"
