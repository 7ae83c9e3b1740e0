"""Throughput settings chosen by bench/train_throughput: length-grouped batches and regional compile."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ftlab.train.sampler import MEGABATCH_BATCHES, grouped_indices


def _lognormal_lengths(n: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(math.log(150), 0.8, size=n), 20, 1000)]


def _padding(lengths: list[int], order: list[int], batch: int) -> float:
    computed = sum(max(lengths[i] for i in order[k : k + batch]) * len(order[k : k + batch]) for k in range(0, len(order), batch))
    return 1 - sum(lengths) / computed


@pytest.mark.parametrize("n", [7, 160, 1001, 4 * MEGABATCH_BATCHES * 3 + 2])
def test_grouped_batches_cover_every_example_once_longest_first_short_batch_last(n: int):
    lengths = _lognormal_lengths(n)
    order = grouped_indices(lengths, 4, torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(n))
    assert lengths[order[0]] == max(lengths)
    # only the last batch may be short, so the DataLoader's fixed-size cuts stay on batch boundaries:
    # every full batch must come from one sorted megabatch, i.e. be sorted longest-first itself
    full = [order[k : k + 4] for k in range(0, n - n % 4, 4)]
    assert all([lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True) for b in full)


def test_grouping_pads_less_than_random_order_and_is_seeded():
    lengths = _lognormal_lengths(4000)
    grouped = grouped_indices(lengths, 4, torch.Generator().manual_seed(0))
    shuffled = random.Random(0).sample(range(4000), 4000)
    assert _padding(lengths, grouped, 4) < 0.02 < 0.3 < _padding(lengths, shuffled, 4)
    assert grouped == grouped_indices(lengths, 4, torch.Generator().manual_seed(0))
    assert grouped != grouped_indices(lengths, 4, torch.Generator().manual_seed(1))


def test_compiled_blocks_train_like_eager_and_save_the_same_weights(tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from ftlab.models.tiny import TinyConfig, build_tiny
    from ftlab.spec.schema import Train
    from ftlab.train.trainer import TrainerSetup, build_trainer

    model_dir = build_tiny(tmp_path / "m", TinyConfig(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64, vocab_size=300),
                           [f"w{i} {i % 17}" for i in range(300)])
    rng = random.Random(0)
    rows = [{"input_ids": [rng.randrange(3, 200) for _ in range(rng.randrange(5, 40))] + [7, 2], "completion_mask": None} for _ in range(24)]
    for r in rows:
        r["completion_mask"] = [0] * (len(r["input_ids"]) - 2) + [1, 1]
    hp = Train(batch_size=4, learning_rate=1e-3, logging_steps=1, max_length=64)
    results = {}
    for compile_ in (False, True):
        set_seed(0)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = build_trainer(model, AutoTokenizer.from_pretrained(model_dir), rows, hp.model_copy(update={"compile": compile_}),
                                TrainerSetup(tmp_path / f"out{compile_}", seed=0))
        compiled = [m for m in trainer.model.modules() if getattr(m, "_compiled_call_impl", None)]
        assert len(compiled) == (2 if compile_ else 0)
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        results[compile_] = (losses, trainer.model.state_dict())
    (eager_losses, eager_state), (comp_losses, comp_state) = results[False], results[True]
    assert len(eager_losses) == 6 and eager_losses[0] != eager_losses[-1]
    assert np.allclose(eager_losses, comp_losses, rtol=1e-4)
    assert eager_state.keys() == comp_state.keys()  # in place: checkpoints keep their parameter names
