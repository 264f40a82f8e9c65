"""Permutation nulls, calibrated scores and BH adjustment (prh.inference.permutation),
and the public import path prh.calibration."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from prh.inference.permutation import (calibrate, calibrated_scores, permutation_null,
                                       sample_size_curve)
from prh.metrics import list_metrics
from prh.scoring import aggregate, benjamini_hochberg
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import layer_scores, permuted_sweeps, sweep


def params_for(metric):
    if metric == "svcca":
        return {"cca_dim": 3}
    if "knn" in metric or metric == "cknna":
        return {"topk": 4}
    return {}


def random_model(rng, n, layers=2, d=6):
    return rng.normal(size=(n, layers, d)).astype(np.float32)


def planted_pair(rng, n=60):
    latent = rng.normal(size=(n, 3))
    x = np.stack([latent @ rng.normal(size=(3, 8)) + 0.3 * rng.normal(size=(n, 8)) for _ in range(2)], 1)
    y = np.stack([latent @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(n, 5)) for _ in range(3)], 1)
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("metric", list_metrics())
def test_permutation_path_equals_recomputing_from_scratch(metric):
    rng = np.random.default_rng(0)
    X, Y = planted_pair(rng, n=30)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    perms = np.stack([rng.permutation(30) for _ in range(3)])
    fast = permuted_sweeps(sx, sy, metric, perms, **params_for(metric))
    for perm, got in zip(perms, fast):
        slow = layer_scores(X, Y[perm], metric, device="cpu", **params_for(metric))
        np.testing.assert_allclose(got, slow, atol=1e-6)  # float32 Grams round per order


def test_p_values_on_independent_features_are_uniform():
    # 80 fixed seeds, each a full permutation test on independent random models.
    p_knn, p_cka = [], []
    for seed in range(80):
        rng = np.random.default_rng(1000 + seed)
        sx = LayerCache.from_features(random_model(rng, 40), device="cpu")
        sy = LayerCache.from_features(random_model(rng, 40), device="cpu")
        for metric, sink in (("mutual_knn", p_knn), ("cka", p_cka)):
            _, cal = calibrated_scores(sx, sy, metric, n_permutations=39, seed=seed,
                                       **params_for(metric))
            sink.append(cal["max"]["p_value"])
    for p in (p_knn, p_cka):
        # p-values live on the grid 1/40 .. 1; against U(0, 1) the KS distance of
        # 80 draws exceeds 0.22 with probability below 1e-3 (plus the grid's 1/40).
        assert stats.kstest(p, "uniform").statistic < 0.22
        assert 0.35 < np.mean(p) < 0.65


def test_planted_structure_gives_minimal_p_and_positive_calibrated_score():
    rng = np.random.default_rng(2)
    X, Y = planted_pair(rng)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    for metric in ("mutual_knn", "cka", "cknna", "lcs_knn"):
        S, cal = calibrated_scores(sx, sy, metric, n_permutations=49,
                                   aggregates=("max", "mean", "row_max_mean", "matching"),
                                   **params_for(metric))
        for how, row in cal.items():
            assert row["p_value"] == pytest.approx(1 / 50), (metric, how)
            assert row["calibrated"] > 0.1, (metric, how)
            assert row["score"] == pytest.approx(aggregate(S, how))
            assert row["null_mean"] < row["score"]


def test_calibrate_by_hand():
    null = np.arange(1, 21) / 100.0  # 0.01 .. 0.20, K = 20
    cal = calibrate(0.15, null, alpha=0.1)
    # Null values >= 0.15: 0.15 .. 0.20, six of them.
    assert cal.p_value == pytest.approx(7 / 21)
    # ceil(0.9 * 21) = 19th smallest of the 21 values {0.01..0.20, 0.15}: 0.18.
    assert cal.tau == pytest.approx(0.18)
    assert cal.calibrated == 0.0
    high = calibrate(0.6, null, alpha=0.1)
    assert high.p_value == pytest.approx(1 / 21)
    assert high.tau == pytest.approx(0.19)
    assert high.calibrated == pytest.approx((0.6 - 0.19) / (1 - 0.19))
    assert calibrate(4.0, null * 10, alpha=0.1, s_max=5.0).calibrated == pytest.approx((4 - 1.9) / (5 - 1.9))
    assert high.null_mean == pytest.approx(0.105)


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20, np.nan]
    # Sorted 0.01, 0.03, 0.04, 0.20 (m = 4): 0.04, 0.06, 0.0533, 0.20; running
    # minimum from the top: 0.04, 0.0533, 0.0533, 0.20.
    adj = benjamini_hochberg(p)
    np.testing.assert_allclose(adj[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert math.isnan(adj[4])
    assert benjamini_hochberg([0.9, 0.95]).tolist() == [0.95, 0.95]


def test_a_resample_with_copies_never_makes_a_copy_its_own_neighbour():
    rng = np.random.default_rng(3)
    X, _ = planted_pair(rng)
    sx = LayerCache.from_features(X, device="cpu")
    idx = torch.tensor([0, 0, 1, 2, 2, 2] + list(range(3, 30)))
    r = sx.resample(idx)
    knn = r.knn(4)[0]
    source = idx[knn]
    assert not (source == idx[None, :, None]).any()  # never a copy of itself


def test_bad_input_is_refused_with_clear_messages():
    rng = np.random.default_rng(4)
    sx = LayerCache.from_features(random_model(rng, 12), device="cpu")
    sy = LayerCache.from_features(random_model(rng, 12), device="cpu")
    with pytest.raises(ValueError, match="n_permutations=10 is out of range.*>= 20"):
        permutation_null(sx, sy, "cka", n_permutations=10)
    with pytest.raises(ValueError, match=r"alpha=1.5 is out of range: it must be in \(0, 1\)"):
        calibrated_scores(sx, sy, "cka", alpha=1.5, n_permutations=20)
    with pytest.raises(ValueError, match="alpha=0.0 is out of range"):
        calibrate(0.5, np.zeros(30), alpha=0.0)
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        aggregate(np.zeros((2, 2)), "median")
    with pytest.raises(ValueError, match="too large for a resample with [0-9]+ distinct samples"):
        sweep(sx.resample(torch.tensor([0, 1, 2] * 4)), sy, "mutual_knn", topk=10)


def test_sample_size_curve_uses_nested_subsets():
    rng = np.random.default_rng(5)
    X, Y = planted_pair(rng, n=60)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    rows = sample_size_curve(sx, sy, "mutual_knn", [20, 40, 60], n_permutations=20, topk=4)
    assert [r["n"] for r in rows] == [20, 40, 60]
    full = aggregate(sweep(sx, sy, "mutual_knn", topk=4), "max")
    assert rows[-1]["score"] == pytest.approx(full)  # the last subset is every sample
    order = np.random.default_rng(0).permutation(60)
    sub = layer_scores(X[order[:20]], Y[order[:20]], "mutual_knn", device="cpu", topk=4)
    # Subsets reuse the full data's clamp and normalisation, then the same metric.
    sub_sweep = sweep(sx.resample(torch.from_numpy(order[:20])), sy.resample(torch.from_numpy(order[:20])),
                      "mutual_knn", topk=4)
    assert rows[0]["score"] == pytest.approx(aggregate(sub_sweep, "max"))
    assert sub.shape == sub_sweep.shape


def test_one_pass_over_several_metrics_equals_metric_by_metric():
    from prh.inference.permutation import calibrate_pair

    rng = np.random.default_rng(6)
    X, Y = planted_pair(rng, n=40)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    metrics = {"cka": {}, "unbiased_cka": {}, "cycle_knn": {"topk": 4}}
    both = calibrate_pair(sx, sy, metrics, n_permutations=20, seed=3)
    assert set(both) == {("xy", "cka"), ("xy", "unbiased_cka"), ("xy", "cycle_knn"), ("yx", "cycle_knn")}
    for metric, p in metrics.items():
        S, rows = calibrated_scores(sx, sy, metric, n_permutations=20, seed=3, **p)
        np.testing.assert_array_equal(both[("xy", metric)][0], S)
        for key in ("p_value", "tau", "null_mean", "null_std"):
            assert both[("xy", metric)][1]["max"][key] == pytest.approx(rows["max"][key], abs=1e-9)
    S_yx, rows_yx = calibrated_scores(sy, sx, "cycle_knn", n_permutations=20, seed=3, topk=4)
    np.testing.assert_array_equal(both[("yx", "cycle_knn")][0], S_yx)
    assert both[("yx", "cycle_knn")][1]["max"]["score"] == rows_yx["max"]["score"]


def test_prh_calibration_is_the_public_path_to_the_inference_modules():
    import prh.calibration as calibration
    from prh.inference import permutation, resampling, statistics

    for name in calibration.__all__:
        assert any(vars(m).get(name, None) is getattr(calibration, name)
                   for m in (permutation, resampling, statistics)), name
    public = {name for m in (permutation, resampling, statistics) for name, value in vars(m).items()
              if not name.startswith("_") and getattr(value, "__module__", None) == m.__name__}
    assert public <= set(calibration.__all__)  # every function and class defined there
