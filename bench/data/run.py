"""Data stage on big files: rows/s and peak RSS normalising 10^6 rows of ~1 kB (target < 1 GB RSS).

    .venv/bin/python bench/data/run.py                  # 10^6 rows, print the table
    .venv/bin/python bench/data/run.py --append         # and append it to BENCHMARKS.md
    .venv/bin/python bench/data/run.py --rows 100000    # a quicker look

Writes one synthetic GSM8K-like file of --rows rows (~1 kB each: an ~880-character prompt, a
worked answer ending "#### N", an id and a category column) as JSONL and as parquet into a
temporary directory, then runs each case in a fresh child process and reads that child's peak
RSS (VmHWM of /proc/self/status: the whole process, interpreter and pyarrow included):

    imports only          the floor every case pays (python + ftlab.data + pyarrow)
    data stage            ftlab.data.stage.run_data, role train, no label set: read, parse,
                          write examples.jsonl (streamed: rows never all in memory)
    validate              ftlab.data.check.check_datasets on a train split of the file: every
                          row parsed, 64-bit digests kept for the repeat and overlap checks
    load_examples (list)  the whole file as a list of Examples, what the stage did before it
                          streamed (only with --with-list; it needs several GB at 10^6 rows)

About 2.4 GB of temporary files at 10^6 rows (JSONL, parquet, the stage's output).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

WORDS = ("patient", "dose", "mg", "tablet", "hours", "total", "each", "day", "price", "apples", "boxes",
         "train", "miles", "speed", "cost", "dollars", "students", "class", "pages", "book")
CATEGORIES = ("arithmetic", "rates", "money", "geometry", "counting")


def make_row(i: int, rng: random.Random) -> dict:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    # ~880 characters of prompt: 140 words of ~5.3 characters plus the question.
    filler = " ".join(rng.choice(WORDS) for _ in range(140))
    prompt = f"Problem {i}: {filler}. If there are {a} groups of {b}, how many are there in total?"
    completion = f"There are {a} groups of {b}, so {a} * {b} = {a * b} in total.\n#### {a * b}"
    return {"id": i, "category": CATEGORIES[i % len(CATEGORIES)], "prompt": prompt, "completion": completion}


def write_inputs(directory: Path, rows: int) -> tuple[Path, Path, float]:
    """The same rows as JSONL and parquet; returns (jsonl, parquet, mean JSONL bytes per row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl, parquet = directory / "big.jsonl", directory / "big.parquet"
    rng = random.Random(0)
    tables = []
    with open(jsonl, "w", encoding="utf-8") as f:
        for start in range(0, rows, 10_000):
            batch = [make_row(i, rng) for i in range(start, min(rows, start + 10_000))]
            f.writelines(json.dumps(r) + "\n" for r in batch)
            tables.append(pa.Table.from_pylist(batch))
    # One row group, as pandas' to_parquet and pq.write_table write 10^6 rows by default: the
    # reader's worst case (a whole column chunk is ~all of the file). This parent holds the table
    # (~1 GB at 10^6 rows); only the children are measured.
    table = pa.concat_tables(tables)
    del tables
    pq.write_table(table, parquet, row_group_size=max(rows, 1))
    return jsonl, parquet, jsonl.stat().st_size / rows


def child(case: str, path: str, out: str) -> None:
    """Run one case in this (fresh) process and print {"seconds", "rows", "peak_rss_mb"}."""
    import pyarrow.parquet  # noqa: F401  # the floor includes pyarrow for every case

    from ftlab.data.check import check_datasets
    from ftlab.data.formats import load_examples
    from ftlab.data.stage import run_data

    start = time.perf_counter()
    n = 0
    if case == "stage":
        from ftlab.spec.schema import Dataset
        from ftlab.contract import StageContext
        from ftlab.contract.inputs import DataInputs

        inputs = DataInputs(dataset=Dataset(name="train", role="train", path=str(path)), file=str(path), labels=None,
                            label_field=None, positive=None)
        n = run_data(inputs, StageContext(Path(out), Path(out).parent)).outputs["n"]
    elif case == "validate":
        from ftlab.spec.schema import Experiment

        exp = Experiment.model_validate({
            "name": "bench", "model": {"tiny": {}}, "task": {"labels": ["x", "y"]},
            "datasets": [{"name": "train", "role": "train", "path": path}],
        })
        # A generation task: free-text answers, no label set.
        exp = exp.model_copy(update={"task": exp.task.model_copy(update={"labels": []})})
        problems, counts = check_datasets(exp, Path("/"))
        assert not problems, problems[:3]
        n = counts["train"]["n"]
    elif case == "list":
        n = len(load_examples(Path(path)))
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "rows": n, "peak_rss_mb": peak_mb}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across
    fork+exec, so a child would report the parent's peak (~200 MB of file writing) as its own."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024


def run_case(case: str, path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", case, str(path), str(out)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    if proc.returncode != 0:
        raise SystemExit(f"{case} on {path.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    parser.add_argument("--with-list", action="store_true", help="also time load_examples into a list")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from bench.machine import machine_line
    from importlib.metadata import version

    with tempfile.TemporaryDirectory(prefix="ftlab-bench-data-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        jsonl, parquet, row_bytes = write_inputs(tmp, args.rows)
        print(f"wrote {args.rows} rows ({row_bytes:.0f} B/row as JSONL) in {time.perf_counter() - t0:.0f} s", flush=True)
        floor = run_case("none", jsonl, tmp)["peak_rss_mb"]
        results = []
        cases = [("data stage", "stage"), ("validate", "validate")] + ([("load_examples (list)", "list")] if args.with_list else [])
        for label, case in cases:
            for path in (jsonl, parquet):
                out = tmp / f"out_{case}_{path.suffix[1:]}"
                out.mkdir()
                r = run_case(case, path, out)
                assert r["rows"] == args.rows, r
                results.append((label, path.suffix[1:], r))
                print(f"{label:<22} {path.suffix[1:]:<8} {r['rows'] / r['seconds']:>9,.0f} rows/s  "
                      f"peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
                for f in out.iterdir():
                    f.unlink()
        sizes = {"jsonl": jsonl.stat().st_size, "parquet": parquet.stat().st_size}

    lines = [
        f"## Data stage on big files: {args.rows:,} rows of ~1 kB, streamed (bench/data)",
        "",
        machine_line().rstrip(".") + f"; pyarrow {version('pyarrow')}.",
        "",
        f"Command: `.venv/bin/python bench/data/run.py --rows {args.rows}{' --with-list' if args.with_list else ''}`. "
        f"Synthetic GSM8K-like rows ({row_bytes:.0f} B each as JSONL; files {sizes['jsonl'] / 1e6:,.0f} MB JSONL, "
        f"{sizes['parquet'] / 1e6:,.0f} MB parquet). Each case runs in a fresh process; peak RSS is that whole "
        f"process (VmHWM), against a floor of {floor:,.0f} MB for the interpreter and imports alone. "
        "Target: under 1,024 MB. The CPU is shared with other work: rates are indicative.",
        "",
        "| case | file | rows/s | seconds | peak RSS (MB) | under 1 GB |",
        "|---|---|---|---|---|---|",
    ]
    for label, kind, r in results:
        ok = "yes" if r["peak_rss_mb"] < 1024 else "no"
        lines.append(f"| {label} | {kind} | {r['rows'] / r['seconds']:,.0f} | {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} | {ok} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.append:
        with open(REPO / "BENCHMARKS.md", "a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
