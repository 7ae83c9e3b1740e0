"""Registry behaviour on real SQLite files: round trips, attempts, metric replacement,
undefined metrics, concurrent writers, bad files and the results.json export.

Run: .venv/bin/pytest tests/registry -q   (about 2 s; the concurrency test spawns 4 processes)
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ftlab.errors import RegistryError
from ftlab.registry import Registry, export_results, store


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "exp" / "registry.sqlite")


def add_run(reg: Registry, run_id: str, index: int) -> None:
    reg.upsert_run(run_id, index=index, name=f"lr-{index}", kind="lora", seed=index,
                   sweep={"lr": 10.0 ** -index}, config={"model": "tiny", "lr": 10.0 ** -index})


def test_runs_round_trip_in_index_order_and_upsert_keeps_created_at(reg: Registry) -> None:
    add_run(reg, "r-b", 1)
    add_run(reg, "r-a", 0)
    first = reg.run("r-b")
    time.sleep(0.01)  # timestamps have ms resolution; make a rewritten created_at visible
    reg.upsert_run("r-b", index=1, name="renamed", kind="full", seed=None, sweep={}, config={"x": 1})

    assert [r["run_id"] for r in reg.runs()] == ["r-a", "r-b"]
    again = reg.run("r-b")
    assert again == {"run_id": "r-b", "index": 1, "name": "renamed", "kind": "full", "seed": None,
                     "sweep": {}, "config": {"x": 1}, "created_at": first["created_at"]}
    assert reg.run("r-a")["sweep"] == {"lr": 1.0}
    assert reg.run("missing") is None


def test_registry_creates_parent_dir_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "registry.sqlite"
    Registry(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"


def test_stage_attempts_count_up_and_a_restart_clears_the_last_result(reg: Registry) -> None:
    key = "train/r1-abc"
    assert reg.stage_started(key, stage="train", run_id="r1", identity="abc", config={"lr": 1},
                             host="node1", pid=11) == 1
    reg.stage_finished(key, identity="abc", outputs={"adapter": "runs/r1/adapter"}, seconds=2.5)
    done = reg.stage(key)
    assert (done["status"], done["outputs"], done["seconds"]) == ("done", {"adapter": "runs/r1/adapter"}, 2.5)
    assert done["finished_at"] is not None

    assert reg.stage_started(key, stage="train", run_id="r1", identity="abc", config={"lr": 2},
                             host="node2", pid=22) == 2
    row = reg.stage(key)
    assert row == {"key": key, "stage": "train", "run_id": "r1", "identity": "abc",
                   "status": "running", "attempt": 2, "started_at": row["started_at"],
                   "finished_at": None, "seconds": None, "host": "node2", "pid": 22,
                   "config": {"lr": 2}, "outputs": {}, "error": None}
    assert row["started_at"] >= done["started_at"]


def test_stage_failed_keeps_the_error_text(reg: Registry) -> None:
    reg.stage_started("eval/r1-x", stage="eval", run_id="r1", identity="x", config={})
    error = "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory ('quoted')"
    reg.stage_failed("eval/r1-x", identity="x", error=error, seconds=1.25)
    row = reg.stage("eval/r1-x")
    assert (row["status"], row["error"], row["seconds"], row["attempt"]) == ("failed", error, 1.25, 1)
    # A later successful attempt clears the old error.
    reg.stage_started("eval/r1-x", stage="eval", run_id="r1", identity="x", config={})
    assert reg.stage("eval/r1-x")["error"] is None


def test_finishing_a_stage_never_started_or_restarted_with_other_inputs_is_refused(reg: Registry) -> None:
    with pytest.raises(RegistryError, match="never started"):
        reg.stage_finished("train/r9", identity="a", outputs={}, seconds=1.0)
    reg.stage_started("train/r1", stage="train", run_id="r1", identity="new", config={})
    with pytest.raises(RegistryError, match="identity 'new'"):
        reg.stage_failed("train/r1", identity="old", error="boom")
    assert reg.stage("train/r1")["status"] == "running"


def test_stage_skipped_records_done_and_keeps_the_attempt(reg: Registry) -> None:
    reg.stage_skipped("data/d-77", stage="data", run_id=None, identity="77", outputs={"train": "data/train.jsonl"})
    new = reg.stage("data/d-77")
    assert (new["status"], new["attempt"], new["outputs"]) == ("done", 0, {"train": "data/train.jsonl"})

    reg.stage_started("train/r1", stage="train", run_id="r1", identity="a", config={"lr": 1})
    reg.stage_started("train/r1", stage="train", run_id="r1", identity="a", config={"lr": 1})
    reg.stage_failed("train/r1", identity="a", error="killed")
    reg.stage_skipped("train/r1", stage="train", run_id="r1", identity="a", outputs={"adapter": "x"})
    row = reg.stage("train/r1")
    assert (row["status"], row["attempt"], row["error"], row["config"]) == ("done", 2, None, {"lr": 1})


def test_stages_filter_by_run_and_stage_and_sort_by_key(reg: Registry) -> None:
    for key, stage, run_id in [("train/r2", "train", "r2"), ("eval/r1", "eval", "r1"),
                               ("train/r1", "train", "r1"), ("data/d", "data", None)]:
        reg.stage_started(key, stage=stage, run_id=run_id, identity="i", config={})
    assert [s["key"] for s in reg.stages()] == ["data/d", "eval/r1", "train/r1", "train/r2"]
    assert [s["key"] for s in reg.stages(run_id="r1")] == ["eval/r1", "train/r1"]
    assert [s["key"] for s in reg.stages(stage="train")] == ["train/r1", "train/r2"]
    assert [s["key"] for s in reg.stages(run_id="r1", stage="eval")] == ["eval/r1"]


def record(reg: Registry, run_id: str, checkpoint: str, step: int, split: str, evaluator: str,
           values: dict, **kwargs: object) -> None:
    reg.record_metrics(run_id, checkpoint=checkpoint, step=step, split=split, evaluator=evaluator,
                       values=values, **kwargs)


def test_record_metrics_replaces_its_group_and_keeps_the_others(reg: Registry) -> None:
    record(reg, "r1", "step-20", 20, "test", "acc", {"accuracy": 0.5, "f1": 0.4, "stale": 1.0})
    record(reg, "r1", "step-20", 20, "val", "acc", {"accuracy": 0.6})        # other split
    record(reg, "r1", "step-10", 10, "test", "acc", {"accuracy": 0.3})       # other checkpoint
    record(reg, "r1", "step-20", 20, "test", "judge", {"score": 7.0})        # other evaluator
    record(reg, "r2", "step-20", 20, "test", "acc", {"accuracy": 0.9})       # other run

    record(reg, "r1", "step-20", 20, "test", "acc", {"accuracy": 0.55, "f1": 0.45},
           evidence="runs/r1/eval/step-20/test.jsonl")

    got = [(m["run_id"], m["checkpoint"], m["split"], m["evaluator"], m["metric"], m["value"])
           for m in reg.metrics()]
    assert got == [  # ordered by run_id, step, checkpoint, split, evaluator, metric
        ("r1", "step-10", "test", "acc", "accuracy", 0.3),
        ("r1", "step-20", "test", "acc", "accuracy", 0.55),
        ("r1", "step-20", "test", "acc", "f1", 0.45),
        ("r1", "step-20", "test", "judge", "score", 7.0),
        ("r1", "step-20", "val", "acc", "accuracy", 0.6),
        ("r2", "step-20", "test", "acc", "accuracy", 0.9),
    ]
    replaced = reg.metrics(run_id="r1", split="test")[1]
    assert replaced["evidence"] == "runs/r1/eval/step-20/test.jsonl"
    assert replaced["step"] == 20 and replaced["undefined_reason"] is None
    assert {m["split"] for m in reg.metrics(split="val")} == {"val"}


def test_undefined_metric_is_stored_as_none_with_its_reason(reg: Registry) -> None:
    record(reg, "r1", "final", 100, "test", "acc", {"accuracy": 0.8, "f1": None},
           undefined={"f1": "no positive labels in split", "auroc": "single class"})
    by_name = {m["metric"]: (m["value"], m["undefined_reason"]) for m in reg.metrics()}
    assert by_name == {"accuracy": (0.8, None), "f1": (None, "no positive labels in split"),
                       "auroc": (None, "single class")}


def test_none_without_a_reason_or_a_value_with_a_reason_raises_and_writes_nothing(reg: Registry) -> None:
    with pytest.raises(ValueError, match="'f1'"):
        record(reg, "r1", "final", 1, "test", "acc", {"accuracy": 0.8, "f1": None})
    with pytest.raises(ValueError, match="'accuracy'"):
        record(reg, "r1", "final", 1, "test", "acc", {"accuracy": 0.8}, undefined={"accuracy": "why"})
    assert reg.metrics() == []


def test_nan_and_inf_are_stored_as_null_with_a_reason(reg: Registry) -> None:
    record(reg, "r1", "final", 1, "test", "loss",
           {"loss": float("nan"), "ppl": float("inf"), "kl": float("nan")}, undefined={"kl": "no reference"})
    by_name = {m["metric"]: (m["value"], m["undefined_reason"]) for m in reg.metrics()}
    assert by_name == {"loss": (None, "NaN"), "ppl": (None, "inf"), "kl": (None, "no reference")}


def test_a_file_that_is_not_a_database_raises_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    path.write_bytes(b"this is not sqlite\n" * 200)
    with pytest.raises(RegistryError, match="registry.sqlite") as info:
        Registry(path)
    assert "move it aside" in str(info.value)


def test_a_registry_from_a_newer_ftlab_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    Registry(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(RegistryError, match="schema version 2.*Upgrade ftlab"):
        Registry(path)


def test_a_writer_waits_for_a_lock_held_by_another_connection(reg: Registry) -> None:
    holder = sqlite3.connect(reg.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, holder.commit)
    releaser.start()
    started = time.monotonic()
    reg.stage_started("train/r1", stage="train", run_id="r1", identity="a", config={})
    releaser.join()
    holder.close()
    assert time.monotonic() - started >= 0.4  # it really waited for the lock, then succeeded
    assert reg.stage("train/r1")["attempt"] == 1


def test_past_the_busy_timeout_a_writer_retries_then_gives_a_clear_error(
        reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.05)  # SQLite gives up fast; our retry loop must carry on
    holder = sqlite3.connect(reg.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, holder.commit)
    releaser.start()
    reg.upsert_run("r1", index=0, name="a", kind="lora", seed=0, sweep={}, config={})
    releaser.join()
    assert reg.run("r1") is not None

    monkeypatch.setattr(store, "RETRY_DEADLINE_S", 0.3)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(RegistryError, match="stayed locked"):
        reg.upsert_run("r2", index=1, name="b", kind="lora", seed=0, sweep={}, config={})
    holder.close()
    assert reg.run("r2") is None


WORKERS, ROWS = 4, 50


def write_many(path: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    """One concurrent writer: its own Registry object, as in a separate SLURM task."""
    reg = Registry(path)
    barrier.wait()  # all four start writing at the same moment
    reg.upsert_run(f"r{worker}", index=worker, name=f"w{worker}", kind="lora", seed=worker,
                   sweep={}, config={})
    for i in range(ROWS):
        key = f"train/r{worker}-{i:03d}"
        reg.stage_started(key, stage="train", run_id=f"r{worker}", identity=str(i), config={"i": i})
        reg.record_metrics(f"r{worker}", checkpoint=f"step-{i}", step=i, split="test",
                           evaluator="acc", values={"accuracy": i / ROWS, "f1": None},
                           undefined={"f1": "no positives"})
        reg.stage_finished(key, identity=str(i), outputs={"i": i}, seconds=0.01)


def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    Registry(path)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing inherited, as on SLURM
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=write_many, args=(str(path), w, barrier)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    reg = Registry(path)
    stages = reg.stages()
    assert len(stages) == WORKERS * ROWS
    assert {s["status"] for s in stages} == {"done"}
    assert len(reg.metrics()) == WORKERS * ROWS * 2
    assert len(reg.metrics(run_id="r3")) == ROWS * 2
    assert [r["run_id"] for r in reg.runs()] == [f"r{w}" for w in range(WORKERS)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_export_results_nests_stages_and_metrics_under_their_runs(reg: Registry, tmp_path: Path) -> None:
    add_run(reg, "r1", 1)
    add_run(reg, "r0", 0)
    reg.stage_skipped("data/d-1", stage="data", run_id=None, identity="d1", outputs={"train": "data/t.jsonl"})
    reg.stage_started("train/r1", stage="train", run_id="r1", identity="a", config={})
    reg.stage_finished("train/r1", identity="a", outputs={"adapter": "runs/r1"}, seconds=3.0)
    record(reg, "r1", "final", 9, "test", "acc", {"accuracy": 0.7, "f1": None}, undefined={"f1": "no positives"})
    record(reg, "r0", "final", 9, "test", "acc", {"accuracy": 0.2})

    out = tmp_path / "results.json"
    export_results(reg, out)
    data = json.loads(out.read_text())

    assert data["schema_version"] == 1 and data["exported_at"]
    assert [r["run_id"] for r in data["runs"]] == ["r0", "r1"]
    r0, r1 = data["runs"]
    assert r1["config"] == {"lr": 0.1, "model": "tiny"} and r1["index"] == 1
    assert [s["key"] for s in r1["stages"]] == ["train/r1"] and r0["stages"] == []
    assert r1["stages"][0]["outputs"] == {"adapter": "runs/r1"}
    assert {m["metric"]: (m["value"], m["undefined_reason"]) for m in r1["metrics"]} == {
        "accuracy": (0.7, None), "f1": (None, "no positives")}
    assert [m["value"] for m in r0["metrics"]] == [0.2]
    assert [s["key"] for s in data["experiment_stages"]] == ["data/d-1"]


def test_a_checkpoint_part_is_listed_but_does_not_speak_for_its_run(reg: Registry, tmp_path: Path) -> None:
    """eval/<run>@<ckpt> (one checkpoint scored on its own under SLURM) sorts after eval/<run>: its
    row must not replace the run's eval outputs (the best checkpoint) nor fail the run."""
    add_run(reg, "r1", 1)
    reg.stage_started("eval/r1", stage="eval", run_id="r1", identity="e", config={})
    reg.stage_finished("eval/r1", identity="e", outputs={"best_checkpoint": "epoch_0"}, seconds=1.0)
    reg.stage_started("eval/r1@epoch_7", stage="eval", run_id="r1", identity="e", config={})
    reg.stage_failed("eval/r1@epoch_7", identity="e", error="StageError: checkpoint epoch_7 was never written", seconds=0.1)
    export_results(reg, tmp_path / "results.json")
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [s["key"] for s in run["stages"]] == ["eval/r1", "eval/r1@epoch_7"]
    assert run["status"] == "done" and run["selected_checkpoint"] == "epoch_0"
