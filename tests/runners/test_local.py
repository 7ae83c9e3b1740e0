"""The local runner end to end on a tiny experiment: results, skipping, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

import ftlab
from ftlab.cli import main
from ftlab.registry import Registry
from tests.conftest import write_spec


def _ftlab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftlab.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_run_records_every_checkpoint_and_skips_when_done(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, controls="[untuned]")
    assert ftlab.run(spec).ok
    out = tmp_path / "out"
    reg = Registry(out / "registry.sqlite")
    assert [r["name"] for r in reg.runs()] == ["run", "untuned"]
    run_id = reg.runs()[0]["run_id"]
    checkpoints = {m["checkpoint"] for m in reg.metrics(run_id=run_id, split="valid")}
    assert checkpoints == {"step_0", "step_10", "epoch_0"}  # 15 steps: one step save + the epoch end
    untuned = {m["checkpoint"] for m in reg.metrics(run_id=reg.runs()[1]["run_id"])}
    assert untuned == {"step_0"}

    # registry metrics equal scikit-learn on the kept evidence
    evidence = [m for m in reg.metrics(run_id=run_id, split="test") if m["checkpoint"] == "epoch_0"]
    values = {m["metric"]: m["value"] for m in evidence}
    records = [json.loads(line) for line in (out / evidence[0]["evidence"]).read_text().splitlines()]
    y = [r["label"] for r in records]
    p = [r["pred"] for r in records]
    assert values["accuracy"] == accuracy_score(y, p)
    assert abs(values["f1"] - f1_score(y, p, pos_label="P")) < 1e-12
    assert abs(values["auroc"] - roc_auc_score([t == "P" for t in y], [r["probs"]["P"] for r in records])) < 1e-12

    summary = json.loads((out / "runs" / "run" / "eval" / "summary.json").read_text())
    valid = summary["per_checkpoint"]["valid"]
    trained = [r for r in valid if r["step"] != 0]  # step 0, the untrained base, is never a trained run's best
    assert summary["best_checkpoint"] == max(trained, key=lambda r: (r["accuracy"], -r["step"]))["checkpoint"]
    assert (out / "results.json").is_file() and "run" in (out / "report" / "summary.txt").read_text()
    capsys.readouterr()

    # A second run does nothing: no stage runs, no torch import, seconds.
    started = time.time()
    proc = _ftlab("run", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert "ran 0, skipped" in proc.stdout
    assert time.time() - started < 15
    code = "import sys; from ftlab.cli import main; main(['run', sys.argv[1]]); print('torch' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True)
    assert probe.stdout.strip().endswith("False"), probe.stdout


def test_same_spec_and_seed_give_the_same_numbers(tmp_path: Path):
    results = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        spec = write_spec(tmp_path / name)
        assert ftlab.run(spec).ok
        reg = Registry(tmp_path / name / "out" / "registry.sqlite")
        results.append([(m["checkpoint"], m["split"], m["metric"], m["value"]) for m in reg.metrics()])
    assert results[0] == results[1]


def test_kill_9_during_training_then_resume(tmp_path: Path):
    spec = write_spec(tmp_path, epochs=6, save_steps=10)  # 90 steps
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "ftlab.cli", "run", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = out / "runs" / "run" / "train" / "checkpoints" / "checkpoint-20" / "ftlab_checkpoint.json"
    deadline = time.time() + 240
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)  # a step of this model takes ~10 ms on a fast core: poll finer than that
    assert marker.exists(), "training never reached its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "runs" / "run" / "train" / "_done.json").exists()
    # The kill lands a few steps after the marker was seen; resume must pick the newest *complete* checkpoint then.
    complete = sorted(marker.parent.parent.glob("checkpoint-*/ftlab_checkpoint.json"), key=lambda m: int(m.parent.name.split("-")[1]))
    newest_complete = complete[-1].parent.name

    status = _ftlab("status", str(spec), "--json")
    assert json.loads(status.stdout)[0]["stages"]["train"] == "interrupted"

    again = _ftlab("run", str(spec))
    assert again.returncode == 0, again.stdout + again.stderr
    reg = Registry(out / "registry.sqlite")
    assert len(reg.runs()) == 1
    train = reg.stage("train/run")
    assert train["status"] == "done" and train["attempt"] == 2
    assert train["outputs"]["resumed_from"].endswith(newest_complete), (train["outputs"]["resumed_from"], newest_complete)
    names = [c["name"] for c in json.loads((out / "runs" / "run" / "train" / "checkpoints.json").read_text())]
    assert len(names) == len(set(names)) and names[-1] == "epoch_5"
    evaluated = {m["checkpoint"] for m in reg.metrics(split="valid")}
    assert evaluated == set(names)

    # Exact resume: the same spec run without interruption gives the same loss curve and metrics.
    (tmp_path / "clean").mkdir()
    clean_spec = write_spec(tmp_path / "clean", epochs=6, save_steps=10)
    clean_spec.write_text(spec.read_text())
    assert ftlab.run(clean_spec).ok
    clean = Registry(tmp_path / "clean" / "out" / "registry.sqlite")
    def numbers(registry):
        return [(m["checkpoint"], m["split"], m["metric"], m["value"]) for m in registry.metrics()]
    assert numbers(reg) == numbers(clean)
    # train_loss is the whole run's mean, not the resumed segment's (was 0.134 vs 0.796)
    resumed_loss, clean_loss = train["outputs"]["train_loss"], clean.stage("train/run")["outputs"]["train_loss"]
    assert abs(resumed_loss - clean_loss) <= 1e-9 * clean_loss, (resumed_loss, clean_loss)
    def final_losses(root):
        history = json.loads((root / "out" / "runs" / "run" / "train" / "log_history.json").read_text())
        return [h["loss"] for h in history if "loss" in h and h["step"] > 30]
    assert final_losses(tmp_path) == final_losses(tmp_path / "clean")


def test_dry_run_and_only_skip(tmp_path: Path, capsys):
    spec = write_spec(tmp_path)
    assert main(["run", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "train/run" in out and "would run" in out
    assert not (tmp_path / "out" / "registry.sqlite").exists()
    assert ftlab.run(spec, only=["data"]).ok
    assert main(["run", str(spec), "--dry-run"]) == 0
    lines = capsys.readouterr().out
    assert "data/train" in lines and "done, would skip" in lines
    assert main(["run", str(spec), "--only", "trian"]) == 2
    assert "Did you mean 'train'" in capsys.readouterr().err
