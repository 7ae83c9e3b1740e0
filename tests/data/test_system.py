"""task.system: one system message for every prompt that has none, the same in training and evaluation."""

from __future__ import annotations

import json

import ftlab
from ftlab.data.example import Example
from ftlab.data.stage import with_system
from ftlab.spec.identity import run_id
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec


def test_a_prompt_with_its_own_system_message_keeps_it():
    own = Example([{"role": "system", "content": "mine"}, {"role": "user", "content": "q"}], "a")
    assert with_system(own, "spec's") is own
    bare = with_system(Example([{"role": "user", "content": "q"}], "a"), "")
    assert bare.prompt[0] == {"role": "system", "content": ""} and bare.prompt[1]["content"] == "q"


def test_the_data_stage_writes_it_into_every_split(tmp_path):
    spec = write_spec(tmp_path)
    # sentiment's prompts have no system message of their own (hem's have one, which is kept)
    text = spec.read_text().replace("{labels: [P, N], positive: P}", "{labels: [positive, negative], system: 'Answer tersely.'}")
    spec.write_text(text.replace("name: hem", "name: sentiment"))
    assert ftlab.run(spec, only=["data"]).ok
    for split in (tmp_path / "out" / "data").glob("*/examples.jsonl"):
        first = json.loads(split.read_text().splitlines()[0])
        assert first["prompt"][0] == {"role": "system", "content": "Answer tersely."}, split


def test_unset_it_leaves_run_ids_as_they_were(tmp_path):
    spec = write_spec(tmp_path)
    before = [r.run_id for r in load_plan(spec).runs]
    spec.write_text(spec.read_text().replace("positive: P}", "positive: P, system: null}"))
    assert [r.run_id for r in load_plan(spec).runs] == before
    spec.write_text(spec.read_text().replace("system: null", "system: ''"))
    assert [r.run_id for r in load_plan(spec).runs] != before
