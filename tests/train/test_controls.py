"""Controls with a base given as an HF directory; a clear error when bitsandbytes is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ftlab
from ftlab.errors import ModelError
from ftlab.registry import Registry
from ftlab.spec.schema import Quantization
from tests.conftest import write_spec


def test_random_init_copy_of_a_local_hf_base_with_lora(tmp_path: Path, tiny_model_dir: Path):
    spec = write_spec(tmp_path, method="lora", controls="[random_init, untuned]")
    text = spec.read_text()
    start = text.index("  tiny:")
    spec.write_text(text[:start] + f"  path: {tiny_model_dir}\n" + text[text.index("\n", start) + 1 :])
    assert ftlab.run(spec).ok
    out = tmp_path / "out"
    init = out / "runs" / "random_init" / "train" / "init"
    fresh, base = load_file(str(init / "model.safetensors")), load_file(str(tiny_model_dir / "model.safetensors"))
    assert fresh.keys() == base.keys()  # same architecture
    assert all(fresh[k].shape == base[k].shape for k in base)
    assert any(not torch.equal(fresh[k], base[k]) for k in base if "norm" not in k)  # fresh weights
    assert (init / "tokenizer.json").is_file()
    reg = Registry(out / "registry.sqlite")
    kinds = {r["name"]: r["kind"] for r in reg.runs()}
    assert kinds == {"run": "sweep", "random_init": "random_init", "untuned": "untuned"}
    assert {m["checkpoint"] for m in reg.metrics(run_id=[r for r in reg.runs() if r["kind"] == "untuned"][0]["run_id"])} == {"step_0"}


def test_missing_bitsandbytes_names_the_fix(monkeypatch, tiny_model_dir):
    from ftlab.models.load import load_model

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` raise ImportError
    with pytest.raises(ModelError, match=r"pip install 'ftlab\[qlora\]'"):
        load_model(str(tiny_model_dir), quantization=Quantization())
