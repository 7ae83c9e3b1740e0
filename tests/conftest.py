"""Shared fixtures: tiny specs and a tiny model built once per session (seconds, offline); how the
suite is spread over pytest-xdist workers.

`make test` runs `pytest -n 2 --dist loadgroup --no-loadscope-reorder`. The real-model example tests
are most of the suite's CPU time and each is one long test, so they are pinned to two lanes of about
equal length (LANES) that go out first, one per worker; the tiny tests fill in around them. The
SLURM tests share one cluster and run one after another on one worker. The lanes are read from node
ids by our own scheduler: xdist 3.8's `xdist_group` mark renames node ids, which pytest 9.2 ignores.
Each worker uses 1 torch thread: two 2-thread processes on 2 cores ran 4x slower than 1 thread each
(BENCHMARKS.md, bench/threads), and the real-model tests keep their numbers at any thread count.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # before anything imports torch: OMP_NUM_THREADS is read once
    os.environ.setdefault("FTLAB_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import ftlab  # noqa: E402,F401  before torch loads, as the CLI: it sets torch's huge pages (train/memory.py)

# node-id prefix -> lane; lanes go out in this order. Measured in one 2-thread worker: 000 cpu ~11 min,
# 001 cpu ~7.5, the quickstart ~4 (tests/test_repo.py checks that each prefix names a test).
LANES = {
    "tests/examples/test_examples.py::test_hem_pn_cpu_scale_real_model_against_its_random_init_control": "real-a",
    "tests/examples/test_examples.py::test_gsm8k_safety_cpu_scale_real_model_few_shot_generation_and_a_real_judge": "real-b",
    "tests/examples/test_quickstart.py::test_quickstart_fine_tunes_the_real_model_and_pretraining_matters": "real-b",
    "tests/runners/slurm/": "slurm",
}
ORDER = ["real-a", "real-b"]


def lane(nodeid: str) -> str | None:
    return next((name for prefix, name in LANES.items() if nodeid.startswith(prefix)), None)


def pytest_collection_modifyitems(items):
    # the lanes first (stable: the rest keep their order), so each worker starts on one
    items.sort(key=lambda item: ORDER.index(lane(item.nodeid)) if lane(item.nodeid) in ORDER else len(ORDER))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Lanes(LoadScopeScheduling):
        """One work unit per lane, one per test otherwise; units go out in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            return lane(nodeid) or nodeid

    return Lanes(config, log)


@pytest.fixture(autouse=True)
def _one_torch_thread_per_worker():
    """A test that sets torch's threads (tests/test_threads.py) does not leave its worker at 2."""
    yield
    torch = sys.modules.get("torch")
    if os.environ.get("PYTEST_XDIST_WORKER") and torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# 240 train examples x 1 epoch of batch 16 = 15 steps on a 1-layer, hidden-32 model: ~3 s on 2 cores.
TINY_SPEC = """
name: tiny
output_dir: out
model:
  tiny: {{hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}}
task: {{labels: [P, N], positive: P}}
datasets:
  - {{name: train, role: train, generate: {{name: hem, n: 240, seed: 0}}}}
  - {{name: valid, role: valid, generate: {{name: hem, n: 40, seed: 0}}}}
  - {{name: test, role: test, generate: {{name: hem, n: 40, seed: 0}}}}
method: {{name: {method}}}
train: {{epochs: {epochs}, learning_rate: 0.003, batch_size: 16, max_length: 96, save_steps: {save_steps}, logging_steps: 5}}
eval: {{batch_size: 32}}
sweep: {sweep}
seeds: {seeds}
controls: {controls}
"""


def write_spec(directory: Path, *, method="full", epochs=1, save_steps=10, sweep="[]", seeds="[0]", controls="[]") -> Path:
    path = directory / "spec.yaml"
    text = TINY_SPEC.format(method=method, epochs=epochs, save_steps=save_steps, sweep=sweep, seeds=seeds, controls=controls)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from ftlab.data.generate import generators
    from ftlab.models.tiny import TinyConfig, build_tiny

    examples = generators.get("hem")(n=200, split="train", seed=0)
    texts = [m["content"] for e in examples for m in e.prompt] + [e.completion for e in examples]
    out = tmp_path_factory.mktemp("tiny") / "model"
    cfg = TinyConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, vocab_size=400)
    return build_tiny(out, cfg, texts)
