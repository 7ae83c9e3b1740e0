"""Every command on a spec never run, half run, or edited after a run: exit 0 or one `error:`
line set with exit 2, never a traceback, and nothing written outside the spec's directory (issue 22).

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/cli/test_cli_states.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftlab.cli import main
from tests.conftest import write_spec

COMMANDS = [
    ["validate"], ["plan"], ["status"], ["run", "--dry-run"], ["submit", "--dry-run"], ["cancel"], ["report"],
    ["export", "mlflow", "--tracking-uri", "{tmp}/mlruns"], ["stage", "run", "{spec}", "train/nope"],
    ["run", "--only", "data", "--skip", "data"], ["run", "--only", "nope"],
]


def _state(tmp_path: Path, state: str) -> Path:
    tmp_path.mkdir()
    spec = write_spec(tmp_path)
    if state != "never run":
        assert main(["run", str(spec), "--only", "data"]) == 0
    if state == "edited after a run":
        text = spec.read_text()
        spec.write_text(text.replace("{name: valid, role: valid, generate: {name: hem, n: 40",
                                     "{name: valid, role: valid, generate: {name: hem, n: 48"))
        assert spec.read_text() != text
    return spec


@pytest.mark.parametrize("state", ["never run", "half run", "edited after a run"])
def test_every_command_in_every_state(tmp_path: Path, state: str, capsys):
    spec = _state(tmp_path / "exp", state)
    outside = set(tmp_path.parent.iterdir())
    bad, codes = [], []
    for command in COMMANDS:
        args = [a.format(tmp=tmp_path / "exp", spec=spec) for a in command]
        if "{spec}" not in command:
            args = args[:1] + [str(spec)] + args[1:] if args[0] not in ("export", "stage") else \
                args[:2] + [str(spec)] + args[2:]
        try:
            code = main(args)
        except SystemExit as e:  # argparse
            code = e.code
        except Exception as e:  # noqa: BLE001: the bug this test is for
            bad.append((args, f"{type(e).__name__}: {e}"))
            continue
        err = capsys.readouterr().err
        codes.append(code)
        if code not in (0, 2) or "Traceback" in err or (code == 2 and "error:" not in err):
            bad.append((args, code, err[-300:]))
    assert not bad, "\n".join(map(str, bad))
    assert codes.count(0) >= 5 and codes.count(2) >= 3, codes  # the commands ran, and the misuses were refused
    assert set(tmp_path.parent.iterdir()) == outside  # nothing beside this test's directory
