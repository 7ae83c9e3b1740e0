"""Resample a labelled set to a positive fraction at a fixed total (seed 002's class proportions).

    out = resample(examples, positive="Accept", fraction="1/4", total=None, seed=0)

Counts: positives = round-half-even(total x fraction), computed exactly with Fraction, or the
exact `positives` count when given; negatives = total - positives. Seed 002's own table is not
one rounding rule of 17,101 x p (1/2 kept the original 8,553; 1/8 lists 2,135 where 17,101/8 is
2,137.6), so a spec that must match it to the row gives `positives:` explicitly (tests do).

A class with fewer examples than requested is an error, unless `replace` is set: then every
example of that class is used once and only the shortfall is drawn with replacement (seed 002
silently produced fewer rows instead).
"""

from __future__ import annotations

import random
from fractions import Fraction

from ftlab.data.example import Example
from ftlab.errors import DataError


def parse_fraction(value: float | str) -> Fraction:
    """'1/4', '0.25' or 0.25 -> Fraction(1, 4); must lie in [0, 1]."""
    try:
        frac = Fraction(str(value).strip()) if isinstance(value, str) else Fraction(value).limit_denominator(10**6)
    except (ValueError, ZeroDivisionError):
        raise DataError(f"positive_fraction {value!r} is not a number or a fraction like 1/4") from None
    if not 0 <= frac <= 1:
        raise DataError(f"positive_fraction {value!r} must lie between 0 and 1")
    return frac


def target_counts(total: int, *, fraction: float | str | None, positives: int | None) -> tuple[int, int]:
    if positives is None:
        if fraction is None:
            raise DataError("resample needs positive_fraction or positives")
        positives = round(total * parse_fraction(fraction))  # Fraction rounds half to even, exactly
    if positives > total:
        raise DataError(f"resample asks for {positives} positives in a total of {total}")
    return positives, total - positives


def resample(
    examples: list[Example],
    *,
    positive: str,
    fraction: float | str | None = None,
    positives: int | None = None,
    total: int | None = None,
    replace: bool = False,
    seed: int = 0,
) -> list[Example]:
    unlabelled = [e for e in examples if e.label is None]
    if unlabelled:
        raise DataError(f"resampling needs a label on every example; {unlabelled[0].meta.get('source', '?')} has none")
    pos_pool = [e for e in examples if e.label == positive]
    neg_pool = [e for e in examples if e.label != positive]
    n_pos, n_neg = target_counts(total or len(examples), fraction=fraction, positives=positives)
    rng = random.Random(seed)
    chosen = _draw(pos_pool, n_pos, rng, replace, f"positive ('{positive}')") + _draw(neg_pool, n_neg, rng, replace, "negative")
    rng.shuffle(chosen)
    return chosen


def _draw(pool: list[Example], n: int, rng: random.Random, replace: bool, what: str) -> list[Example]:
    if n <= len(pool):
        return rng.sample(pool, n)
    if not replace:
        raise DataError(
            f"resample needs {n} {what} examples but the data has only {len(pool)}; lower the count, "
            "or set resample.replace: true to draw the shortfall with replacement"
        )
    return rng.sample(pool, len(pool)) + rng.choices(pool, k=n - len(pool))
