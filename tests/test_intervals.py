"""Issue 12: resampling intervals, their coverage in simulation, paired
comparisons, the competence trend, and permutations given as input."""

import itertools
import math

import numpy as np
import pytest
import torch

from prh.inference.permutation import block_permutations, calibrate_pair, null_distributions
from prh.inference.resampling import replicate_scores, replicate_se, resample_indices
from prh.inference.statistics import compare_pairs, competence_trend, score_intervals
from prh.scoring import aggregate
from prh.simulation import (SimulatedModel, SimulatedPopulation, default_population,
                            measure_coverage)
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import permuted_sweeps, sweep


def caches_of(data):
    return {k: LayerCache.from_features(v, device="cpu") for k, v in data.items()}


def test_population_draws_are_independent_reproducible_and_structured():
    pop = default_population()
    a, b, a2 = pop.draw(40, seed=1), pop.draw(40, seed=2), pop.draw(40, seed=1)
    assert a["a"].shape == (40, 4, 32) and a["b"].dtype == np.float32
    np.testing.assert_array_equal(a["a"], a2["a"])
    assert not np.allclose(a["a"], b["a"])
    s = caches_of(pop.draw(120, seed=3))
    S = sweep(s["a"], s["b"], "cka")
    # shared signal rises with depth: the last layer pair is the best
    assert np.unravel_index(np.argmax(S), S.shape) == (3, 3)
    with pytest.raises(ValueError, match="strength of 'x' must be in"):
        SimulatedPopulation((SimulatedModel("x", strength=1.5),))


def test_resample_indices_have_no_repeats_and_jackknife_leaves_each_sample_out_once():
    sets = resample_indices(50, "jackknife", 5, seed=0)
    assert len(sets) == 5 and all(len(s) == 40 for s in sets)
    left_out = np.concatenate([np.setdiff1d(np.arange(50), s) for s in sets])
    assert sorted(left_out.tolist()) == list(range(50))
    sub = resample_indices(50, "subsample", 7, seed=0)
    assert len(sub) == 7 and all(len(np.unique(s)) == 25 for s in sub)
    with pytest.raises(ValueError, match="unknown interval method 'bca'"):
        resample_indices(50, "bca", 5)
    # a scheme is named, not chosen per metric: "auto" is pair_replicates' choice
    with pytest.raises(ValueError, match="unknown interval method 'auto'; choose jackknife or subsample"):
        resample_indices(50, "auto", 5)
    with pytest.raises(TypeError, match="count"):
        resample_indices(50, "jackknife")  # the caller says how many groups


def test_jackknife_se_of_a_mean_is_the_textbook_one():
    x = np.random.default_rng(0).normal(size=60)
    sets = resample_indices(60, "jackknife", 60, seed=0)  # delete-one
    reps = np.array([x[s].mean() for s in sets])
    assert replicate_se("jackknife", reps, 60) == pytest.approx(x.std(ddof=1) / math.sqrt(60))
    # half-sampling with the rate correction: close to the same for a mean
    sub = resample_indices(60, "subsample", 400, seed=1)
    reps = np.array([x[s].mean() for s in sub])
    assert replicate_se("subsample", reps, 60, 30) == pytest.approx(x.std(ddof=1) / math.sqrt(60), rel=0.15)


def test_replicates_equal_scoring_the_subset_from_scratch_and_share_resamples():
    pop = default_population(n_models=3)
    st = caches_of(pop.draw(48, seed=0))
    sets = resample_indices(48, "jackknife", 4, seed=2)
    metrics = {"mutual_knn": {"topk": 4}, "cka": {}}
    reps = replicate_scores(st, [("m0", "m2"), ("m1", "m2")], metrics, sets,
                            aggregates=["max", "mean"])
    for i, idx in enumerate(sets):
        t = torch.from_numpy(idx)
        for x in ("m0", "m1"):
            for m, p in metrics.items():
                S = sweep(st[x].resample(t), st["m2"].resample(t), m, **p)
                assert reps[(x, "m2", "xy", m)]["mean"][i] == pytest.approx(aggregate(S, "mean"))


def test_interval_is_centred_on_the_score_and_names_its_method():
    st = caches_of(default_population().draw(64, seed=0))
    got = score_intervals(st["a"], st["b"], {"cka": {}, "mutual_knn": {"topk": 5}},
                          aggregates=["max", "mean"], n_resamples=8)
    for (order, metric), per in got.items():
        for how, row in per.items():
            assert row["low"] < row["score"] < row["high"]
            assert row["score"] == pytest.approx((row["low"] + row["high"]) / 2)
            assert row["se"] > 0 and row["method"] in ("jackknife", "subsample")
            S = sweep(st["a"], st["b"], metric, **({"topk": 5} if "knn" in metric else {}))
            assert row["score"] == pytest.approx(aggregate(S, how))



@pytest.mark.parametrize("df", [None, 1, 4, 19, 200])
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
def test_normal_interval_is_scipy_stats_norm_or_t(df, level):
    from scipy.stats import norm, t

    from prh.inference.resampling import normal_interval

    dist = norm if df is None else t(df)
    z = dist.ppf(0.5 + level / 2)
    for est, se in [(0.3, 0.1), (-0.02, 0.05), (0.7, 2.5), (1e-9, 1e-7)]:
        low, high, p = normal_interval(est, se, level, df)
        assert (low, high) == pytest.approx((est - z * se, est + z * se), rel=1e-12, abs=1e-15)
        assert p == pytest.approx(2 * dist.sf(abs(est) / se), rel=1e-12, abs=1e-300)
    assert normal_interval(0.4, 0.0, level, df) == (0.4, 0.4, 0.0)
    assert all(math.isnan(v) for v in normal_interval(0.4, math.nan, level, df))

def test_small_coverage_simulation_interval_widths_match_the_sampling_spread():
    # A small Monte Carlo (seconds): intervals' standard errors agree with the
    # spread of the score over independent sample sets, and most intervals cover.
    pop = default_population(dim=16, n_layers=3)
    rows = measure_coverage(pop, ("a", "b"), {"cka": {}, "mutual_knn": {"topk": 5}}, n=96,
                            reps=24, truth_reps=16, n_resamples=10, seed=1)
    for r in rows:
        assert 0.5 < r["mean_se"] / r["sd"] < 2.0, r
        assert r["coverage"] >= 0.75, r
        assert r["below"] + r["above"] == pytest.approx(1 - r["coverage"])


def test_paired_difference_is_tighter_than_separate_intervals_and_detects_a_real_gap():
    pop = SimulatedPopulation((SimulatedModel("strong", 3, 16, 0.8),
                               SimulatedModel("weak", 3, 16, 0.6),
                               SimulatedModel("c", 3, 16, 0.7)), clusters=5, seed=0)
    st = caches_of(pop.draw(96, seed=0))
    rows = compare_pairs(st, [(("strong", "c"), ("weak", "c"))], {"cka": {}}, n_resamples=10)
    (row,) = rows
    assert row["difference"] == pytest.approx(row["score_a"] - row["score_b"])
    assert row["difference"] > 0 and row["p_value"] < 0.05 and row["low"] > 0
    # the paired se is that of the difference of both pairs re-scored on the
    # same resamples: it holds their covariance, which separate intervals drop
    sets = resample_indices(96, "jackknife", 10, seed=0)
    reps = replicate_scores(st, [("strong", "c"), ("weak", "c")], {"cka": {}}, sets)
    ra, rb = reps[("strong", "c", "xy", "cka")]["max"], reps[("weak", "c", "xy", "cka")]["max"]
    assert row["se"] == pytest.approx(replicate_se("jackknife", ra - rb, 96))
    se_a, se_b = replicate_se("jackknife", ra, 96), replicate_se("jackknife", rb, 96)
    cov = 9 / 10 * np.sum((ra - ra.mean()) * (rb - rb.mean()))
    assert row["se"] ** 2 == pytest.approx(se_a**2 + se_b**2 - 2 * cov)
    assert abs(cov) > 1e-3 * se_a * se_b
    # a model against itself under another name: difference 0, se 0
    st["copy"] = st["strong"]
    (same,) = compare_pairs(st, [(("strong", "c"), ("copy", "c"))], {"cka": {}}, n_resamples=5)
    assert same["difference"] == 0 and same["se"] == 0 and same["p_value"] == 1.0


def test_paired_interval_covers_the_mean_difference_in_most_draws():
    # two equally strong models against a third: the interval of
    # the difference covers the mean difference at N in most of 16 draws
    pop = SimulatedPopulation((SimulatedModel("a", 2, 12, 0.6), SimulatedModel("b", 2, 12, 0.6),
                               SimulatedModel("c", 2, 12, 0.6)), seed=3)
    truth_gap = np.mean([
        aggregate(sweep((s := caches_of(pop.draw(64, seed=500 + r)))["a"], s["c"], "cka"), "max")
        - aggregate(sweep(s["b"], s["c"], "cka"), "max") for r in range(20)])
    covered = 0
    for r in range(16):
        st = caches_of(pop.draw(64, seed=r))
        (row,) = compare_pairs(st, [(("a", "c"), ("b", "c"))], {"cka": {}}, n_resamples=8, seed=r)
        covered += row["low"] <= truth_gap <= row["high"]
    assert covered >= 12


def test_competence_trend_finds_a_planted_trend_and_pools_partners():
    strengths = [0.1, 0.4, 0.7, 0.95]
    pop = SimulatedPopulation(tuple(SimulatedModel(f"v{i}", 3, 16, s) for i, s in enumerate(strengths))
                              + (SimulatedModel("t0", 3, 16, 0.7), SimulatedModel("t1", 3, 16, 0.5)),
                              clusters=5, seed=1)
    st = caches_of(pop.draw(96, seed=0))
    models = [f"v{i}" for i in range(4)]
    rows = competence_trend(st, models, strengths, ["t0", "t1"], {"cka": {}}, n_resamples=8)
    by = {(r["partner"], r["statistic"]): r for r in rows}
    assert set(by) == {(p, s) for p in ("t0", "t1", "pooled") for s in ("spearman", "slope")}
    from scipy.stats import spearmanr

    for p in ("t0", "t1"):
        s = [aggregate(sweep(st[m], st[p], "cka"), "max") for m in models]
        rho = by[(p, "spearman")]
        assert rho["estimate"] == pytest.approx(spearmanr(strengths, s).statistic)
        # exact permutation of the competence labels over the 4! orderings
        perm_rhos = [spearmanr([strengths[i] for i in o], s).statistic
                     for o in itertools.permutations(range(4))]
        assert rho["p_models"] == pytest.approx(np.mean(np.abs(perm_rhos) >= abs(rho["estimate"]) - 1e-12))
        assert by[(p, "slope")]["estimate"] == pytest.approx(np.polyfit(strengths, s, 1)[0])
    pooled = by[("pooled", "slope")]
    assert pooled["estimate"] == pytest.approx((by[("t0", "slope")]["estimate"]
                                                + by[("t1", "slope")]["estimate"]) / 2)
    # the planted trend is found: alignment rises with the shared signal
    assert pooled["estimate"] > 0 and pooled["low"] > 0 and pooled["p_value"] < 0.05
    assert by[("pooled", "spearman")]["estimate"] >= 0.6
    with pytest.raises(ValueError, match="a trend needs >= 3 models"):
        competence_trend(st, models[:2], strengths[:2], ["t0"], {"cka": {}})
    with pytest.raises(ValueError, match="competence is the same"):
        competence_trend(st, models, [1, 1, 1, 1], ["t0"], {"cka": {}})


def test_explicit_permutations_reproduce_the_default_and_return_matrices():
    from prh.inference.permutation import sample_permutations

    st = caches_of(default_population(dim=12, n_layers=2).draw(30, seed=0))
    metrics = {"cka": {}, "mutual_knn": {"topk": 4}}
    drawn = null_distributions(st["a"], st["b"], metrics, n_permutations=20, seed=4)
    given, mats = null_distributions(st["a"], st["b"], metrics, seed=999,
                                     permutations=sample_permutations(30, 20, 4),
                                     return_matrices=True)
    for key in drawn:
        np.testing.assert_array_equal(drawn[key]["max"], given[key]["max"])
        assert mats[key].shape == (20, 2, 2)
        np.testing.assert_allclose(mats[key].max(axis=(1, 2)), given[key]["max"])
    fast = permuted_sweeps(st["a"], st["b"], "cka", sample_permutations(30, 20, 4))
    np.testing.assert_allclose(mats[("xy", "cka")], fast)
    out = calibrate_pair(st["a"], st["b"], {"cka": {}}, n_permutations=20,
                         permutations=lambda n, k, seed: sample_permutations(n, 25, seed))
    row = out[("xy", "cka")][1]["max"]
    assert row["n_permutations"] == 25 and row["null_matrices"].shape == (25, 2, 2)
    with pytest.raises(ValueError, match="row 0 is not a reordering"):
        null_distributions(st["a"], st["b"], metrics, permutations=np.zeros((20, 30), int))
    with pytest.raises(ValueError, match=r"shape \(K, 30\)"):
        null_distributions(st["a"], st["b"], metrics, permutations=np.zeros((20, 29), int))
    with pytest.raises(ValueError, match="number of permutations K=5 is out of range"):
        null_distributions(st["a"], st["b"], metrics, permutations=sample_permutations(30, 5, 0))


def test_block_permutations_move_whole_blocks_or_stay_inside_them():
    blocks = np.repeat(np.arange(6), 3)          # 6 images x 3 captions
    perms = block_permutations(blocks)(18, 30, 0)
    for p in perms:
        moved = blocks[p]
        # each block lands on one whole block, inner order kept
        assert all(len(set(moved[blocks == b])) == 1 for b in range(6))
        assert sorted(p.tolist()) == list(range(18))
    assert any((blocks[p] != blocks).any() for p in perms)
    inside = block_permutations(blocks, within=True)(18, 30, 0)
    assert all((blocks[p] == blocks).all() for p in inside)
    assert any((p != np.arange(18)).any() for p in inside)
    uneven = block_permutations([0, 0, 1, 2, 2, 3])(6, 20, 1)
    for p in uneven:  # the singletons 1 and 3 swap only with each other
        assert set(p[[2, 5]]) == {2, 5}
    with pytest.raises(ValueError, match="blocks label 18 samples but the models have 20"):
        block_permutations(blocks)(20, 20, 0)


def test_auto_picks_each_metrics_measured_scheme():
    from prh.inference.resampling import INTERVAL_SCHEMES, scheme_for
    from prh.metrics import list_metrics

    assert set(INTERVAL_SCHEMES) == set(list_metrics())
    assert scheme_for("cka") == ("jackknife", 20)
    assert scheme_for("mutual_knn") == ("jackknife", 5)
    assert scheme_for("cycle_knn", n_resamples=9) == ("jackknife", 9)
    assert scheme_for("cycle_knn", "subsample") == ("subsample", 50)
    st = caches_of(default_population(dim=8, n_layers=2).draw(40, seed=0))
    got = score_intervals(st["a"], st["b"], {"cka": {}, "mutual_knn": {"topk": 3},
                                             "cycle_knn": {"topk": 3}})
    assert {m: (r["max"]["method"], r["max"]["n_resamples"]) for (_, m), r in got.items()} == {
        "cka": ("jackknife", 20), "mutual_knn": ("jackknife", 5), "cycle_knn": ("jackknife", 5)}


def test_trend_p_models_is_monte_carlo_beyond_eight_models():
    from prh.inference.resampling import PairReplicates
    from prh.inference.statistics import trend_rows

    m = 10
    models = [f"v{i}" for i in range(m)]
    # scores rise exactly with competence: the best ordering of 10 models
    full = {(v, "t", "xy", "cka"): {"max": 0.1 * i} for i, v in enumerate(models)}
    reps = {k: {"max": np.full(5, v["max"])} for k, v in full.items()}
    rep = PairReplicates(n=50, full=full, reps=reps, schemes={"cka": ("jackknife", 5, 40.0)})
    rows = trend_rows(rep, models, np.arange(m, dtype=float), ["t"])
    rho = next(r for r in rows if r["statistic"] == "spearman" and r["partner"] == "t")
    assert rho["estimate"] == pytest.approx(1.0)
    # only the identity (and its reverse, 2 in 10!) reach |rho| = 1: p near 1/10,000
    assert 1e-4 <= rho["p_models"] < 1e-3
