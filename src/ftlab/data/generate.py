"""Built-in synthetic tasks, so the quickstart runs offline with no dataset to download.

    from ftlab.data.generate import generators
    train = generators.get("hem")(n=400, split="train", seed=0)   # list[Example], 200 P + 200 N

"hem" is a toy high-entropy-alloy synthesizability task. Each composition is an equimolar set of
4-6 of the 16 metals in VEC below, written alphabetically ("Co Cr Fe Mn Ni"). Its label follows
the valence-electron-concentration rule (Guo et al., J. Appl. Phys. 109, 103505, 2011, found FCC
at VEC >= 8 and BCC below 6.87; one cut at 7.0 is a toy simplification): mean VEC >= 7.0 -> "P",
else "N". Compositions with mean VEC within 0.3 of 7.0 are left out: that clean margin keeps the
task learnable by a tiny model in a minute.

Splits are disjoint by construction: each composition belongs to one split by a SHA-1 bucket of
its text, which is the same in every process and Python version (unlike hash()).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache

from ftlab.data.example import Example
from ftlab.errors import DataError
from ftlab.plugins import Plugins

Generator = Callable[..., list[Example]]  # called as gen(*, n: int, split: str, seed: int)
generators: Plugins[Generator] = Plugins("data generator")

# Valence electron counts as used in the HEA phase-stability literature (Guo et al. 2011).
VEC = {
    "Al": 3, "Ti": 4, "Zr": 4, "Hf": 4, "V": 5, "Nb": 5, "Ta": 5, "Cr": 6,
    "Mo": 6, "W": 6, "Mn": 7, "Fe": 8, "Co": 9, "Ni": 10, "Cu": 11, "Pd": 10,
}
SIZES = (4, 5, 6)  # C(16,4) + C(16,5) + C(16,6) = 14,196 compositions before the margin cut
THRESHOLD = Fraction(7)
# With 7.0 +- 0.3 the smallest class pool is P in valid/test: ~245 each (N ~900), so a balanced
# valid or test set can hold up to ~490 examples; train holds ~1,900 P and ~7,200 N.
MARGIN = Fraction(3, 10)
SPLITS = {"train": range(0, 8), "valid": range(8, 9), "test": range(9, 10)}  # SHA-1 bucket mod 10
SYSTEM = "You are a materials scientist."
QUESTION = "Does this high-entropy alloy form a single solid-solution phase? Answer P or N."


def mean_vec(elements: tuple[str, ...]) -> Fraction:
    """Exact mean VEC; Fraction so that no composition lands on the wrong side of the margin by rounding."""
    return Fraction(sum(VEC[e] for e in elements), len(elements))


def hem_label(vec: Fraction) -> str | None:
    """ "P" or "N" by the VEC rule, or None inside the excluded margin."""
    if abs(vec - THRESHOLD) <= MARGIN:
        return None
    return "P" if vec >= THRESHOLD else "N"


def split_of(composition: str) -> str:
    bucket = int(hashlib.sha1(composition.encode("utf-8")).hexdigest(), 16) % 10
    return next(name for name, buckets in SPLITS.items() if bucket in buckets)


@lru_cache(maxsize=None)
def hem_pools(split: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every labelled composition of one split, by label, in a fixed enumeration order."""
    pools: dict[str, list[tuple[str, ...]]] = {"P": [], "N": []}
    for size in SIZES:
        for elements in itertools.combinations(sorted(VEC), size):
            label = hem_label(mean_vec(elements))
            if label is not None and split_of(" ".join(elements)) == split:
                pools[label].append(elements)
    return {label: tuple(pool) for label, pool in pools.items()}


@generators.register("hem")
def generate_hem(*, n: int, split: str, seed: int) -> list[Example]:
    """n examples of one split, n//2 "P" and the rest "N", shuffled; same arguments, same list."""
    if split not in SPLITS:
        raise DataError(f"hem: unknown split '{split}'; use one of {', '.join(SPLITS)}")
    if n < 1:
        raise DataError(f"hem: n must be at least 1, got {n}")
    pools = hem_pools(split)
    n_p, n_n = n // 2, n - n // 2
    have_p, have_n = len(pools["P"]), len(pools["N"])
    if n_p > have_p or n_n > have_n:
        most = 2 * have_n if have_p >= have_n else 2 * have_p + 1
        raise DataError(
            f"hem: split '{split}' has {have_p} P and {have_n} N compositions, so a balanced set "
            f"holds at most {most} examples; asked for {n}"
        )
    rng = random.Random(seed)
    chosen = [(e, "P") for e in rng.sample(pools["P"], n_p)] + [(e, "N") for e in rng.sample(pools["N"], n_n)]
    rng.shuffle(chosen)
    return [_hem_example(elements, label, split, i) for i, (elements, label) in enumerate(chosen)]


def _hem_example(elements: tuple[str, ...], label: str, split: str, i: int) -> Example:
    composition = " ".join(elements)
    return Example(
        prompt=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Composition: {composition}\n{QUESTION}"},
        ],
        completion=label,
        label=label,
        meta={
            "composition": composition,
            "vec": round(float(mean_vec(elements)), 3),
            "n_elements": len(elements),
            "source": f"hem:{split}:{i}",
        },
    )
