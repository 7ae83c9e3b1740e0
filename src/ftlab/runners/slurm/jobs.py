"""The SLURM runner's own table: which job (array task) was submitted for which stage task.

    jobs = JobTable(registry)          # lives in the registry's SQLite file, owned by this runner
    jobs.record([{"job_id": "12", "array_index": 3, "task_key": "train/a", "grp": "train", "log": ...}])
    jobs.latest()                      # {task key: its newest job row}

The registry stays runner-agnostic (runs, stage executions, metrics); it lends its connection
handling (one transaction per call, retried while busy) through Registry.write / Registry.read.
The table keeps the name and columns it had inside the registry, so experiments submitted before
this split keep their job ids.
"""

from __future__ import annotations

from datetime import datetime, timezone

_COLUMNS = ("job_id", "array_index", "task_key", "grp", "log", "submitted_at", "state", "reason", "updated_at")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT NOT NULL, array_index INTEGER NOT NULL, task_key TEXT NOT NULL,
        grp TEXT NOT NULL, log TEXT, submitted_at TEXT NOT NULL, state TEXT NOT NULL,
        reason TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (job_id, array_index, task_key))""",
    "CREATE INDEX IF NOT EXISTS jobs_by_task ON jobs (task_key)",
)


class JobTable:
    """One row per SLURM job (array task) submitted for a stage task."""

    def __init__(self, registry):
        self.registry = registry
        registry.write(lambda conn: [conn.execute(statement) for statement in _SCHEMA])

    def record(self, jobs: list[dict]) -> None:
        """Record submitted jobs: dicts with job_id, array_index (-1 for a plain job), task_key, grp, log.

        A plain job that runs several tasks (the prepare job) has one row per task.
        """
        stamp = _now()
        rows = [(str(j["job_id"]), int(j["array_index"]), j["task_key"], j["grp"], j.get("log"), stamp,
                 j.get("state", "SUBMITTED"), j.get("reason"), stamp) for j in jobs]
        self.registry.write(lambda conn: conn.executemany(
            f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows))

    def update_states(self, states: dict[tuple[str, int], tuple[str, str | None]]) -> None:
        """Store the last state SLURM reported: {(job_id, array_index): (state, reason)}."""
        stamp = _now()
        rows = [(state, reason, stamp, job_id, index) for (job_id, index), (state, reason) in states.items()]
        self.registry.write(lambda conn: conn.executemany(
            "UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE job_id = ? AND array_index = ?", rows))

    def forget(self, job_ids: list[str]) -> None:
        """Drop the rows of jobs that were cancelled before anything ran (a rolled-back submission)."""
        self.registry.write(lambda conn: conn.executemany("DELETE FROM jobs WHERE job_id = ?", [(str(j),) for j in job_ids]))

    def all(self, task_key: str | None = None) -> list[dict]:
        """Job rows, oldest submission first; `task_key` filters when given."""
        where, args = (" WHERE task_key = ?", (task_key,)) if task_key is not None else ("", ())
        rows = self.registry.read(lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs{where} ORDER BY submitted_at, CAST(job_id AS INTEGER), array_index",
            args).fetchall())
        return [dict(r) for r in rows]

    def latest(self) -> dict[str, dict]:
        """The most recent job of each task key."""
        latest: dict[str, dict] = {}
        for job in self.all():
            latest[job["task_key"]] = job  # rows come oldest first, so the last one wins
        return latest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
