"""prh.sweep.subsets: a subset's kNN lists read from the full sample's wider
lists are the lists the dense path gives the same subset (it gathers the full
Gram matrix and ranks again), ties included; so are the statistics job's
replicates and the sample-size curve scored on features caches, which read
their subsets' lists that way."""

import numpy as np
import pytest
import torch

import prh.sweep.subsets as subsets
from prh.inference.permutation import sample_size_curve, sample_size_curves
from prh.inference.resampling import pair_replicates, resample_indices
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import sweep
from prh.sweep.representation import FeatureCache
from test_sweep_representation import CLOSE, TOL, agree, models

N, K, WIDE = 300, 5, 15

METRICS = {"mutual_knn": {"topk": K}, "cycle_knn": {"topk": K}, "lcs_knn": {"topk": K},
           "cknna": {"topk": K}, "cka": {}, "unbiased_cka": {}}


def caches(xs, ys):
    dense = [LayerCache.from_features(v, device="cpu") for v in (xs, ys)]
    feats = [FeatureCache.from_features(v, device="cpu", block_rows=32) for v in (xs, ys)]
    for f in feats:
        f.search_neighbours([K, WIDE])  # what a layer cache with subset_topk holds
    return dense, feats


@pytest.fixture(scope="module")
def plain():
    return caches(*models(np.random.default_rng(0), N))


@pytest.fixture(scope="module")
def tied():
    # a third of the samples twice: their copies tie in every other row's ranking
    xs, ys = models(np.random.default_rng(3), N)
    return caches(*([np.concatenate([x[:200], x[:100]]) for x in v] for v in (xs, ys)))


@pytest.fixture
def reranked(monkeypatch):
    """How many rows were ranked again rather than read from the wide lists."""
    count = [0]
    original = subsets._ranked_again

    def spy(sub, layer, rows, k):
        count[0] += len(rows)
        return original(sub, layer, rows, k)
    monkeypatch.setattr(subsets, "_ranked_again", spy)
    return count


def same_lists(f, d, k=K):
    idx, vals = f.knn(k)
    want_idx, want_vals = d.knn(k)
    assert torch.equal(idx, want_idx)
    assert torch.equal(vals, want_vals)


@pytest.mark.parametrize("data", ["plain", "tied"])
def test_narrow_lists_read_from_the_wide_search_are_the_dense_lists(data, request):
    (dx, dy), (fx, fy) = request.getfixturevalue(data)
    same_lists(fx, dx)
    same_lists(fy, dy)


@pytest.mark.parametrize("data", ["plain", "tied"])
@pytest.mark.parametrize("method,count", [("jackknife", 5), ("jackknife", 20), ("subsample", 3)])
def test_subset_lists_are_the_dense_subsets_lists(data, method, count, request, reranked):
    (dx, _), (fx, _) = request.getfixturevalue(data)
    for idx in resample_indices(N, method, count, seed=1):
        idx = torch.from_numpy(idx)
        same_lists(fx.resample(idx), dx.resample(idx))
    if data == "plain" and method == "jackknife":
        # read, not searched: at most a few rows of the 3 layers x N' each
        assert reranked[0] < 0.02 * count * 3 * N
    if data == "tied":
        assert reranked[0] > 0  # ties are ranked again, as the dense path ranks them


def test_lists_read_in_chunks_of_rows_are_the_same(plain, monkeypatch):
    (dx, _), (fx, _) = plain
    monkeypatch.setattr(subsets, "_CHUNK_ENTRIES", 7 * WIDE)  # 7 rows a chunk
    idx = torch.from_numpy(resample_indices(N, "jackknife", 5, seed=3)[1])
    same_lists(fx.resample(idx), dx.resample(idx))


def test_a_permuted_full_sample_reads_every_row(plain, reranked):
    # the sample-size curve's largest subset: all of N in another order
    (dx, _), (fx, _) = plain
    order = torch.from_numpy(np.random.default_rng(5).permutation(N))
    same_lists(fx.resample(order), dx.resample(order))
    assert reranked[0] == 0


def test_a_resample_with_repeats_searches_its_own_lists(tied):
    # bootstrap copies tie in every ranking and must never be neighbours of
    # each other: such a resample searches, for several k at once too
    (dx, _), (fx, _) = tied
    idx = torch.from_numpy(np.random.default_rng(6).integers(0, N, size=N))
    f, d = fx.resample(idx), dx.resample(idx)
    f.search_neighbours([K, WIDE])
    for k in (K, WIDE):
        same_lists(f, d, k)


def test_without_wide_lists_subsets_are_searched(plain, reranked):
    (dx, _), _ = plain
    xs, _ = models(np.random.default_rng(0), N)
    f = FeatureCache.from_features(xs, device="cpu", block_rows=32)
    f.search_neighbours([K])
    idx = torch.from_numpy(resample_indices(N, "jackknife", 5, seed=1)[0])
    same_lists(f.resample(idx), dx.resample(idx))
    assert reranked[0] == 0  # searched whole, as before


def test_statistics_replicates_agree_with_dense(plain):
    (dx, dy), (fx, fy) = plain
    # the jackknife of the kNN metrics (5 groups) for every metric: the
    # CKAs' 20 groups would score the same way, four times as long
    kw = {"seed": 2, "aggregates": ["max", "mean"], "method": "jackknife", "n_resamples": 5}
    got = pair_replicates({"x": fx, "y": fy}, [("x", "y")], METRICS, **kw)
    want = pair_replicates({"x": dx, "y": dy}, [("x", "y")], METRICS, **kw)
    assert got.schemes == want.schemes
    assert got.full.keys() == want.full.keys()
    for key in want.full:
        for how in ("max", "mean"):
            a = np.append(got.reps[key][how], got.full[key][how])
            b = np.append(want.reps[key][how], want.full[key][how])
            if key[3] in CLOSE:
                np.testing.assert_allclose(a, b, atol=TOL, rtol=0, err_msg=str(key))
            else:
                np.testing.assert_array_equal(a, b, err_msg=str(key))


def test_sample_size_curves_agree_with_dense_and_with_one_metric_at_a_time(plain):
    (dx, dy), (fx, fy) = plain
    sizes = [60, 150, N]
    kw = {"n_permutations": 20, "seed": 4}
    got = sample_size_curves(fx, fy, METRICS, sizes, **kw)
    want = sample_size_curves(dx, dy, METRICS, sizes, **kw)
    for metric in METRICS:
        alone = sample_size_curve(dx, dy, metric, sizes, **kw, **METRICS[metric])
        assert want[metric] == alone, metric
        for g, w in zip(got[metric], want[metric]):
            assert g["n"] == w["n"]
            for field in ("score", "null_mean", "tau"):
                if metric in CLOSE:
                    assert g[field] == pytest.approx(w[field], abs=TOL), (metric, field)
                else:
                    assert g[field] == w[field], (metric, field)
            if metric not in CLOSE:
                assert g["p_value"] == w["p_value"]


def test_scores_on_subsets_agree(plain):
    (dx, dy), (fx, fy) = plain
    idx = torch.from_numpy(resample_indices(N, "jackknife", 5, seed=7)[2])
    for metric, p in METRICS.items():
        agree(metric, sweep(fx.resample(idx), fy.resample(idx), metric, **p),
              sweep(dx.resample(idx), dy.resample(idx), metric, **p))
