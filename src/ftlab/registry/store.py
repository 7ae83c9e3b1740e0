"""The experiment registry: one SQLite file that records runs, stage executions and metrics.

Usage:
    from ftlab.registry import Registry
    reg = Registry(out_dir / "registry.sqlite")
    reg.upsert_run("r1-abc123", index=0, name="lr=1e-4", kind="lora", seed=0,
                   sweep={"lr": 1e-4}, config=run_config)
    attempt = reg.stage_started("train/r1-abc123", stage="train", run_id="r1-abc123",
                                identity="abc123", config=stage_config)
    reg.stage_finished("train/r1-abc123", identity="abc123",
                       outputs={"adapter": "runs/r1/adapter"}, seconds=41.2)
    reg.record_metrics("r1-abc123", checkpoint="step-100", step=100, split="test",
                       evaluator="label_accuracy", values={"accuracy": 0.81, "f1": None},
                       undefined={"f1": "no positive labels in split"},
                       evidence="runs/r1/eval/step-100/test.jsonl")

Several processes may write at once (SLURM array tasks, a local pool). Every call opens its own
connection, runs one transaction and closes it, so nothing is inherited across a fork and no
lock outlives a call. Writes take the write lock up front (BEGIN IMMEDIATE) so two writers never
deadlock upgrading read locks; a writer that finds the file busy waits up to 60 s inside SQLite,
then retries with backoff for up to 2 minutes in all before raising RegistryError.

Caveat: SQLite's WAL mode needs every process on one host (the WAL index is shared memory).
Array tasks on different nodes writing one file on NFS/Lustre is outside what WAL guarantees.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ftlab.errors import RegistryError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
# Total time one call may spend retrying "database is locked": two full busy timeouts, enough
# for a neighbour's long checkpoint of the WAL on a slow shared disk.
RETRY_DEADLINE_S = 120.0

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, idx INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        seed INTEGER, sweep TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stages (
        key TEXT PRIMARY KEY, stage TEXT NOT NULL, run_id TEXT, identity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        attempt INTEGER NOT NULL, started_at TEXT, finished_at TEXT, seconds REAL,
        host TEXT, pid INTEGER, config TEXT NOT NULL, outputs TEXT NOT NULL, error TEXT)""",
    "CREATE INDEX IF NOT EXISTS stages_by_run ON stages (run_id)",
    # A metric has either a value or a reason it is undefined, never both or neither. SQLite
    # silently turns a bound NaN into NULL, so this CHECK also catches a NaN that slipped past.
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL, checkpoint TEXT NOT NULL, step INTEGER NOT NULL,
        split TEXT NOT NULL, evaluator TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
        undefined_reason TEXT, evidence TEXT, recorded_at TEXT NOT NULL,
        PRIMARY KEY (run_id, checkpoint, split, evaluator, metric),
        CHECK ((value IS NULL) = (undefined_reason IS NOT NULL)))""",
)

_STAGE_COLUMNS = (
    "key", "stage", "run_id", "identity", "status", "attempt", "started_at", "finished_at",
    "seconds", "host", "pid", "config", "outputs", "error",
)
_METRIC_COLUMNS = (
    "run_id", "checkpoint", "step", "split", "evaluator", "metric", "value",
    "undefined_reason", "evidence", "recorded_at",
)


class Registry:
    """Runs, stage executions and metrics of one experiment, in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RegistryError(f"Cannot create the registry folder {self.path.parent}: {e}") from e
        # journal_mode is a property of the file and cannot change inside a transaction.
        self._transact(lambda conn: conn.execute("PRAGMA journal_mode = WAL").fetchone(), begin=None)
        self._transact(self._create_schema, begin="BEGIN IMMEDIATE")

    # ---- runs

    def upsert_run(self, run_id: str, *, index: int, name: str, kind: str, seed: int | None,
                   sweep: dict, config: dict) -> None:
        row = (run_id, index, name, kind, seed, _dump(sweep, "run sweep"),
               _dump(config, "run config"), _now())
        self._write(lambda conn: conn.execute(
            "INSERT INTO runs (run_id, idx, name, kind, seed, sweep, config, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET"
            " idx = excluded.idx, name = excluded.name, kind = excluded.kind,"
            " seed = excluded.seed, sweep = excluded.sweep, config = excluded.config", row))

    def runs(self) -> list[dict]:
        rows = self._read(lambda conn: conn.execute("SELECT * FROM runs ORDER BY idx, run_id").fetchall())
        return [_run_dict(r) for r in rows]

    def run(self, run_id: str) -> dict | None:
        row = self._read(lambda conn: conn.execute(
            "SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())
        return _run_dict(row) if row else None

    # ---- stages

    def stage_started(self, key: str, *, stage: str, run_id: str | None, identity: str, config: dict,
                      host: str | None = None, pid: int | None = None) -> int:
        """Mark `key` running (a fresh attempt) and return its attempt number, 1 on first start."""
        config_text = _dump(config, f"config of stage {key!r}")

        def work(conn: sqlite3.Connection) -> int:
            old = conn.execute("SELECT attempt FROM stages WHERE key = ?", (key,)).fetchone()
            attempt = (old["attempt"] if old else 0) + 1
            _put_stage(conn, key=key, stage=stage, run_id=run_id, identity=identity,
                       status="running", attempt=attempt, started_at=_now(), finished_at=None,
                       seconds=None, host=host, pid=pid, config=config_text, outputs="{}", error=None)
            return attempt

        return self._write(work)

    def stage_finished(self, key: str, *, identity: str, outputs: dict, seconds: float) -> None:
        outputs_text = _dump(outputs, f"outputs of stage {key!r}")
        self._end_stage(key, identity, "done", outputs=outputs_text, seconds=seconds, error=None)

    def stage_failed(self, key: str, *, identity: str, error: str, seconds: float | None = None) -> None:
        self._end_stage(key, identity, "failed", seconds=seconds, error=error)

    def stage_skipped(self, key: str, *, stage: str, run_id: str | None, identity: str,
                      outputs: dict) -> None:
        """Record as done a stage whose outputs already exist on disk (e.g. the registry was lost).

        Keeps the attempt count, times, host and config of an existing row; a new row gets attempt 0.
        """
        outputs_text = _dump(outputs, f"outputs of stage {key!r}")

        def work(conn: sqlite3.Connection) -> None:
            old = conn.execute("SELECT * FROM stages WHERE key = ?", (key,)).fetchone()
            kept = dict(old) if old else {
                "attempt": 0, "started_at": None, "finished_at": None, "seconds": None,
                "host": None, "pid": None, "config": "{}"}
            kept.update(key=key, stage=stage, run_id=run_id, identity=identity, status="done",
                        outputs=outputs_text, error=None)
            _put_stage(conn, **kept)

        self._write(work)

    def stage(self, key: str) -> dict | None:
        row = self._read(lambda conn: conn.execute(
            "SELECT * FROM stages WHERE key = ?", (key,)).fetchone())
        return _stage_dict(row) if row else None

    def stages(self, run_id: str | None = None, stage: str | None = None) -> list[dict]:
        """Stage rows ordered by key; `run_id` / `stage` filter when given (None means any)."""
        where, args = _filters(run_id=run_id, stage=stage)
        rows = self._read(lambda conn: conn.execute(
            f"SELECT * FROM stages{where} ORDER BY key", args).fetchall())
        return [_stage_dict(r) for r in rows]

    # ---- metrics

    def record_metrics(self, run_id: str, *, checkpoint: str, step: int, split: str, evaluator: str,
                       values: dict[str, float | None], undefined: dict[str, str] | None = None,
                       evidence: str | None = None) -> None:
        """Replace every metric row of (run_id, checkpoint, split, evaluator) with `values`.

        A None value needs a reason in `undefined`; a metric named only in `undefined` is recorded
        as undefined too. NaN and +-inf are stored as NULL with reason "NaN" / "inf" / "-inf"
        unless a reason was given, so results.json stays valid JSON.
        """
        reasons = dict(undefined or {})
        stamp = _now()
        rows = []
        for metric in sorted(set(values) | set(reasons)):
            value, reason = _checked_value(metric, values.get(metric), reasons.get(metric))
            rows.append((run_id, checkpoint, step, split, evaluator, metric, value, reason,
                         evidence, stamp))

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM metrics WHERE run_id = ? AND checkpoint = ? AND split = ?"
                         " AND evaluator = ?", (run_id, checkpoint, split, evaluator))
            conn.executemany(f"INSERT INTO metrics ({', '.join(_METRIC_COLUMNS)})"
                             f" VALUES ({', '.join('?' * len(_METRIC_COLUMNS))})", rows)

        self._write(work)

    def metrics(self, run_id: str | None = None, split: str | None = None) -> list[dict]:
        where, args = _filters(run_id=run_id, split=split)
        rows = self._read(lambda conn: conn.execute(
            f"SELECT {', '.join(_METRIC_COLUMNS)} FROM metrics{where}"
            " ORDER BY run_id, step, checkpoint, split, evaluator, metric", args).fetchall())
        return [dict(r) for r in rows]

    # ---- tables owned by others (a runner's own state: ftlab.runners.slurm.jobs)

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one write transaction on this file (retried while busy)."""
        return self._write(work)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one read transaction on this file."""
        return self._read(work)

    # ---- plumbing

    def _end_stage(self, key: str, identity: str, status: str, **fields: Any) -> None:
        fields.update(status=status, finished_at=_now())

        def work(conn: sqlite3.Connection) -> None:
            old = conn.execute("SELECT identity FROM stages WHERE key = ?", (key,)).fetchone()
            if old is None:
                raise RegistryError(f"Stage {key!r} was never started in {self.path}; "
                                    f"call stage_started before marking it {status}.")
            if old["identity"] != identity:
                # Someone restarted the stage with other inputs; our result is for stale inputs.
                raise RegistryError(
                    f"Stage {key!r} in {self.path} now has identity {old['identity']!r}, "
                    f"not {identity!r}: it was restarted with other inputs, so this {status} "
                    "result was not recorded.")
            sets = ", ".join(f"{name} = ?" for name in fields)
            conn.execute(f"UPDATE stages SET {sets} WHERE key = ?", (*fields.values(), key))

        self._write(work)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # Check the version before CREATE so an old ftlab never adds tables to a newer file.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row and int(row["value"]) > SCHEMA_VERSION:
                raise RegistryError(
                    f"Registry {self.path} has schema version {row['value']}, newer than the "
                    f"{SCHEMA_VERSION} this ftlab understands. Upgrade ftlab to read it.")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._transact(work, begin="BEGIN IMMEDIATE")

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._transact(work, begin="BEGIN")

    def _transact(self, work: Callable[[sqlite3.Connection], T], *, begin: str | None) -> T:
        """Open a connection, run `work` in one transaction, commit, close; retry while busy."""
        deadline = time.monotonic() + RETRY_DEADLINE_S
        delay = 0.05
        while True:
            try:
                with closing(self._connect()) as conn:
                    if begin:
                        conn.execute(begin)
                    result = work(conn)
                    if begin:
                        conn.execute("COMMIT")
                    return result  # an exception before COMMIT rolls back when the connection closes
            except sqlite3.OperationalError as e:
                if not _is_busy(e):
                    raise self._error(e) from e
                if time.monotonic() + delay > deadline:
                    raise RegistryError(
                        f"Registry {self.path} stayed locked for over {RETRY_DEADLINE_S:.0f} s "
                        f"({e}). Another process may be stuck holding it; check for hung ftlab "
                        "processes, or a filesystem without working file locks.") from e
                time.sleep(delay * random.uniform(0.5, 1.5))  # jitter so waiting writers spread out
                delay = min(delay * 2, 5.0)
            except sqlite3.DatabaseError as e:
                raise self._error(e) from e

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the sqlite3 module issues no implicit BEGIN; we issue our own.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _error(self, e: sqlite3.Error) -> RegistryError:
        return RegistryError(
            f"Registry {self.path} cannot be used: SQLite says '{e}'. If this file is not an ftlab "
            "registry or is damaged, move it aside and rerun: a fresh registry is created, and "
            "stages whose outputs exist on disk are recorded again without rerunning.")


def _put_stage(conn: sqlite3.Connection, **row: Any) -> None:
    conn.execute(f"INSERT OR REPLACE INTO stages ({', '.join(_STAGE_COLUMNS)})"
                 f" VALUES ({', '.join('?' * len(_STAGE_COLUMNS))})",
                 tuple(row[c] for c in _STAGE_COLUMNS))


def _checked_value(metric: str, value: float | None, reason: str | None) -> tuple[float | None, str | None]:
    if value is None:
        if reason is None:
            raise ValueError(f"Metric {metric!r} is None but has no reason in `undefined`.")
        return None, reason
    number = float(value)
    if math.isfinite(number):
        if reason is not None:
            raise ValueError(f"Metric {metric!r} has a value ({number}) and an undefined reason ({reason!r}).")
        return number, None
    return None, reason if reason is not None else ("NaN" if math.isnan(number) else str(number))


def _filters(**equal: Any) -> tuple[str, tuple]:
    given = {name: value for name, value in equal.items() if value is not None}
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{name} = ?" for name in given), tuple(given.values())


def _run_dict(row: sqlite3.Row) -> dict:
    return {"run_id": row["run_id"], "index": row["idx"], "name": row["name"], "kind": row["kind"],
            "seed": row["seed"], "sweep": json.loads(row["sweep"]),
            "config": json.loads(row["config"]), "created_at": row["created_at"]}


def _stage_dict(row: sqlite3.Row) -> dict:
    out = {c: row[c] for c in _STAGE_COLUMNS}
    out["config"] = json.loads(out["config"])
    out["outputs"] = json.loads(out["outputs"])
    return out


def _dump(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"The {what} must be plain JSON (no NaN, Paths or objects): {e}") from e


def _is_busy(e: sqlite3.OperationalError) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
