"""Classical baselines (seed 000): features, spec checks, and runs of kind `baseline` beside the LLM runs.

Run: `.venv/bin/pytest tests/baselines -q` (the end-to-end test builds a tiny model: ~30 s on 2 cores).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

import ftlab
from ftlab.baselines.features import composition_vector, parse_composition, DESCRIPTORS, SYMBOLS
from ftlab.errors import FtlabError

SPEC = {
    "name": "base", "output_dir": "out",
    "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64, "vocab_size": 320}},
    "task": {"labels": ["P", "N"], "positive": "P"},
    "datasets": [
        {"name": "train", "role": "train", "generate": {"name": "hem", "n": 400, "seed": 0}},
        {"name": "valid", "role": "valid", "generate": {"name": "hem", "n": 100, "seed": 0}},
        {"name": "test", "role": "test", "generate": {"name": "hem", "n": 100, "seed": 0}},
    ],
    "method": {"name": "full"},
    "train": {"max_steps": 2, "batch_size": 8, "max_length": 64},
    "baselines": {"featurizer": {"name": "composition"}},
}


def _write(tmp_path: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def test_composition_descriptors():
    cantor = parse_composition("Co Cr Fe Mn Ni")
    assert cantor == {s: pytest.approx(0.2) for s in ("Co", "Cr", "Fe", "Mn", "Ni")}
    assert parse_composition("Al0.5CoCrFeNi")["Al"] == pytest.approx(0.5 / 4.5)
    v = dict(zip([f"frac_{s}" for s in SYMBOLS] + DESCRIPTORS, composition_vector(cantor)))
    assert v["mixing_entropy"] == pytest.approx(math.log(5))  # ideal equimolar: R ln 5
    assert v["mean_vec"] == pytest.approx(8.0)  # (9 + 6 + 8 + 7 + 10) / 5
    assert 2.0 < v["size_mismatch"] < 4.5  # Cantor alloy delta ~3.3% in the HEA literature
    with pytest.raises(ValueError, match="Xx"):
        parse_composition("Co Xx")


def test_validate_names_a_misspelt_model_and_featurizer_option(tmp_path, capsys):
    spec = json.loads(json.dumps(SPEC))
    spec["baselines"] = {"featurizer": {"name": "compostion"}, "models": ["random_forrest"]}
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_write(tmp_path, spec))
    err = str(caught.value)
    assert "baselines.featurizer.name" in err and "Did you mean 'composition'" in err
    assert "baselines.models[0]" in err and "Did you mean 'random_forest'" in err
    spec["baselines"] = {"featurizer": {"name": "composition", "feild": "x"}}
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_write(tmp_path, spec))
    assert "baselines.featurizer.feild" in str(caught.value)


@pytest.mark.slow
def test_baselines_beside_llm_runs_and_test_never_selects(tmp_path):
    assert ftlab.run(_write(tmp_path, SPEC)).ok
    df = ftlab.results(tmp_path / "spec.yaml")
    base = df[df["kind"] == "baseline"]
    assert set(base["method"]) == {"logistic_regression", "random_forest", "gradient_boosting"}
    assert set(base["evaluator"]) == {"sklearn"} and base["selected"].all()
    llm = df[(df["kind"] == "trained") & df["selected"]]
    for split in ("valid", "test"):  # the same metric names as the LLM runs, on the same splits
        assert set(base[base.split == split]["metric"]) == set(llm[llm.split == split]["metric"])
    test_acc = base[(base.split == "test") & (base.metric == "accuracy")]
    assert (test_acc["value"] >= 0.9).all(), test_acc  # the stand-in's label is linear in the fractions
    summary = (tmp_path / "out" / "report" / "summary.txt").read_text()
    assert "baseline_logistic_regression" in summary

    # The chosen grid point is the best on valid, and a different test split changes no choice.
    out = tmp_path / "out" / "runs"
    chosen = {}
    for model in ("logistic_regression", "random_forest", "gradient_boosting"):
        s = json.loads((out / f"baseline_{model}" / "eval" / "summary.json").read_text())
        assert s["selected_on"]["split"] == "valid"
        best = max(s["grid"], key=lambda g: g["accuracy"])
        assert s["chosen"] == best["point"]
        chosen[model] = s["chosen"]
    other = json.loads(json.dumps(SPEC))
    other["datasets"][2] = {"name": "test", "role": "test", "generate": {"name": "hem", "n": 60, "seed": 7}}
    other["output_dir"] = "out2"
    assert ftlab.run(_write(tmp_path, other, "other.yaml"), only=["data", "baseline"]).ok
    for model, point in chosen.items():
        s = json.loads((tmp_path / "out2" / "runs" / f"baseline_{model}" / "eval" / "summary.json").read_text())
        assert s["chosen"] == point and s["at_best"]["test"]["n"] == 60
