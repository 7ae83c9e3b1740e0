"""Time `ftlab submit` of seed 002's 19-run sweep against the real local slurmctld (target: < 5 s).

    .venv/bin/python bench/submit_latency/run.py            # print the results
    .venv/bin/python bench/submit_latency/run.py --append   # and append them to BENCHMARKS.md

Starts the local SLURM (scripts/slurm-local.sh) if it is not running and stops it again after.
Each repeat submits examples/weighted_loss.yaml --scale full into a fresh output dir: a prepare job, a
19-task train array, a 19-task eval array (aftercorr) and a report job. The jobs are submitted
held (`#SBATCH --hold` from the bench profile) and then cancelled with `ftlab cancel`: the
7B model is not on disk, and the measurement is submission, not training. The resource policy
sizes the model from its name (7B -> 4 GPUs); the profile caps that to what this node has.
Timed: the whole `ftlab submit` process, wall clock, from exec to exit (Python start included).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLURM = REPO / "scripts" / "slurm-local.sh"
PROFILE = """# bench: submit held (nothing runs), capped to this node so sbatch accepts the request
extra_sbatch: ["--hold"]
limits: {gpus_per_node: 0, mem_per_node: 1G, cpus_per_node: 1}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--append", action="store_true", help="append the results to BENCHMARKS.md")
    args = parser.parse_args()

    started_here = subprocess.run([str(SLURM), "status"], capture_output=True).returncode != 0
    if started_here:
        subprocess.run([str(SLURM), "start"], check=True)
    conf = subprocess.run([str(SLURM), "env"], capture_output=True, text=True, check=True).stdout.split("=", 1)[1].strip()
    env = {**os.environ, "SLURM_CONF": os.environ.get("SLURM_CONF", conf)}
    ftlab = str(Path(sys.executable).parent / "ftlab")
    times = []
    try:
        with tempfile.TemporaryDirectory(prefix="ftlab-bench-") as tmp:
            for n in range(args.repeats):
                work = Path(tmp) / f"r{n}"
                work.mkdir(parents=True)
                text = (REPO / "examples" / "weighted_loss.yaml").read_text()
                (work / "spec.yaml").write_text(text.replace("output_dir: ../runs/weighted_loss", "output_dir: out"))
                (work / "cluster.yaml").write_text(PROFILE)
                t0 = time.perf_counter()
                proc = subprocess.run([ftlab, "submit", str(work / "spec.yaml"), "--scale", "full", "--cluster", str(work / "cluster.yaml")], env=env, capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    print(proc.stdout, proc.stderr, file=sys.stderr)
                    return 1
                if n == 0:
                    print(proc.stdout)
                subprocess.run([ftlab, "cancel", str(work / "spec.yaml")], env=env, check=True, capture_output=True)
    finally:
        if started_here:
            subprocess.run([str(SLURM), "stop"], check=False)

    slurm_version = subprocess.run(["sbatch", "--version"], env=env, capture_output=True, text=True).stdout.strip() or "slurm (version unknown)"
    from importlib.metadata import version
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    lines = [
        "",
        f"## ftlab submit latency: 19-run weighted-loss sweep ({time.strftime('%Y-%m-%d')})",
        "",
        "`.venv/bin/python bench/submit_latency/run.py --append`: `ftlab submit examples/weighted_loss.yaml --scale full`",
        "(prepare job + 19-task train array + 19-task eval array with aftercorr + report job, held, then cancelled)",
        "against the local single-node slurmctld of scripts/slurm-local.sh. Wall clock of the whole process. Target < 5 s.",
        "",
        f"- machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- versions: ftlab {version('ftlab')}, Python {platform.python_version()}, {slurm_version} (slurmctld + slurmd on localhost)",
        f"- {args.repeats} repeats: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s",
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with open(REPO / "BENCHMARKS.md", "a") as handle:
            handle.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
