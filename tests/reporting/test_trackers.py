"""train.report_to reaches the trainer: tensorboard writes an event file; the default writes none."""

from __future__ import annotations

import pytest

import ftlab
from ftlab.spec.identity import run_id
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec

pytestmark = pytest.mark.slow


def test_tensorboard_event_file_is_written(tmp_path):
    pytest.importorskip("tensorboard")
    (tmp_path / "tb").mkdir()
    (tmp_path / "plain").mkdir()
    spec = write_spec(tmp_path / "tb")
    spec.write_text(spec.read_text().replace("logging_steps: 5}", "logging_steps: 5, report_to: [tensorboard]}"))
    plain = write_spec(tmp_path / "plain")
    # RUNTIME: a tracker does not change results, so the run keeps its id.
    a, b = load_plan(spec).runs[0], load_plan(plain).runs[0]
    assert run_id(a.config, kind=a.kind, seed=a.seed, values=a.values) == b.run_id
    assert ftlab.run(spec, only=["data", "model", "train"]).ok
    events = list((tmp_path / "tb" / "out" / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"] and len(acc.Scalars("train/loss")) >= 2
    assert ftlab.run(plain, only=["data", "model", "train"]).ok
    assert not list((tmp_path / "plain" / "out" / "runs").rglob("events.out.tfevents.*"))
