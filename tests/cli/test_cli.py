"""CLI behaviour: help with examples, clear errors without tracebacks, build-tiny."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ftlab.cli import build_parser, main
from tests.conftest import write_spec

COMMANDS = [["validate"], ["plan"], ["run"], ["submit"], ["cancel"], ["status"], ["report"], ["model", "build-tiny"], ["stage", "run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_ends_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "example:\n  ftlab " + command[0] in text


def test_version(capsys):
    from ftlab import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ftlab {__version__}"


def test_run_help_names_every_stage_of_the_table(capsys):
    from ftlab.stages import ORDER

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"run only these stages ({', '.join(ORDER)})" in text and "curate, baseline" in text


def test_plan_json_lists_runs(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, sweep="[{grid: {x: [1, 2]}}]", seeds="[0, 1]")
    assert main(["plan", str(spec), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["index"], r["name"], r["seed"]) for r in rows] == [(0, "x1_s0", 0), (1, "x1_s1", 1), (2, "x2_s0", 0), (3, "x2_s1", 1)]
    assert all(r["run_id"].startswith("r1-") for r in rows)


def test_bad_data_row_fails_with_file_and_line_not_a_traceback(tmp_path: Path):
    data = tmp_path / "train.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "P"}]}
    bad = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Maybe"}]}
    data.write_text("\n".join(json.dumps(r) for r in [good, good, bad]) + "\n{not json\n")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("generate: {name: hem, n: 240, seed: 0}", "path: train.jsonl"))
    proc = subprocess.run([sys.executable, "-m", "ftlab.cli", "run", str(spec), "--only", "data"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "train.jsonl, line 3: label 'Maybe' is not in the label set" in proc.stdout
    assert "train.jsonl, line 4" in proc.stdout


def test_status_table_after_data_only(tmp_path: Path, capsys):
    spec = write_spec(tmp_path)
    assert main(["run", str(spec), "--only", "data"]) == 0
    capsys.readouterr()
    assert main(["status", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "pending" in out


def test_build_tiny_command(tmp_path: Path):
    from transformers import AutoTokenizer

    assert main(["model", "build-tiny", "--out", str(tmp_path / "m"), "--hidden-size", "16", "--layers", "1", "--vocab-size", "320"]) == 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert tok.chat_template and (tmp_path / "m" / "model.safetensors").is_file()


def test_unknown_command_usage():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["frobnicate"])


def test_output_piped_into_head_is_not_a_traceback(tmp_path: Path):
    spec = write_spec(tmp_path, sweep="[{grid: {lr: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}}]", seeds="[0, 1, 2, 3, 4, 5, 6, 7]")
    proc = subprocess.run(f"{sys.executable} -m ftlab.cli plan {spec} | head -1", shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("index") and "Traceback" not in proc.stderr, proc.stderr


def test_report_on_a_spec_never_run_is_not_marked_done(tmp_path: Path, capsys):
    # issue 22: `ftlab report` before `run` used to mark the report done, so `run --dry-run` skipped it.
    spec = write_spec(tmp_path)
    assert main(["report", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "not done yet" in err and "is not marked done" in err and err.count("note:") == 1
    assert main(["run", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    report_lines = [line for line in out.splitlines() if "report" in line and "would" in line]
    assert report_lines and all("would run" in line for line in report_lines), out
    assert "report done" not in out


def test_only_and_skip_naming_one_stage_is_an_error(tmp_path: Path, capsys):
    # issue 22: `--only data --skip data` ran nothing and exited 0.
    spec = write_spec(tmp_path)
    for extra in ([], ["--dry-run"]):
        assert main(["run", str(spec), "--only", "data", "--skip", "data", *extra]) != 0
        err = capsys.readouterr().err
        assert "--only and --skip both name data, so it would not run and nothing else is chosen" in err
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
