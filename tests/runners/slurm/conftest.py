"""The local SLURM for these tests: found through SLURM_CONF or scripts/slurm-local.sh's default dir.

Tests that need it skip when it is not running, unless FTLAB_REQUIRE_SLURM=1 (set by .ci/run),
which turns the skip into a failure: CI always runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LOCAL_CONF = Path(os.environ.get("FTLAB_SLURM_DIR", "/tmp/ftlab-slurm")) / "slurm.conf"


@pytest.fixture
def slurm(monkeypatch) -> str:
    """SLURM_CONF of a running cluster (set in the environment for ftlab and its jobs)."""
    conf = os.environ.get("SLURM_CONF") or (str(LOCAL_CONF) if LOCAL_CONF.is_file() else None)
    why = None
    if shutil.which("sbatch") is None:
        why = "sbatch is not installed"
    elif conf is None:
        why = f"no SLURM_CONF and no {LOCAL_CONF}"
    else:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], env={**os.environ, "SLURM_CONF": conf}, capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            why = f"sinfo failed: {proc.stderr.strip() or 'no nodes'}"
    if why:
        message = f"local SLURM not running ({why}); start it with scripts/slurm-local.sh start"
        if os.environ.get("FTLAB_REQUIRE_SLURM") == "1":
            pytest.fail(message + " (FTLAB_REQUIRE_SLURM=1)")
        pytest.skip(message)
    monkeypatch.setenv("SLURM_CONF", conf)
    return conf


def wait_for_jobs(registry, timeout: float = 400, why: str = "") -> None:
    """Block until none of the experiment's SLURM jobs is queued or running (AssertionError after timeout)."""
    import time

    from ftlab.runners.slurm.follow import job_states
    from ftlab.runners.slurm.jobs import JobTable

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(s.active for s in job_states(JobTable(registry).all()).values()):
            return
        time.sleep(1)
    raise AssertionError(f"SLURM jobs still queued or running after the timeout{why}")
