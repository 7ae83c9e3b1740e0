"""Rendered sbatch scripts (golden files), shell quoting, resources by model size, cost estimate.

Golden files live in tests/runners/slurm/golden/. After an intended change to the scripts,
re-record them and review the diff:

    FTLAB_RERECORD=1 .venv/bin/pytest tests/runners/slurm -k golden

No SLURM needed here: `ftlab submit --dry-run` only writes scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from ftlab.graph import build_graph
from ftlab.runners.slurm.estimate import estimate
from ftlab.runners.slurm.profile import ClusterProfile, load_profile
from ftlab.runners.slurm.resources import ModelSize, choose, count_params, params_from_name, policy_table
from ftlab.spec.plan import load_plan
from tests.conftest import REPO, write_spec

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
FIXTURES = HERE / "fixtures"
RERECORD = os.environ.get("FTLAB_RERECORD") == "1"


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if RERECORD:
        path.write_text(text)
    assert path.is_file(), f"no golden file {path}; record it: FTLAB_RERECORD=1 .venv/bin/pytest tests/runners/slurm -k golden"
    assert text == path.read_text(), f"{name} differs from its golden file; if intended: FTLAB_RERECORD=1 .venv/bin/pytest tests/runners/slurm -k golden"


def _sweep_spec(directory: Path, profile: str) -> Path:
    spec = write_spec(directory, sweep="[{grid: {lr: [0.003, 0.002]}}]", controls="[untuned]")
    shutil.copy(FIXTURES / profile, directory / "cluster.yaml")
    spec.write_text(spec.read_text().replace("learning_rate: 0.003", "learning_rate: '${lr}'") + "cluster: cluster.yaml\n")
    return spec


def test_golden_scripts_of_a_tiny_sweep(tmp_path: Path, capsys):
    spec = _sweep_spec(tmp_path, "gpu_cluster.yaml")
    assert main(["submit", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "eval         2 tasks   would run: sbatch --parsable '--dependency=aftercorr:<train>'" in out
    # save_steps on data not prepared yet: the checkpoints are not known, so one eval task per run
    assert "eval/lr0.003, eval/lr0.002: one task scores every checkpoint after training: with train.save_steps" in out
    scripts = tmp_path / "out" / "slurm" / "scripts"
    assert sorted(p.name for p in scripts.iterdir()) == ["eval-ready.sbatch", "eval.sbatch", "prepare.sbatch", "report.sbatch", "train.sbatch"]
    for path in sorted(scripts.iterdir()):
        _check_golden(f"tiny_{path.stem}.sbatch", path.read_text().replace(str(tmp_path), "<tmp>"))


def test_golden_scripts_of_a_sweep_whose_checkpoints_are_known(tmp_path: Path, capsys):
    """Epoch saving: every (run, checkpoint) is a held array task, released by the train tasks."""
    spec = _sweep_spec(tmp_path, "gpu_cluster.yaml")
    spec.write_text(spec.read_text().replace("epochs: 1,", "epochs: 2,").replace("save_steps: 10,", ""))
    assert main(["submit", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [line.split("would run: ")[1] for line in out.splitlines() if "would run: " in line]
    assert lines == [
        "sbatch --parsable scripts/prepare.sbatch",
        "sbatch --parsable scripts/eval-ckpt.sbatch  (held: each task released as its checkpoint is written)",
        "sbatch --parsable '--dependency=afterok:<prepare>' scripts/train.sbatch",
        "sbatch --parsable '--dependency=afterany:<train>' scripts/release.sbatch '<eval-ckpt>'",
        "sbatch --parsable '--dependency=aftercorr:<train>,afterany:<eval-ckpt>' scripts/eval.sbatch",
        "sbatch --parsable '--dependency=afterok:<prepare>' scripts/eval-ready.sbatch",  # the untuned control
        "sbatch --parsable '--dependency=afterany:<eval-ckpt>,afterany:<eval>,afterany:<eval-ready>' scripts/report.sbatch",
    ]
    assert "one task scores every checkpoint" not in out
    scripts = tmp_path / "out" / "slurm" / "scripts"
    for name in ("eval-ckpt", "release", "eval", "train"):
        _check_golden(f"tiny_ckpt_{name}.sbatch", (scripts / f"{name}.sbatch").read_text().replace(str(tmp_path), "<tmp>"))


def test_golden_train_script_of_the_weighted_loss_sweep(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # size from the name, on any machine
    spec = tmp_path / "weighted_loss.yaml"
    shutil.copytree(REPO / "examples" / "clusters", tmp_path / "clusters")  # the spec's own profile (--cluster overrides it)
    spec.write_text((REPO / "examples" / "weighted_loss.yaml").read_text().replace("output_dir: ../runs/weighted_loss_full", "output_dir: out"))
    shutil.copy(FIXTURES / "gpu_cluster.yaml", tmp_path / "cluster.yaml")
    assert ftlab.submit(spec, dry_run=True, scale="full", cluster=tmp_path / "cluster.yaml").jobs
    text = (tmp_path / "out" / "slurm" / "scripts" / "train.sbatch").read_text()
    assert "export FTLAB_SCALE=full" in text  # every job reads the full-scale experiment
    assert "#SBATCH --array=0-18" in text and "#SBATCH --gres=gpu:4" in text
    _check_golden("weighted_loss_train.sbatch", text.replace(str(tmp_path), "<tmp>"))


def test_values_reach_the_job_intact_through_bash(tmp_path: Path):
    """Quotes, $(), backticks and newlines in paths, names and env values arrive as written."""
    nasty = tmp_path / "we'ird $(touch PWNED) `touch PWNED2` \"q\"\nline"
    nasty.mkdir()
    spec = write_spec(nasty, sweep="""[{v: "a'b $(touch PWNED3) `id` ../../etc"}]""")
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'env': os.environ['NASTY']}))\n")
    probe.chmod(0o755)
    wrapper = tmp_path / "ftlab-probe"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {probe} \"$@\"\n")
    wrapper.chmod(0o755)
    value = "x'y $(touch PWNED4) `touch PWNED5` \"z\"\nsecond line"
    (nasty / "cluster.yaml").write_text(json.dumps({"ftlab": str(wrapper), "env": {"NASTY": value}}))
    spec.write_text(spec.read_text() + "cluster: cluster.yaml\n")
    assert ftlab.submit(spec, dry_run=True).jobs
    graph = build_graph(load_plan(spec))
    out = graph.plan.output_dir
    for task in graph.tasks:  # run names cannot escape the experiment directory
        assert task.out_dir.resolve().is_relative_to(out)
    script = out / "slurm" / "scripts" / "train.sbatch"
    proc = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "1", "SLURM_CPUS_PER_TASK": "1"},
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["argv"] == ["stage", "run", str(spec.resolve()), graph.tasks[[t.stage for t in graph.tasks].index("train")].key]
    assert got["env"] == value
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


def test_resources_follow_parameter_count_and_method():
    table = policy_table(ClusterProfile())
    limits = ClusterProfile().limits
    qwen7b = QWEN_7B
    assert round(count_params(qwen7b) / 1e9, 2) == 7.62  # Qwen2.5-7B's published 7.62B
    size = ModelSize(count_params(qwen7b), "test")
    full = choose(table, size, stage="train", method="full", limits=limits)
    lora = choose(table, size, stage="train", method="lora", limits=limits)
    qlora = choose(table, size, stage="train", method="qlora", limits=limits)
    evaluation = choose(table, size, stage="eval", method="full", limits=limits)
    assert (full.gpus, full.constraint, full.time) == (4, "gpu80", "48:00:00")  # 7.6e9 x 16 B x 1.5 = 183 GB
    assert (lora.gpus, qlora.gpus, evaluation.gpus) == (1, 1, 1)
    assert (evaluation.mem, evaluation.cpus, evaluation.time) == ("96G", 8, "0:30:00")  # seed 004's 8B row
    unknown = choose(table, ModelSize(None, "unknown"), stage="eval", method="lora", limits=limits)
    assert (unknown.mem, unknown.gpus, unknown.constraint, unknown.cpus) == ("32G", 1, None, 4)  # seed 004: 1B default
    assert params_from_name("meta-llama/Llama-3.3-70B-Instruct") == 70e9 and params_from_name("org/model") is None


def test_profile_overrides_and_errors(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("resources: {8B: {gpus: 2, time: {train: '24:00:00'}}}\nlimits: {mem_per_node: 64G}\n")
    profile = load_profile(path)
    res = choose(policy_table(profile), ModelSize(8e9, "t"), stage="train", method="lora", limits=profile.limits)
    assert (res.gpus, res.time, res.mem) == (2, "24:00:00", "64G") and "capped" in " ".join(res.why)
    from ftlab.errors import SlurmError

    path.write_text("partition: 'gpu; rm -rf /'\n")
    with pytest.raises(SlurmError, match="partition"):
        load_profile(path)


QWEN_7B = {"hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944, "vocab_size": 152064,
           "num_attention_heads": 28, "num_key_value_heads": 4, "tie_word_embeddings": False}


def test_cost_estimate_of_seed_002(tmp_path: Path, monkeypatch, capsys):
    """Seed 002 by hand: 19 runs x 4 GPUs x 48 h = 3,648 GPU-hours; 19 x ~15 GB = 285 GB of weights.
    Eval: each run's epoch_0 in its own task plus its run-level task, and the shared base's step_0
    once for all 19 (every run starts from it), 30 min on 1 GPU each."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    plan = load_plan(REPO / "examples" / "weighted_loss.yaml", scale="full")
    cost = estimate(build_graph(plan), ClusterProfile())
    assert cost.gpu_hours == {"train": 3648.0, "eval": (19 * 2 + 1) * 0.5}
    assert round(cost.final_weights_gb) == 266  # weights not on disk: 7e9 from the name x 2 bytes x 19
    assert main(["plan", str(REPO / "examples" / "weighted_loss.yaml"), "--scale", "full", "--cost"]) == 0
    out = capsys.readouterr().out
    assert "train 3,648.0 + eval 19.5" in out and "(39 eval tasks" in out and "row 8B" in out and "size in the name" in out

    # With the model's config.json in the HF cache (no weights), its parameter count wins over the name.
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(QWEN_7B))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cost = estimate(build_graph(plan), ClusterProfile())
    assert round(cost.final_weights_gb) == 289 and cost.gpu_hours["train"] == 3648.0  # 19 x 7.62e9 x 2 bytes


def test_curation_gets_its_own_time_row_and_baselines_wait_for_the_curated_set(tmp_path: Path):
    """A difficulty filter generates for every question (hours at 003's scale, not an eval's 30
    min); a baseline that reads a curated train set runs after the curate array, and the report
    after the baseline."""
    from ftlab.runners.slurm.render import build_jobs

    spec = _sweep_spec(tmp_path, "gpu_cluster.yaml")
    train = "generate: {name: hem, n: 240, seed: 0}"
    text = spec.read_text().replace(train, train + ", curate: [{name: quality}, {name: difficulty, evaluator: logits}]", 1)
    spec.write_text(text + "baselines: {featurizer: {name: composition}}\n")
    graph = build_graph(load_plan(spec))
    profile = load_profile(tmp_path / "cluster.yaml")
    jobs = {j.group: j for j in build_jobs(graph, {t.key for t in graph.tasks}, {}, profile)}
    assert jobs["curate"].resources.time == "8:00:00" and jobs["eval"].resources.time == "0:30:00"
    assert not any(k.startswith("baseline/") for k in jobs["prepare"].keys)
    assert all(k.startswith("baseline/") for k in jobs["baselines"].keys) and jobs["baselines"].keys
    assert {(d.kind, d.group) for d in jobs["baselines"].depends} >= {("afterok", "prepare"), ("afterok", "curate")}
    assert ("afterany", "baselines") in {(d.kind, d.group) for d in jobs["report"].depends}
    cost = estimate(graph, profile)  # the curate array's GPU time is counted too
    assert cost.gpu_hours["curate"] == jobs["curate"].resources.gpus * 8.0 > 0


def test_curation_that_asks_no_model_is_prepare_work_and_costs_no_gpu(tmp_path: Path):
    """quality/length/random filters are CPU seconds: in the prepare job, not a GPU array, and the
    estimate (the sum of what would be submitted) counts no curate GPU-hours."""
    from ftlab.runners.slurm.render import build_jobs

    spec = _sweep_spec(tmp_path, "gpu_cluster.yaml")
    train = "generate: {name: hem, n: 240, seed: 0}"
    spec.write_text(spec.read_text().replace(train, train + ", curate: [{name: quality}]", 1))
    graph = build_graph(load_plan(spec))
    profile = load_profile(tmp_path / "cluster.yaml")
    jobs = {j.group: j for j in build_jobs(graph, {t.key for t in graph.tasks}, {}, profile)}
    assert "curate" not in jobs and any(k.startswith("curate/") for k in jobs["prepare"].keys)
    assert jobs["prepare"].keys.index(next(k for k in jobs["prepare"].keys if k.startswith("curate/"))) > \
        jobs["prepare"].keys.index(next(k for k in jobs["prepare"].keys if k.startswith("data/train")))
    assert "curate" not in estimate(graph, profile).gpu_hours


def test_arrays_beyond_max_array_size_are_split_with_their_dependencies(tmp_path: Path, capsys):
    """5 runs, MaxArraySize 2: train and eval in slices of 2, 2, 1 paired slice by slice (aftercorr),
    the eval-ckpt array (11 tasks: step_0 once, 2 epochs x 5 runs) in 6 slices that the release job
    and the evals wait for; a throttle of 2 tasks in flight shared by each array's slices."""
    spec = write_spec(tmp_path, epochs=2, save_steps="null", sweep="[{grid: {lr: [0.001, 0.002, 0.003, 0.004, 0.005]}}]")
    spec.write_text(spec.read_text().replace("learning_rate: 0.003", "learning_rate: '${lr}'") + "cluster: cluster.yaml\n")
    (tmp_path / "cluster.yaml").write_text("limits: {gpus_per_node: 0, max_array_size: 2, tasks_in_flight: 2}\n")
    assert main(["submit", str(spec), "--dry-run"]) == 0
    lines = [line.split("would run: ")[1] for line in capsys.readouterr().out.splitlines() if "would run: " in line]
    ckpt = [f"<eval-ckpt.{k}>" for k in range(1, 7)]
    assert lines == (
        ["sbatch --parsable scripts/prepare.sbatch"]
        + [f"sbatch --parsable scripts/eval-ckpt.{k}.sbatch  (held: each task released as its checkpoint is written)" for k in range(1, 7)]
        + [f"sbatch --parsable '--dependency=afterok:<prepare>' scripts/train.{k}.sbatch" for k in range(1, 4)]
        + ["sbatch --parsable '--dependency=afterany:<train.1>,afterany:<train.2>,afterany:<train.3>' scripts/release.sbatch " + " ".join(f"'{c}'" for c in ckpt)]
        + [f"sbatch --parsable '--dependency=aftercorr:<train.{k}>," + ",".join(f"afterany:{c}" for c in ckpt) + f"' scripts/eval.{k}.sbatch" for k in range(1, 4)]
        + ["sbatch --parsable '--dependency=" + ",".join(f"afterany:{c}" for c in ckpt) + ",afterany:<eval.1>,afterany:<eval.2>,afterany:<eval.3>' scripts/report.sbatch"])
    scripts = tmp_path / "out" / "slurm" / "scripts"
    tasks = {}
    for k in range(1, 4):
        for group in ("train", "eval"):
            text = (scripts / f"{group}.{k}.sbatch").read_text()
            tasks[group, k] = [line.split()[0] for line in text.splitlines() if line.startswith(f"  {group}/")]
            assert f"#SBATCH --array=0-{len(tasks[group, k]) - 1}" + ("%1" if len(tasks[group, k]) > 1 else "") in text
    runs = [f"lr{lr}" for lr in ("0.001", "0.002", "0.003", "0.004", "0.005")]
    assert [t for k in range(1, 4) for t in tasks["train", k]] == [f"train/{r}" for r in runs]  # every run once, in order
    assert all([t.replace("train/", "eval/") for t in tasks["train", k]] == tasks["eval", k] for k in range(1, 4))  # index i pairs


def test_a_submission_beyond_max_job_count_is_refused_whole():
    """Every array task becomes a job record when it starts: 3 train tasks and a report are 4 jobs."""
    from ftlab.errors import SlurmError
    from ftlab.runners.slurm.arrays import ArrayLimits, fit_arrays
    from ftlab.runners.slurm.render import Job
    from ftlab.runners.slurm.resources import Resources

    res = Resources(cpus=1, mem="1G", gpus=1, time="1:00:00")
    jobs = [Job("train", ["train/a", "train/b", "train/c"], True, res), Job("report", ["report"], False, res)]
    assert [j.throttle for j in fit_arrays(jobs, ArrayLimits(max_job_count=4, gpus_in_flight=2))] == [2, None]
    with pytest.raises(SlurmError, match=r"makes 4 SLURM jobs .* at most 3 \(MaxJobCount\)"):
        fit_arrays(jobs, ArrayLimits(max_job_count=3))
