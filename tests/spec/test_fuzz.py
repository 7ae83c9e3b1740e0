"""1,100 mutated specs (tests/spec/fuzzing.py, seeded) must each end in a SpecError that names a line,
or validate OK: never a traceback, never a hang (2 s of CPU each), never unbounded memory.

Most run in this process (~12 s on 2 cores); 30 run through `python -m ftlab.cli validate` under a
2 GB address-space limit, checking exit code 2 and no "Traceback". Reproduce one case by hand:
    python tests/spec/fuzzing.py /tmp/fuzz && ftlab validate /tmp/fuzz/case0410_quickstart_evaluator.yaml
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ftlab.errors import FtlabError, SpecError
from ftlab.spec.plan import load_plan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import make_cases  # noqa: E402

N_CASES, SEED = 1100, 10
N_CLI = 30
SECONDS = 2.0
LOCATED = re.compile(r"^line \d+")
SRC = Path(__file__).resolve().parents[2] / "src"

class Hang(Exception):
    pass


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return make_cases(tmp_path_factory.mktemp("fuzz"), N_CASES, SEED)


def _run(path: Path) -> tuple[str, str]:
    """('ok' | 'spec' | failure kind, detail)."""

    def alarm(*_):
        raise Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 10 * SECONDS)  # a hang ends as a failure, not a stuck suite
    # CPU time, not wall: on a shared 2-core machine a descheduled validation is not a slow one
    # (the wall-clock alarm above still catches real hangs).
    start = time.process_time()
    try:
        load_plan(path)
        outcome = ("ok", "")
    except SpecError as err:
        unlocated = [p for p in err.problems if not LOCATED.match(p)]
        outcome = ("no location", unlocated[0][:300]) if unlocated else ("spec", "")
        if len(str(err)) > 60 * 700:
            outcome = ("long message", f"{len(str(err))} characters")
    except FtlabError as err:  # a domain error, but not a located spec problem
        outcome = ("not a SpecError", f"{type(err).__name__}: {str(err)[:300]}")
    except Hang:
        outcome = ("hang", f"> {10 * SECONDS:.0f} s")
    except Exception as err:  # noqa: BLE001 - the point: any other exception is a traceback
        frames = "".join(traceback.format_tb(err.__traceback__))
        outcome = ("traceback", f"{type(err).__name__}: {str(err)[:200]}\n{frames[-1500:]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.process_time() - start
    if outcome[0] in ("ok", "spec") and elapsed > SECONDS:
        outcome = ("slow", f"{elapsed:.2f} s CPU")
    return outcome


def test_fuzzed_specs_end_in_located_spec_errors(cases):
    assert len(cases) >= 1000
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {c.name: _run(c.path) for c in cases}
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    failures = {name: r for name, r in results.items() if r[0] not in ("ok", "spec")}
    shown = "\n".join(f"{name}: {kind}: {detail}" for name, (kind, detail) in list(failures.items())[:10])
    assert not failures, f"{len(failures)} of {len(cases)} fuzzed specs failed:\n{shown}"
    kinds = [r[0] for r in results.values()]
    # The mutations must mostly produce errors, and some valid specs: a fuzz that never reaches
    # validation (all syntax errors) or never breaks anything would test nothing.
    assert kinds.count("spec") > 0.6 * len(cases) and kinds.count("ok") > 20, {k: kinds.count(k) for k in set(kinds)}
    assert grown_mb < 1024, f"peak memory grew {grown_mb:.0f} MB over the fuzz"


def _limit_memory():
    two_gb = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (two_gb, two_gb))


def _cli(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(path)], capture_output=True, text=True,
                          timeout=30, env=env, preexec_fn=_limit_memory)


def test_fuzzed_specs_through_the_cli(cases):
    # Every ~36th case: all mutation kinds appear (the names cycle through them), and the YAML bombs,
    # bad bytes and huge sweeps meet the real process with a 2 GB memory ceiling.
    picked = [c for c in cases if c.op in ("bomb", "bytes", "encoding", "sweep_shape", "long_string", "format_string")][::9][:N_CLI // 2]
    rest = [c for c in cases if c not in picked]
    picked += rest[:: len(rest) // (N_CLI - len(picked))][: N_CLI - len(picked)]
    assert len(picked) == N_CLI
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(_cli, [c.path for c in picked]))
    bad = []
    for case, proc in zip(picked, procs):
        if proc.returncode not in (0, 2) or "Traceback" in proc.stderr or (proc.returncode == 2 and not re.search(r"^  - line \d+", proc.stderr, re.M)):
            bad.append(f"{case.name}: exit {proc.returncode}: {proc.stderr[-600:]}")
    assert not bad, "\n".join(bad)
