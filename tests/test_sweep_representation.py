"""The features representation (prh.sweep.representation): every metric with
a feature-space form scores what the dense representation scores (the kNN
family, CKNNA, SVCCA, PWCCA and Procrustes exactly, CKA and RV to 1e-6),
plain, permuted and resampled, on ordinary and degenerate layers; N x N
metrics are refused; the features layer cache round-trips."""

import numpy as np
import pytest
import torch

from prh.config.representation import AUTO_DENSE_MAX_N
from prh.formats.layer_cache import load_layer_cache, save_layer_cache
from prh.metrics import get_metric, list_metrics
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import layer_scores, permuted_sweeps, sweep
from prh.sweep.representation import FeatureCache

#: metrics whose features sweep is the dense one on the same lists and layers
EXACT = {"mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "jaccard_knn", "cknna",
         "svcca", "pwcca", "procrustes", "procrustes_angular"}
#: feature-space forms of sums the dense path takes over float32 Gram entries
CLOSE = {"cka", "unbiased_cka", "rv"}
TOL = 1e-6


def feature_metrics():
    """(metric, params) of every metric the features representation scores."""
    out = []
    for m in list_metrics():
        if get_metric(m).needs_n_by_n():
            continue
        p = {"cca_dim": 3} if m == "svcca" else {"pca_dim": 3} if m == "pwcca" else {}
        if "topk" in get_metric(m).defaults:
            p["topk"] = 5
        out.append((m, p))
        if "distance" in get_metric(m).defaults:
            out.append((m, {**p, "distance": "euclidean"}))
    return out


CASES = feature_metrics()
IDS = [m + "".join(f"-{v}" for k, v in p.items() if k == "distance") for m, p in CASES]


def models(rng, n, widths_x=(6, 9, 6), widths_y=(5, 7)):
    """Two models sharing a latent, heavy-tailed (the clamp bites)."""
    latent = rng.normal(size=(n, 4))

    def layers(widths):
        return [(latent @ rng.normal(size=(4, w)) + 0.7 * rng.standard_t(3, size=(n, w)))
                .astype(np.float32) for w in widths]
    return layers(widths_x), layers(widths_y)


def both(xs, ys, block_rows=None):
    """Dense and features caches of the same two models."""
    dense = [LayerCache.from_features(v, device="cpu") for v in (xs, ys)]
    feats = [FeatureCache.from_features(v, device="cpu", block_rows=block_rows) for v in (xs, ys)]
    return dense, feats


def agree(metric, got, want):
    assert got.shape == want.shape
    if metric in EXACT:
        np.testing.assert_array_equal(got, want, err_msg=metric)
    else:
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=metric)


@pytest.fixture(scope="module")
def small():
    xs, ys = models(np.random.default_rng(0), 300)
    return both(xs, ys, block_rows=32)


@pytest.mark.parametrize("metric,params", CASES, ids=IDS)
def test_features_score_what_dense_scores(small, metric, params):
    (dx, dy), (fx, fy) = small
    agree(metric, sweep(fx, fy, metric, **params), sweep(dx, dy, metric, **params))
    if not get_metric(metric).symmetric:
        agree(metric, sweep(fy, fx, metric, **params), sweep(dy, dx, metric, **params))


@pytest.mark.parametrize("metric,params", CASES, ids=IDS)
def test_permuted_sweeps_agree_for_the_same_permutations(small, metric, params):
    (dx, dy), (fx, fy) = small
    perms = torch.stack([torch.randperm(300, generator=torch.Generator().manual_seed(i))
                         for i in range(3)])
    agree(metric, permuted_sweeps(fx, fy, metric, perms, **params),
          permuted_sweeps(dx, dy, metric, perms, **params))


@pytest.mark.parametrize("metric,params", CASES, ids=IDS)
def test_resamples_with_repeats_agree(small, metric, params):
    # what the statistics job and the sample-size curve score
    (dx, dy), (fx, fy) = small
    idx = torch.from_numpy(np.random.default_rng(1).integers(0, 300, size=250))
    agree(metric, sweep(fx.resample(idx), fy.resample(idx), metric, **params),
          sweep(dx.resample(idx), dy.resample(idx), metric, **params))


@pytest.mark.parametrize("n", [40, AUTO_DENSE_MAX_N - 1, AUTO_DENSE_MAX_N + 9])
def test_both_sides_of_the_auto_switch(n):
    # one narrow layer each: the dense side stays affordable at the crossover
    xs, ys = models(np.random.default_rng(n), n, (8,), (6,))
    (dx, dy), (fx, fy) = both(xs, ys)
    for metric in ("mutual_knn", "cycle_knn", "jaccard_knn", "cka", "unbiased_cka", "cknna",
                   "svcca", "procrustes"):
        p = {"topk": 10} if "knn" in metric or metric == "cknna" else \
            {"cca_dim": 4} if metric == "svcca" else {}
        agree(metric, sweep(fx, fy, metric, **p), sweep(dx, dy, metric, **p))


def degenerate_model(rng, n):
    """A constant layer, a layer of nearly parallel rows (mean cosine
    ~0.9999999), rows scaled by 1e20 and by 1e-20 (the normalisation must
    take them to the same unit rows), and duplicated samples."""
    base = 3.0 * rng.normal(size=16)
    parallel = base + 3e-4 * np.linalg.norm(base) * rng.normal(size=(n, 16)) / 4.0
    ordinary = rng.normal(size=(n, 16))
    layers = [np.tile(base, (n, 1)), parallel, ordinary * 1e20, ordinary * 1e-20,
              rng.normal(size=(n, 16))]
    out = np.stack(layers, axis=1).astype(np.float32)
    out[10:14] = out[3]  # duplicated samples: ties in every layer
    return out


@pytest.mark.parametrize("metric,params", CASES, ids=IDS)
def test_degenerate_layers_agree(metric, params):
    rng = np.random.default_rng(2)
    X, Y = degenerate_model(rng, 120), degenerate_model(rng, 120)
    want = layer_scores(X, Y, metric, device="cpu", **params)
    got = layer_scores(X, Y, metric, device="cpu", representation="features", **params)
    assert np.isnan(got[0]).all() and np.isnan(got[:, 0]).all()  # the constant layer
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    keep = ~np.isnan(want)
    agree(metric, got[keep], want[keep])


@pytest.mark.parametrize("metric", [m for m in list_metrics() if get_metric(m).needs_n_by_n()])
def test_n_by_n_metrics_are_refused_in_one_line(small, metric):
    _, (fx, fy) = small
    with pytest.raises(ValueError, match=rf"^{metric} needs N x N \(.+\), which the features "
                                         "representation does not hold: drop the metric or use "
                                         "the dense representation$"):
        sweep(fx, fy, metric)
    with pytest.raises(ValueError, match="RBF kernel"):
        sweep(fx, fy, "cka", kernel="rbf")


def test_mixed_representations_are_refused(small):
    (dx, _), (_, fy) = small
    with pytest.raises(ValueError, match="X is in the dense representation but Y in the "
                                         "features one"):
        sweep(dx, fy, "cka")


def test_layer_cache_round_trip(tmp_path, small):
    (dx, dy), (fx, fy) = small
    px, py = tmp_path / "x.h5", tmp_path / "y.h5"
    save_layer_cache(fx, px, topk=[5], cca_dims=[3], attrs={"q": 0.95}, sample_ids=["a"] * 300)
    save_layer_cache(fy, py, topk=[5], cca_dims=[3])
    lx, ly = load_layer_cache(px), load_layer_cache(py)
    assert isinstance(lx, FeatureCache) and lx.widths == fx.widths
    for metric, params in CASES:
        agree(metric, sweep(lx, ly, metric, **params), sweep(dx, dy, metric, **params))
    # no N x N dataset, and the layers themselves: ~4 N sum(D) bytes plus lists
    import h5py
    with h5py.File(px) as f:
        assert "gram" not in f and f.attrs["representation"] == "features"
        held = sum(f[name].nbytes for name in ("mean_dots", "row_norms"))
        held += sum(ds.nbytes for ds in f["layers"].values())
    assert held == 300 * (4 * sum(fx.widths) + 2 * 8 * 3)


def test_the_features_cache_holds_no_n_by_n_tensor(small):
    _, (fx, fy) = small
    for metric, params in CASES:
        sweep(fx, fy, metric, **params)
    n = fx.n
    for cache in (fx, fy):
        for value in cache._cache.values():
            for t in (value if isinstance(value, (tuple, list)) else [value]):
                if isinstance(t, torch.Tensor):
                    assert t.numel() < n * n, t.shape


def test_the_workflow_steps_score_features_as_dense(tmp_path):
    # layer_cache writes each representation; pair_scores loads whichever it
    # finds and scores, calibrated, the same numbers
    from file_factories import write_features
    from prh.formats.pair import read_pair
    from prh.steps import layer_cache, pair_scores

    xs, ys = models(np.random.default_rng(7), 200, (6, 6), (5, 5, 5))
    metrics = {"mutual_knn": {"topk": 5}, "cknna": {"topk": 5}, "cka": {}, "unbiased_cka": {},
               "svcca": {"cca_dim": 3}, "cycle_knn": {"topk": 5}}
    cal = {"n_permutations": 20, "alpha": 0.05, "seed": 0, "aggregates": ["max"],
           "blocks": None, "metrics": ["mutual_knn", "cknna", "cka"]}
    pairs = {}
    for rep in ("dense", "features"):
        paths = []
        for name, layers in (("x", xs), ("y", ys)):
            feats = write_features(tmp_path / f"{name}.h5", layers)
            paths.append(tmp_path / f"{name}.{rep}.cache.h5")
            layer_cache.run(feats, paths[-1], q=0.95, exact=False, normalize=True, topk=[5],
                            cca_dims=[3], layers=False, device="cpu", representation=rep)
        assert isinstance(load_layer_cache(paths[0]), FeatureCache) == (rep == "features")
        out = tmp_path / f"pair.{rep}.h5"
        pair_scores.run(*paths, out, metrics=metrics, model_x="x", model_y="y", device="cpu",
                        calibration=cal)
        pairs[rep] = read_pair(out)
    dense, feats = pairs["dense"], pairs["features"]
    for order in ("xy", "yx"):
        assert dense[order].keys() == feats[order].keys()
        for metric, want in dense[order].items():
            agree(metric, feats[order][metric], want)
    assert len(dense["calibration"]) == 4  # cknna in both orders
    for key, rows in dense["calibration"].items():
        for how, row in rows.items():
            got = feats["calibration"][key][how]
            metric = key[1]
            agree(metric, np.asarray(got["null"]), np.asarray(row["null"]))
            assert got["p_value"] == row["p_value"]
