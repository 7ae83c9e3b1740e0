"""Paired comparisons of two sweep points scored on the same examples (report.checks compare/monotonic).

    from ftlab.reporting.paired import load_side, compare_sides
    a = load_side([Path("runs/r0/eval/checkpoint-30/logits/test.jsonl")], "accuracy", positive="P")
    b = load_side([...], "accuracy", positive="P")
    c = compare_sides(a, b)            # Comparison: effect a - b, 95% interval, p-value, method

Every metric handled here is a ratio of two sums over examples, metric = sum(num_i) / sum(den_i)
(accuracy: correct / 1, predicted_positive_rate: pred positive / 1, precision: tp / pred positive,
recall: tp / positive, f1: 2 tp / (positive + pred positive), a generation accuracy: correct /
has a reference). A resample of examples is a vector of counts w, and the metric on it is
(num @ w) / (den @ w), so one matrix product scores 2,000 resamples of every seed at once.

Methods (the report names the one used for each comparison):
- accuracy, one seed per side: exact McNemar test, i.e. a two-sided binomial test of the discordant
  pairs b (a right, b wrong) against c (a wrong, b right) at 1/2 (McNemar 1947; the exact form as in
  statsmodels' mcnemar(exact=True)); the interval is the paired bootstrap's.
- any metric above, one seed per side: paired percentile bootstrap over examples (the same
  resampled examples score both sides; Efron & Tibshirani 1993, ch. 13 and 16), p-value by
  inverting the percentile interval, p = 2 min(P*(d <= 0), P*(d >= 0)), floored at 1/(B+1).
- several seeds on a side: two-level bootstrap, seeds then examples (Owen 2007, "The pigeonhole
  bootstrap", for crossed seed x example data): each resample draws each side's seeds with
  replacement and one shared set of examples. A side's seed draws are rescaled by sqrt(k/(k-1))
  around its mean, so that their variance is the unbiased s^2/k rather than (k-1)/k of it
  (Davison & Hinkley 1997, sec. 3.3). With 2-5 seeds a percentile interval of so few seed draws
  is too narrow when seed variance dominates (84% coverage at 2 seeds in a simulation), so the
  interval is effect +- t(0.975, df) se_bootstrap, df by Welch-Satterthwaite from the seed
  variances (k - 1 each) and the examples' variance (n - 1), and p is that t-test's.

Resamples: 2,000 with a fixed seed, so a report is reproducible. 2,000 resamples x 1,000 examples x
3 seeds a side is one (3 x 1000) @ (1000 x 2000) product per side: 0.03 s a comparison on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftlab.reporting.aggregate import evidence_records

RESAMPLES = 2000
SEED = 20  # issue 20; any fixed value makes reports reproducible
CELLS = 2_000_000  # resample x example counts held at once (16 MB of float64)
Z975, Z80 = 1.959964, 0.841621  # normal quantiles: two-sided 5% and 80% power
CLASSIFICATION = ("accuracy", "predicted_positive_rate", "precision", "recall", "f1")
GENERATION = {"accuracy": "parsed", "accuracy_strict": "parsed_strict", "accuracy_flexible": "parsed_flexible"}


@dataclass
class Side:
    """One sweep point's per-example evidence: num/den per seed (k x n) and the examples' keys."""

    keys: list
    num: np.ndarray
    den: np.ndarray
    labels: list | None = None

    @property
    def seeds(self) -> int:
        return int(self.num.shape[0])

    def values(self) -> np.ndarray:
        """The metric of each seed on all examples."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.num.sum(1) / self.den.sum(1)


@dataclass
class Comparison:
    """a - b with its 95% interval and two-sided p-value (against `null`), and how they were computed."""

    effect: float
    low: float
    high: float
    p: float
    method: str
    paired: bool
    null: float = 0.0
    n_examples: int | None = None
    seeds: tuple[int, int] = (1, 1)
    se: float = math.nan
    note: str = ""
    p_adjusted: float = math.nan
    mde: float = math.nan
    seeds_needed: str | None = None
    dof: float = math.inf  # degrees of freedom of the test (inf: normal / bootstrap)
    unpaired_p: float = math.nan  # what the unpaired difference of seed means says, for comparison
    unpaired: Comparison | None = field(default=None, repr=False)
    parts: dict = field(default_factory=dict)  # variance components for the seeds-needed estimate

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("effect", "low", "high", "p", "p_adjusted", "method", "paired", "null",
                                             "n_examples", "mde", "seeds_needed", "unpaired_p", "note")}
        out["seeds"] = list(self.seeds)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}



def per_example(recs: list[dict], metric: str, positive: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(num, den) per example so that metric = num.sum() / den.sum(), or None (no per-example form)."""
    if not recs:
        return None
    if all("label" in r and "pred" in r for r in recs) and positive is not None and metric in CLASSIFICATION:
        y = np.array([r["label"] == positive for r in recs], dtype=float)
        p = np.array([r["pred"] == positive for r in recs], dtype=float)
        correct = np.array([r["pred"] is not None and r["pred"] == r["label"] for r in recs], dtype=float)
        ones = np.ones(len(recs))
        return {"accuracy": (correct, ones), "predicted_positive_rate": (p, ones), "precision": (y * p, p),
                "recall": (y * p, y), "f1": (2 * y * p, y + p)}[metric]
    key = GENERATION.get(metric)
    if metric == "accuracy" and recs and "parsed" not in recs[0]:
        key = "parsed_strict"  # parser gsm8k: accuracy is the strict convention (ftlab.evaluate.evaluators.generate)
    if key and all("reference" in r and key in r for r in recs):
        scored = np.array([r["reference"] is not None for r in recs], dtype=float)
        correct = np.array([r["reference"] is not None and r[key] == r["reference"] for r in recs], dtype=float)
        return correct, scored
    return None


def example_keys(recs: list[dict]) -> list:
    """Join keys: the example's source when every record has a distinct one, else its index."""
    sources = [r.get("source") for r in recs]
    if all(s is not None for s in sources) and len(set(map(str, sources))) == len(sources):
        return [("source", str(s)) for s in sources]
    return [("index", r.get("index", i)) for i, r in enumerate(recs)]


def load_side(paths: list[Path], metric: str, positive: str | None) -> Side | str:
    """One point's seeds as a Side, or why it cannot be paired (a sentence)."""
    if not paths:
        return "no per-example evidence"
    nums, dens, keys, labels = [], [], None, None
    for path in paths:
        recs = evidence_records(path)
        if not recs:
            return f"evidence {path.name} missing or empty"
        parts = per_example(recs, metric, positive)
        if parts is None:
            return f"no per-example form of {metric} in this evaluator's evidence"
        k = example_keys(recs)
        order = sorted(range(len(k)), key=lambda i: k[i])
        if keys is not None and [k[i] for i in order] != keys:
            return "its seeds were scored on different examples"
        keys = [k[i] for i in order]
        labels = [recs[i].get("label", recs[i].get("reference")) for i in order]
        nums.append(parts[0][order])
        dens.append(parts[1][order])
    return Side(keys, np.vstack(nums), np.vstack(dens), labels)


def shared(a: Side, b: Side) -> tuple[Side, Side, str] | str:
    """Both sides on the examples they share, with a note when that is fewer than either scored
    (seed 001 scores a preset on a 20% downsample of the untuned model's test set: the 10 drawn
    are the same problems); or why they cannot be paired (a sentence)."""
    common = sorted(set(a.keys) & set(b.keys))
    if not common:
        return "the sides were scored on different examples"
    note = "" if len(common) == len(a.keys) == len(b.keys) else \
        f"on the {len(common)} examples both were scored on (a: {len(a.keys)}, b: {len(b.keys)})"
    a, b = _restrict(a, common), _restrict(b, common)
    if a.labels != b.labels:
        return "the sides' examples have different labels"
    return a, b, note


def _restrict(side: Side, keys: list) -> Side:
    if keys == side.keys:
        return side
    index = {k: i for i, k in enumerate(side.keys)}
    rows = [index[k] for k in keys]
    labels = [side.labels[i] for i in rows] if side.labels is not None else None
    return Side(list(keys), side.num[:, rows], side.den[:, rows], labels)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of b successes in b + c trials at 1/2 (1.0 when b + c = 0)."""
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(min(b, c), n, 0.5)))


def _weights(n: int, rng: np.random.Generator, size: int = RESAMPLES) -> np.ndarray:
    """size x n counts of a with-replacement draw of n examples."""
    idx = rng.integers(0, n, size=(size, n))
    offsets = (np.arange(idx.shape[0]) * n)[:, None]
    return np.bincount((idx + offsets).ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n).astype(float)


def _seed_means(side: Side, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per resample: the mean over a with-replacement draw of seeds of each seed's metric on the resample w."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = (side.num @ w.T) / (side.den @ w.T)  # k x B
    k = side.seeds
    if k == 1:
        return per_seed[0]
    draw = rng.integers(0, k, size=(k, per_seed.shape[1]))
    picked = np.take_along_axis(per_seed, draw, axis=0).mean(0)
    centre = per_seed.mean(0)
    return centre + math.sqrt(k / (k - 1)) * (picked - centre)


def compare_sides(a: Side, b: Side, *, null: float = 0.0, metric: str = "accuracy",
                  untrained: tuple[bool, bool] = (False, False)) -> Comparison:
    """a - b paired over the shared examples (see the module docstring for the method chosen).

    `untrained` marks a side that no training seed changes (the untuned control): its seed
    variance is zero, not unknown, when the number of seeds needed is estimated."""
    rng = np.random.default_rng(SEED)
    n = len(a.keys)
    va, vb = a.values(), b.values()
    effect = float(va.mean() - vb.mean())
    # Resamples in chunks of at most CELLS counts: 14,000 examples (MMLU's test) x 2,000 resamples
    # at once would hold ~0.7 GB of counts; chunks of 140 keep it near 20 MB, same results.
    chunk = max(1, min(RESAMPLES, CELLS // max(n, 1)))
    diffs_parts, ex_parts = [], []
    for start in range(0, RESAMPLES, chunk):
        w = _weights(n, rng, min(chunk, RESAMPLES - start))
        diffs_parts.append(_seed_means(a, w, rng) - _seed_means(b, w, rng))
        ex_parts.append(_example_diffs(a, b, w))
    diffs = np.concatenate(diffs_parts)
    diffs = diffs[np.isfinite(diffs)]
    if not math.isfinite(effect) or len(diffs) < RESAMPLES / 2:
        return Comparison(effect, math.nan, math.nan, math.nan, "paired bootstrap: undefined on too many resamples",
                          True, null, n, (a.seeds, b.seeds))
    lo, hi = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    se = float(diffs.std(ddof=1))
    below, above = float(np.mean(diffs - null <= 0)), float(np.mean(diffs - null >= 0))
    p = max(min(1.0, 2 * min(below, above)), 1 / (len(diffs) + 1))
    parts = _components(a, b, np.concatenate(ex_parts))
    for name, fixed in zip("ab", untrained):
        if fixed:
            parts[f"seed_var_{name}"] = 0.0
    dof = math.inf
    if a.seeds == 1 and b.seeds == 1:
        method = f"paired bootstrap over {n} examples"
        if metric == "accuracy" and null == 0 and np.all(a.den == 1) and np.all(b.den == 1):
            right_a, right_b = a.num[0] > 0, b.num[0] > 0
            nb, nc = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
            p = mcnemar_exact(nb, nc)
            method = f"exact McNemar ({nb} vs {nc} discordant of {n} examples; interval: paired bootstrap)"
    else:
        dof = _satterthwaite(parts, n)
        lo, hi, p = _t_interval(effect, se, null, dof)
        method = (f"two-level bootstrap: {a.seeds} vs {b.seeds} seeds, then {n} shared examples"
                  f" (its se with t, df {dof:.1f})")
    return Comparison(effect, lo, hi, p, method, True, null, n, (a.seeds, b.seeds), se, parts=parts, dof=dof)


def _satterthwaite(parts: dict, n: int) -> float:
    """Welch-Satterthwaite degrees of freedom of s_a^2/k_a + s_b^2/k_b + v_examples (k - 1 and n - 1 each)."""
    terms = [(parts[f"seed_var_{x}"] / parts[f"k_{x}"], parts[f"k_{x}"] - 1) for x in "ab"
             if parts[f"k_{x}"] > 1 and math.isfinite(parts[f"seed_var_{x}"])]
    if math.isfinite(parts["examples"]):
        terms.append((parts["examples"], n - 1))
    total, denom = sum(v for v, _ in terms), sum(v * v / d for v, d in terms if d > 0)
    return total * total / denom if denom > 0 else math.inf


def _t_interval(effect: float, se: float, null: float, dof: float) -> tuple[float, float, float]:
    """effect +- t(0.975, dof) se and the two-sided p of effect = null."""
    from scipy import stats

    if not se > 0:  # every resample gave the same difference: the sides agree on every example, or differ on all alike
        return effect, effect, 1.0 if effect == null else 1 / (RESAMPLES + 1)
    q = float(stats.t.ppf(0.975, dof))
    return effect - q * se, effect + q * se, float(2 * stats.t.sf(abs(effect - null) / se, dof))


def _example_diffs(a: Side, b: Side, w: np.ndarray) -> np.ndarray:
    """Per resample of examples (seeds all kept): the seed-averaged a - b."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.num @ w.T / (a.den @ w.T)).mean(0) - (b.num @ w.T / (b.den @ w.T)).mean(0)


def _components(a: Side, b: Side, ex: np.ndarray) -> dict:
    """Variance of the difference from examples (seed-averaged, paired) and each side's seed variance."""
    ex = ex[np.isfinite(ex)]
    out = {"examples": float(ex.var(ddof=1)) if len(ex) > 1 else math.nan, "n": len(a.keys)}
    for name, side in (("a", a), ("b", b)):
        v = side.values()
        out[f"seed_var_{name}"] = float(v.var(ddof=1)) if side.seeds > 1 else math.nan
        out[f"k_{name}"] = side.seeds
    return out


def minimal_detectable(se: float, dof: float = math.inf) -> float:
    """The smallest true difference a two-sided 5% test detects with 80% power: (t_.975 + t_.8) se
    with the test's degrees of freedom (normal quantiles, 2.80 se, when dof is infinite; 14.1 se
    at one degree of freedom). NaN when se is 0: sides that agree everywhere measure no spread."""
    if not (math.isfinite(se) and se > 0):
        return math.nan
    if not math.isfinite(dof):
        return (Z975 + Z80) * se
    from scipy import stats

    return float(stats.t.ppf(0.975, dof) + stats.t.ppf(0.8, dof)) * se


def seeds_needed(parts: dict, min_effect: float, max_seeds: int = 1000) -> str:
    """Seeds per side for a difference of `min_effect` to be detected with 80% power, or why none will do.

    se(k)^2 = v_examples + (s_a^2 + s_b^2) / k: more seeds shrink only the seed part; the test set's
    own example variance stays (a sharper claim then needs more examples, not more seeds). The
    smallest k with (t_.975 + t_.8) se(k) <= min_effect, df by Welch-Satterthwaite at k seeds."""
    seed_var = parts.get("seed_var_a", math.nan) + parts.get("seed_var_b", math.nan)
    ex = parts.get("examples", math.nan)
    ex = ex if math.isfinite(ex) else 0.0
    if not math.isfinite(seed_var):
        return "unknown: needs at least 2 seeds on each side to measure the seed variance"
    if ex > 0 and minimal_detectable(math.sqrt(ex)) >= abs(min_effect):
        return (f"none: the examples alone give a detectable difference of {minimal_detectable(math.sqrt(ex)):.3f} "
                f">= {abs(min_effect):g}; more test examples are needed")
    n = parts.get("n", 1000)
    for k in range(2, max_seeds + 1):
        at_k = {"examples": ex, "k_a": k, "k_b": k, "seed_var_a": parts.get("seed_var_a"), "seed_var_b": parts.get("seed_var_b")}
        se = math.sqrt(ex + seed_var / k)
        if se == 0 or minimal_detectable(se, _satterthwaite(at_k, n)) <= abs(min_effect):
            return f"{k} per side"
    return f"more than {max_seeds} per side"


CORRECTIONS = ("holm", "bonferroni", "none")


def adjust(pvalues: list[float], method: str = "holm") -> list[float]:
    """Family-wise adjusted p-values (NaN entries are left out of the family and stay NaN).

    holm: Holm (1979) step-down, p_(i) -> max_{j<=i} min(1, (m - j + 1) p_(j)), as statsmodels'
    multipletests(method="holm"); bonferroni: min(1, m p); none: unchanged."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction '{method}'; use one of {', '.join(CORRECTIONS)}")
    out = [math.nan] * len(pvalues)
    family = [(p, i) for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(family)
    if method == "none":
        for p, i in family:
            out[i] = p
    elif method == "bonferroni":
        for p, i in family:
            out[i] = min(1.0, m * p)
    else:
        running = 0.0
        for rank, (p, i) in enumerate(sorted(family)):
            running = max(running, min(1.0, (m - rank) * p))
            out[i] = running
    return out
