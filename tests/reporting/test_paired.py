"""Paired comparisons and multiple-comparison control (ftlab.reporting.paired) against known answers.

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/reporting/test_paired.py     # ~10 s on 2 cores

Reference answers: scipy.stats.binomtest (exact McNemar = binomial test of the discordant pairs),
hand-computed Holm/Bonferroni values, statsmodels when it is installed (it is not a dependency).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftlab.reporting.paired import Side, adjust, compare_sides, mcnemar_exact, minimal_detectable, seeds_needed


def _side(rows) -> Side:
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    return Side([("index", i) for i in range(rows.shape[1])], rows, np.ones_like(rows))


def _pair(b: int, c: int, both: int, neither: int) -> tuple[Side, Side]:
    """One seed per side: b examples only a gets right, c only b, `both` and `neither` the rest."""
    a = [1] * b + [0] * c + [1] * both + [0] * neither
    bb = [0] * b + [1] * c + [1] * both + [0] * neither
    return _side(a), _side(bb)


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (5, 5), (3, 11), (20, 1), (0, 17), (40, 33)])
def test_exact_mcnemar_is_the_binomial_test_of_the_discordant_pairs(b, c):
    from scipy.stats import binomtest

    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    result = compare_sides(*_pair(b, c, both=30, neither=10))
    assert result.p == pytest.approx(expected, rel=1e-12) and "exact McNemar" in result.method
    assert result.effect == pytest.approx((b - c) / (b + c + 40))


def test_exact_mcnemar_on_random_tables():
    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    for _ in range(50):
        b, c = (int(x) for x in rng.integers(0, 60, size=2))
        assert mcnemar_exact(b, c) == pytest.approx(1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue, rel=1e-12)


def test_exact_mcnemar_matches_statsmodels_when_installed():
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    for b, c in [(0, 0), (3, 11), (7, 7), (0, 9)]:
        assert mcnemar_exact(b, c) == pytest.approx(sm.mcnemar([[10, b], [c, 10]], exact=True).pvalue)


def test_holm_and_bonferroni_known_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm by hand: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust(p, "none") == p
    mixed = adjust([0.2, math.nan, 0.01], "holm")  # NaN: not in the family (m = 2)
    assert mixed[0] == pytest.approx(0.2) and math.isnan(mixed[1]) and mixed[2] == pytest.approx(0.02)
    assert adjust([0.9, 0.3], "holm") == pytest.approx([0.9, 0.6])  # 0.3 * 2, then max(0.9 * 1, 0.6)
    assert adjust([0.9, 0.8], "holm") == [1.0, 1.0]  # capped at 1, and monotone
    with pytest.raises(ValueError):
        adjust(p, "sidak")


def test_holm_matches_statsmodels_when_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = list(np.random.default_rng(3).uniform(0, 0.2, size=12))
    assert adjust(p, "holm") == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


def test_bootstrap_is_seeded_and_reproducible():
    a, b = _side(np.random.default_rng(1).random((3, 80)) < 0.7), _side(np.random.default_rng(2).random((3, 80)) < 0.6)
    one, two = compare_sides(a, b), compare_sides(a, b)
    assert (one.effect, one.low, one.high, one.p) == (two.effect, two.low, two.high, two.p)
    assert "two-level bootstrap: 3 vs 3 seeds" in one.method


def test_ratio_metrics_are_computed_per_resample():
    # f1 = 2 tp / (positives + predicted positives): num/den per example, summed before dividing.
    y = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=float)
    pa, pb = np.array([1, 1, 0, 0, 1, 1, 0, 1.0]), np.array([1, 0, 0, 0, 1, 0, 0, 1.0])
    keys = [("index", i) for i in range(8)]
    a = Side(keys, (2 * y * pa)[None], (y + pa)[None])
    b = Side(keys, (2 * y * pb)[None], (y + pb)[None])
    result = compare_sides(a, b, metric="f1")
    assert result.effect == pytest.approx(8 / 10 - 4 / 8)  # a: tp 4 of 5 + 5; b: tp 2 of 5 + 3
    assert "paired bootstrap over 8 examples" in result.method and result.low <= result.effect <= result.high


def test_generation_accuracy_per_example_follows_the_evaluator():
    from ftlab.reporting.paired import per_example

    recs = [{"index": 0, "reference": "4", "parsed_strict": "4", "parsed_flexible": "4"},
            {"index": 1, "reference": "7", "parsed_strict": None, "parsed_flexible": "7"},
            {"index": 2, "reference": None, "parsed_strict": "1", "parsed_flexible": "1"}]  # no reference: not scored
    num, den = per_example(recs, "accuracy_strict", None)
    assert num.sum() / den.sum() == 0.5
    num, den = per_example(recs, "accuracy_flexible", None)
    assert num.sum() / den.sum() == 1.0
    assert per_example(recs, "accuracy", None)[0].sum() == 1  # gsm8k's accuracy is the strict one
    assert per_example(recs, "auroc", None) is None  # no per-example form: the check falls back to unpaired
    classified = [{"index": 0, "label": "P", "pred": None}, {"index": 1, "label": "N", "pred": "N"}]
    assert list(per_example(classified, "accuracy", "P")[0]) == [0.0, 1.0]  # unparsed counts as wrong


def _draw(rng, n: int, delta: float):
    """Paired examples with a known difference of accuracies: a right w.p. 0.7, b = a except on a
    20% share where b is right w.p. 0.7 - 5 delta. True a - b = 0.2 (0.7 - (0.7 - 5 delta)) = delta."""
    a = rng.random(n) < 0.7
    swap = rng.random(n) < 0.2
    b = np.where(swap, rng.random(n) < 0.7 - 5 * delta, a)
    return _side(a), _side(b)


def test_paired_bootstrap_covers_a_known_difference_about_95_percent():
    # 200 draws x 2,000 resamples x 150 examples: ~3 s. The 95% binomial band of 200 draws at
    # 0.95 is about 0.92..0.98; the percentile bootstrap of a mean runs slightly narrow at n = 150.
    rng = np.random.default_rng(7)
    delta, hits, draws = 0.03, 0, 200
    for _ in range(draws):
        result = compare_sides(*_draw(rng, 150, delta), metric="ppr")
        hits += result.low <= delta <= result.high
    assert 0.90 <= hits / draws <= 0.99, hits / draws


@pytest.mark.parametrize("k,seed_sd", [(3, 0.08), (5, 0.03)])
def test_two_level_bootstrap_covers_a_known_difference_with_seed_variance(k, seed_sd):
    # Each seed shifts a side's accuracy by N(0, seed_sd^2); k seeds a side, 120 shared examples.
    # 3 seeds with a seed sd of 0.08 is where a plain percentile interval of the seed draws
    # undercovers (~0.89); the t with Satterthwaite df keeps ~0.95. 120 draws: ~1 s each case.
    rng = np.random.default_rng(11)
    n, delta, hits, draws = 120, 0.05, 0, 120
    for _ in range(draws):
        u = rng.random(n)  # example difficulty, shared by both sides and every seed
        sides = [_side([u < base + rng.normal(0, seed_sd) for _ in range(k)]) for base in (0.6 + delta, 0.6)]
        result = compare_sides(*sides)
        hits += result.low <= delta <= result.high
    assert 0.90 <= hits / draws <= 1.0, hits / draws


def test_power_and_seeds_needed():
    from scipy import stats

    assert minimal_detectable(0.01) == pytest.approx(0.0280, abs=1e-4)  # (1.960 + 0.842) se
    assert minimal_detectable(0.01, 1) == pytest.approx((stats.t.ppf(0.975, 1) + stats.t.ppf(0.8, 1)) * 0.01)  # 14.1 se
    assert math.isnan(minimal_detectable(math.nan)) and math.isnan(minimal_detectable(0.0))
    parts = {"examples": 1e-5, "seed_var_a": 4e-4, "seed_var_b": 4e-4, "k_a": 3, "k_b": 3, "n": 200}
    # se(k)^2 = 1e-5 + 8e-4 / k; with normal quantiles k = 20 (se 0.00714); with t at df ~2(k - 1)
    # 20 seeds detect 0.0203 and 21 detect 0.0199
    assert seeds_needed(parts, 0.02) == "21 per side"
    assert seeds_needed({**parts, "examples": 1e-4}, 0.02).startswith("none: the examples alone")
    assert seeds_needed({"examples": 1e-5, "seed_var_a": math.nan, "seed_var_b": math.nan}, 0.02).startswith("unknown")


# ---- run_checks on evidence files: pairing, the fallback, undefined metrics, the family


def _experiment(tmp_path, points: dict[str, list[list[int]]], *, test_of: dict[str, str] | None = None):
    """points: name -> one 0/1 correctness list per seed; writes classification evidence (label P
    everywhere, pred P when right) and returns ftlab.results-shaped df and its aggregate."""
    import json

    import pandas as pd

    from ftlab.reporting.aggregate import aggregate

    rows = []
    for name, seeds in points.items():
        for seed, correct in enumerate(seeds):
            run = f"{name}_s{seed}"
            ev = f"runs/{run}/eval/checkpoint-10/logits/test.jsonl"
            path = tmp_path / ev
            path.parent.mkdir(parents=True, exist_ok=True)
            offset = 1000 if (test_of or {}).get(name) == "other" else 0
            path.write_text("".join(json.dumps({"index": i, "source": f"ex{i + offset}", "label": "P", "pred": "P" if ok else "N"}) + "\n"
                                    for i, ok in enumerate(correct)))
            rows.append({"run_id": run, "run": run, "index": len(rows), "kind": "trained", "method": "full", "seed": seed,
                         "variant": name, "checkpoint": "checkpoint-10", "step": 10, "epoch": 1.0, "selected": True,
                         "split": "test", "evaluator": "logits", "metric": "accuracy", "value": float(np.mean(correct)),
                         "undefined_reason": None, "recorded_value": float(np.mean(correct)), "evidence": ev})
    df = pd.DataFrame(rows)
    df.attrs.update(sweep_variables=["variant"], experiment_dir=str(tmp_path), positive="P", column_of={"variant": "variant"})
    return df, aggregate(df)


def _checks(df, agg, checks, correction="holm"):
    from ftlab.reporting.checks import run_checks
    from ftlab.spec.schema import CheckSpec

    return run_checks(agg, [CheckSpec(**c) for c in checks], default_split="test", default_evaluator="logits",
                      df=df, correction=correction)


# 100 examples: a right on 70, b on 62, and b's right answers are a subset of a's: 8 discordant
# pairs, all for a. Unpaired (two bootstrap se's ~0.047) the +0.08 straddles 0; paired, McNemar
# gives p = 2 * 0.5^8 = 0.0078.
A1 = [1] * 70 + [0] * 30
B1 = [1] * 62 + [0] * 38


def test_pairing_decides_what_the_unpaired_difference_left_open(tmp_path):
    df, agg = _experiment(tmp_path, {"tuned": [A1], "base": [B1]})
    compare = {"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"}}
    paired = _checks(df, agg, [compare])[0]
    assert paired["status"] == "holds", paired["details"]
    c = paired["comparisons"][0]
    assert c["paired"] and "exact McNemar (8 vs 0 discordant of 100 examples" in c["method"]
    assert c["p"] == pytest.approx(2 * 0.5 ** 8) and c["effect"] == pytest.approx(0.08) and c["mde"] > 0
    unpaired = _checks(None, agg, [compare])[0]
    assert unpaired["status"] == "inconclusive" and "unpaired (no per-example evidence given)" in unpaired["details"][0]


def test_different_test_sets_fall_back_to_unpaired_and_say_so(tmp_path):
    df, agg = _experiment(tmp_path, {"tuned": [A1], "base": [B1]}, test_of={"base": "other"})
    result = _checks(df, agg, [{"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"}}])[0]
    c = result["comparisons"][0]
    assert not c["paired"] and c["method"].startswith("unpaired (the sides were scored on different examples)")
    assert result["status"] == "inconclusive"


def test_several_seeds_use_the_two_level_bootstrap_and_min_effect_gives_seeds(tmp_path):
    rng = np.random.default_rng(5)
    tuned = [list((rng.random(100) < 0.75).astype(int)) for _ in range(3)]
    base = [list((rng.random(100) < 0.55).astype(int)) for _ in range(3)]
    df, agg = _experiment(tmp_path, {"tuned": tuned, "base": base})
    result = _checks(df, agg, [{"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"},
                                "min_effect": 0.05}])[0]
    c = result["comparisons"][0]
    assert "two-level bootstrap: 3 vs 3 seeds, then 100 shared examples" in c["method"] and c["seeds"] == [3, 3]
    assert c["seeds_needed"] and result["status"] == "holds"


def test_undefined_metric_stays_undefined_and_out_of_the_family(tmp_path):
    df, agg = _experiment(tmp_path, {"tuned": [A1], "base": [B1], "broken": [A1]})
    agg.loc[agg["variant"] == "broken", ["mean", "se", "ci_low", "ci_high"]] = math.nan
    agg.loc[agg["variant"] == "broken", "undefined_reason"] = "not meaningful: no positives"
    results = _checks(df, agg, [
        {"kind": "compare", "metric": "accuracy", "a": {"variant": "broken"}, "b": {"variant": "base"}},
        {"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"}}])
    assert results[0]["status"] == "inconclusive" and results[0]["comparisons"][0]["effect"] is None
    assert results[0]["comparisons"][0]["p"] is None and results[1]["family_size"] == 1
    assert results[1]["comparisons"][0]["p_adjusted"] == pytest.approx(results[1]["comparisons"][0]["p"])


def test_the_family_is_adjusted_together_and_verdicts_use_the_adjusted_p(tmp_path):
    # 6 discordant pairs all for a: p = 2 * 0.5^6 = 0.03125 alone, raw; three such checks under
    # Holm: 3 * 0.03125 = 0.094 -> inconclusive; with correction none they hold.
    a = [1] * 66 + [0] * 34
    b = [1] * 60 + [0] * 40
    df, agg = _experiment(tmp_path, {"x": [a], "y": [a], "z": [a], "base": [b]})
    checks = [{"kind": "compare", "metric": "accuracy", "a": {"variant": v}, "b": {"variant": "base"}} for v in "xyz"]
    holm = _checks(df, agg, checks)
    none = _checks(df, agg, checks, correction="none")
    assert [r["status"] for r in holm] == ["inconclusive"] * 3 and [r["status"] for r in none] == ["holds"] * 3
    c = holm[0]["comparisons"][0]
    assert c["p"] == pytest.approx(0.03125) and c["p_adjusted"] == pytest.approx(0.09375)
    assert holm[0]["correction"] == "holm" and holm[0]["family_size"] == 3
    assert "p 0.0312, adjusted 0.0938" in holm[0]["details"][0]
    assert none[0]["comparisons"][0]["note"] is None or none[0]["comparisons"][0]["note"] == ""


def test_a_decision_lost_to_pairing_says_why(tmp_path):
    # 3 seeds a side whose accuracies barely vary (seed means differ clearly: unpaired Welch
    # decides) but on only 30 examples that most seeds get right or wrong alike: the paired test,
    # which also counts the examples' variance, leaves it open and the line says so.
    u = np.linspace(0, 1, 30)
    tuned = [list((u < x).astype(int)) for x in (0.60, 0.61, 0.62)]
    base = [list((u < x).astype(int)) for x in (0.50, 0.51, 0.52)]
    df, agg = _experiment(tmp_path, {"tuned": tuned, "base": base})
    result = _checks(df, agg, [{"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"}}])[0]
    c = result["comparisons"][0]
    assert c["unpaired_p"] < 0.05 and result["status"] == "inconclusive", (c, result)
    assert c["note"].startswith("the unpaired seed means would say holds (p ")
    assert "inconclusive here because the paired test counts the test examples' variance" in c["note"]
    assert "note:" in result["details"][0]


def test_monotonic_steps_are_paired(tmp_path):
    base = [1] * 50 + [0] * 50
    mid = [1] * 60 + [0] * 40
    top = [1] * 72 + [0] * 28
    df, agg = _experiment(tmp_path, {"g1": [base], "g2": [mid], "g4": [top]})
    agg["gamma"] = agg["variant"].str[1:].astype(int)
    agg.attrs["sweep_variables"] = ["gamma"]
    result = _checks(df, agg, [{"kind": "monotonic", "metric": "accuracy", "over": "gamma"}])[0]
    assert result["status"] == "holds", result["details"]
    assert all("exact McNemar" in c["method"] for c in result["comparisons"]) and len(result["comparisons"]) == 3


def test_chunked_resampling_gives_the_same_kind_of_answer(monkeypatch):
    import ftlab.reporting.paired as paired

    rng = np.random.default_rng(4)
    a, b = _side(rng.random((2, 300)) < 0.7), _side(rng.random((2, 300)) < 0.6)
    whole = compare_sides(a, b)
    monkeypatch.setattr(paired, "CELLS", 300 * 150)  # 14 chunks of 150 resamples (the last 50)
    chunked = compare_sides(a, b)
    assert chunked.effect == whole.effect and chunked.se == pytest.approx(whole.se, rel=0.1)
    assert chunked.low == pytest.approx(whole.low, abs=0.02) and compare_sides(a, b).low == chunked.low


def test_a_sign_only_decision_lost_to_pairing_says_why(tmp_path):
    # Two seeds a side that agree exactly: unpaired, "no spread over seeds" lets the sign decide
    # (+0.03 holds); paired over the 100 examples, 3 discordant pairs decide nothing.
    a, b = [1] * 63 + [0] * 37, [1] * 60 + [0] * 40
    df, agg = _experiment(tmp_path, {"tuned": [a, a], "base": [b, b]})
    result = _checks(df, agg, [{"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"}, "b": {"variant": "base"}}])[0]
    c = result["comparisons"][0]
    assert result["status"] == "inconclusive" and c["unpaired_p"] is None
    assert c["note"].startswith("the unpaired seed means would say holds (by the sign of the seed means, which do not vary)")


def test_summary_text_shows_method_effect_interval_raw_and_adjusted_p(tmp_path):
    from ftlab.reporting.summary import render_checks

    df, agg = _experiment(tmp_path, {"tuned": [A1], "base": [B1]})
    text = render_checks(_checks(df, agg, [{"kind": "compare", "metric": "accuracy", "a": {"variant": "tuned"},
                                            "b": {"variant": "base"}, "name": "tuned beats base"}]))
    assert text.splitlines()[0].startswith("checks (p-values adjusted by holm over the 1 comparisons")
    assert "  [holds] tuned beats base" in text
    assert ("variant=tuned > variant=base: +0.080 [+0.030, +0.140] p 0.00781 (adjusted 0.00781), "
            "exact McNemar (8 vs 0 discordant of 100 examples; interval: paired bootstrap); detectable at 80% power: 0.077") in text


def test_a_downsampled_side_is_paired_on_the_examples_both_were_scored_on():
    # seed 001: a preset scored on a 20% downsample (10 problems) against the untuned model's 50
    from ftlab.reporting.paired import shared

    keys = [("source", f"gsm8k:test:{i:02d}") for i in range(50)]
    rng = np.random.default_rng(0)
    full = Side(keys, rng.integers(0, 2, (1, 50)).astype(float), np.ones((1, 50)), [None] * 50)
    picked = [3, 7, 11, 19, 23, 29, 31, 37, 41, 47]
    sub = Side([keys[i] for i in picked], np.ones((1, 10)), np.ones((1, 10)), [None] * 10)
    a, b, note = shared(sub, full)
    assert a.keys == b.keys == [keys[i] for i in picked] and note == "on the 10 examples both were scored on (a: 10, b: 50)"
    assert b.num[0].tolist() == full.num[0, picked].tolist()  # the same problems, in the same order
    c = compare_sides(a, b)
    assert c.paired and c.n_examples == 10 and c.effect == 1.0 - full.num[0, picked].mean()
    assert shared(full, full)[2] == ""  # the same examples: no note
    other = Side([("source", f"other:{i}") for i in range(5)], np.ones((1, 5)), np.ones((1, 5)), [None] * 5)
    assert shared(other, full) == "the sides were scored on different examples"
