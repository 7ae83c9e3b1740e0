"""Length-grouped batches whose order depends only on (seed, epoch), so resume is exact.

transformers' LengthGroupedSampler draws from torch's global RNG; after a resume that RNG was
restored to its state at the checkpoint, i.e. after the epoch's permutation was drawn, so the
resumed epoch saw another order. Re-seeding a private generator in `set_epoch` (which the
Trainer calls at every epoch start, resumed or not) gives the same batches either way.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices


class SeededLengthGroupedSampler(LengthGroupedSampler):
    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)

    def __iter__(self):
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=self.generator))


class LengthGroupingMixin:
    """For SFTTrainer subclasses: group by length when `group_by_length` is set on the trainer."""

    group_by_length = False

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        lengths = [len(ids) for ids in dataset["input_ids"]]
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return SeededLengthGroupedSampler(batch, lengths, seed=self.args.data_seed or self.args.seed)
