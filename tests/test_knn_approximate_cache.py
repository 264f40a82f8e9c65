"""alignment.knn: approximate: the config's refusals, the features
representation's approximate lists (recall recorded, scores close to exact,
equal when every cell is scanned), resamples, the layer cache file and the
step's log."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch

from prh.config import Config, ConfigError
from prh.formats.layer_cache import load_layer_cache, save_layer_cache
from prh.sweep import approximate
from prh.sweep.dispatch import sweep
from prh.sweep.representation import FeatureCache

N = 3000


# -- config ----------------------------------------------------------------------

def test_default_and_exact_runs_keep_their_layer_cache_params(tiny_config):
    tiny_config["alignment"] = {"representation": "features"}
    cfg = Config(tiny_config)
    assert cfg.alignment["knn"] == "exact"
    assert "knn" not in cfg.layer_cache_params("emoji")
    tiny_config["alignment"]["knn"] = "approximate"
    assert Config(tiny_config).layer_cache_params("emoji") == {
        **cfg.layer_cache_params("emoji"), "knn": "approximate"}


@pytest.mark.parametrize("alignment,metric,start,remedy", [
    ({}, None, "config: alignment.knn: approximate searches the kNN lists of the features "
     "representation, but datasets.emoji.n_samples=48 gets the dense one (alignment."
     "representation: auto)", "set alignment.representation: features, or alignment.knn: exact"),
    ({"representation": "dense"}, None, "config: alignment.knn: approximate searches",
     "set alignment.representation: features, or alignment.knn: exact"),
    ({"representation": "features", "normalize": False}, None,
     "config: alignment.knn: approximate ranks neighbours by Euclidean distance",
     "set alignment.normalize: true, or alignment.knn: exact"),
    ({"representation": "features"}, ("jaccard_knn", {"distance": "euclidean"}),
     "config: metrics.jaccard_knn.distance: euclidean has no approximate search",
     "set distance: cosine, or alignment.knn: exact"),
])
def test_approximate_is_refused_where_it_would_not_give_the_library_s_neighbours(
        tiny_config, alignment, metric, start, remedy):
    tiny_config["alignment"] = {**alignment, "knn": "approximate"}
    if metric:
        tiny_config["metrics"][metric[0]] = metric[1]
    with pytest.raises(ConfigError) as err:
        Config(tiny_config)
    msg = str(err.value)
    assert msg.startswith(start) and msg.endswith(remedy) and "\n" not in msg


# -- the cache -------------------------------------------------------------------

def clustered(seed: int, n: int = N, d: int = 32) -> list[np.ndarray]:
    """One layer: a mixture of 40 clusters (shared by both models' seeds'
    labels, so that their neighbours overlap)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 40, n)
    centres = np.random.default_rng(seed).normal(size=(40, d))
    x = centres[labels] + 0.5 * np.random.default_rng(seed + 100).normal(size=(n, d))
    return [x.astype(np.float32)]


@pytest.fixture(scope="module")
def caches():
    """(exact X, exact Y), (approximate X, approximate Y), lists for k 5 and 10."""
    feats = [clustered(1), clustered(2, d=24)]
    exact = [FeatureCache.from_features(f, device="cpu") for f in feats]
    approx = [FeatureCache.from_features(f, device="cpu", knn="approximate") for f in feats]
    for c in exact + approx:
        c.search_neighbours([5, 10])
    return exact, approx


def test_recall_is_measured_and_recorded(caches):
    exact, approx = caches
    for c in approx:
        assert c.knn_method == "approximate"
        assert sorted(c.knn_recall) == [5, 10]
        for k in (5, 10):
            recall = c.knn_recall[k]
            assert recall.shape == (1,) and recall.dtype == torch.float64
            # found most, not all: the index is not exhaustive
            assert 0.95 <= float(recall[0]) < 1.0
            index = c.knn_index[k]
            assert 1 <= index["nprobe"][0] < index["nlist"][0] == approximate.default_nlist(N)
    assert all(not c.knn_recall for c in exact)


def test_recall_is_what_the_exact_lists_give(caches):
    # the recorded value is the fraction of listed neighbours in the exact
    # lists, over the sampled rows (no ties in continuous data)
    (ex, _), (ax, _) = caches
    rows = np.sort(np.random.default_rng(1).choice(N, size=1000, replace=False))
    got, want = ax.neighbours(10).idx[0, rows], ex.neighbours(10).idx[0, rows]
    hits = (got[:, :, None] == want[:, None, :]).any(-1).double().mean()
    assert float(ax.knn_recall[10][0]) == pytest.approx(float(hits), abs=1e-12)


def test_lists_are_most_similar_first_with_the_library_s_values(caches):
    (ex, _), (ax, _) = caches
    nb = ax.neighbours(10)
    assert (nb.rank[..., :-1] >= nb.rank[..., 1:]).all()
    x, a = ax.layers[0], ax.mean_dots[0]
    gram = (x[nb.idx[0]] * x[:, None, :]).sum(-1)
    torch.testing.assert_close(nb.gram[0], gram, atol=1e-6, rtol=0)
    torch.testing.assert_close(nb.rank[0], nb.gram[0] + a.float()[nb.idx[0]], atol=0, rtol=0)
    # smaller k: prefixes of the largest
    assert torch.equal(ax.neighbours(5).idx, nb.idx[..., :5])
    # distinct others
    srt = nb.idx[0].sort(-1).values
    assert (srt[:, 1:] != srt[:, :-1]).all()
    assert not (nb.idx[0] == torch.arange(N)[:, None]).any()


def test_scores_from_approximate_lists_are_close_to_exact(caches):
    exact, approx = caches
    # at recall@10 >= 0.95 at most about 1 listed neighbour in 20 differs: the
    # scores move by a few percent (measured: 1-3 %, all of them down but
    # cycle_knn's), never more than 1 in 20
    for metric in ("mutual_knn", "jaccard_knn", "cycle_knn", "cknna", "lcs_knn"):
        want = sweep(*exact, metric, topk=10)
        got = sweep(*approx, metric, topk=10)
        assert got.shape == want.shape == (1, 1)
        assert 0 < abs(got[0, 0] - want[0, 0]) < 0.05 * abs(want[0, 0]), metric


def test_an_exhaustive_index_gives_the_exact_lists_and_scores(caches, monkeypatch):
    exact, _ = caches
    monkeypatch.setattr(approximate, "default_nlist", lambda n: 1)  # one cell: every row scanned
    feats = [clustered(1), clustered(2, d=24)]
    full = [FeatureCache.from_features(f, device="cpu", knn="approximate") for f in feats]
    for c, e in zip(full, exact):
        c.search_neighbours([5, 10])
        assert c.knn_index[10] == {"nlist": [1], "nprobe": [1]}
        assert float(c.knn_recall[10][0]) == 1.0
        for k in (5, 10):
            got, want = c.neighbours(k), e.neighbours(k)
            assert torch.equal(got.idx.sort(-1).values, want.idx.sort(-1).values)
            # the products are summed in another order than the blocked search's
            torch.testing.assert_close(got.rank.sort(-1).values, want.rank.sort(-1).values,
                                       atol=1e-6, rtol=0)
    for metric in ("mutual_knn", "jaccard_knn", "cycle_knn"):
        np.testing.assert_array_equal(sweep(*full, metric, topk=10), sweep(*exact, metric, topk=10))
    np.testing.assert_allclose(sweep(*full, "cknna", topk=10), sweep(*exact, "cknna", topk=10),
                               rtol=1e-7, atol=0)


def test_resamples_without_repeats_search_approximately_with_repeats_exactly(caches, monkeypatch):
    (ex, _), (ax, _) = caches
    calls = []
    search_lists = approximate.search_lists
    monkeypatch.setattr(approximate, "search_lists",
                        lambda *a, **kw: calls.append(a[0].shape[0]) or search_lists(*a, **kw))
    # a jackknife resample (a subset): approximate, no recall measured on it
    subset = torch.arange(0, N, 2)
    sub = ax.resample(subset)
    assert sub.knn_method == "approximate"
    sub.search_neighbours([10])
    assert calls == [N // 2] and not sub.knn_recall
    truth = ex.resample(subset).neighbours(10).idx
    hits = (sub.neighbours(10).idx[..., None] == truth[..., None, :]).any(-1).double().mean()
    assert 0.9 < float(hits) < 1.0
    # a bootstrap resample: the exact blocked search, which masks repeated samples
    boot = torch.from_numpy(np.random.default_rng(3).integers(0, N, size=N))
    got = ax.resample(boot).neighbours(10)
    assert calls == [N // 2]
    want = ex.resample(boot).neighbours(10)
    assert torch.equal(got.idx, want.idx) and torch.equal(got.gram, want.gram)


def test_euclidean_neighbours_and_unnormalised_rows_are_refused(caches):
    _, (ax, _) = caches
    with pytest.raises(ValueError, match="^distance: euclidean has no approximate kNN search"):
        ax.euclidean_neighbours().neighbours(3)
    with pytest.raises(ValueError, match="approximate kNN lists rank by Euclidean distance"):
        FeatureCache.from_features(clustered(1, n=50), device="cpu", knn="approximate",
                                   normalize=False)
    with pytest.raises(ValueError, match="knn='fast': choose one of exact, approximate"):
        FeatureCache(ax.layers, (ax.mean_dots, ax.mean_sq), knn="fast")


# -- the file and the step --------------------------------------------------------

def test_the_layer_cache_file_keeps_the_method_recall_and_index(caches, tmp_path):
    exact, (ax, ay) = caches
    path = tmp_path / "x.h5"
    save_layer_cache(ax, path, topk=[5, 10])
    with h5py.File(path) as f:
        assert f.attrs["knn"] == "approximate"
        for k in (5, 10):
            ds = f[f"knn_recall/k{k}"]
            assert ds.dtype == np.float64 and ds.shape == (1,)
            assert ds[0] == float(ax.knn_recall[k][0])
            assert ds.attrs["rows"] == 1000
            assert list(ds.attrs["nlist"]) == ax.knn_index[k]["nlist"]
            assert list(ds.attrs["nprobe"]) == ax.knn_index[k]["nprobe"]
    back = load_layer_cache(path)
    assert back.knn_method == "approximate" and back.knn_index == ax.knn_index
    for k in (5, 10):
        assert torch.equal(back.knn_recall[k], ax.knn_recall[k])
        assert torch.equal(back.neighbours(k).idx, ax.neighbours(k).idx)
    assert back.resample(torch.arange(100)).knn_method == "approximate"
    # an exact cache's file has neither
    save_layer_cache(exact[0], tmp_path / "e.h5", topk=[5])
    with h5py.File(tmp_path / "e.h5") as f:
        assert "knn" not in f.attrs and "knn_recall" not in f
    assert load_layer_cache(tmp_path / "e.h5").knn_method == "exact"


def test_the_step_logs_the_recall_of_each_layer_and_k(tmp_path):
    from file_factories import write_features
    from prh.jobio import logged
    from prh.steps import layer_cache

    layers = clustered(4, n=2000, d=16) + clustered(5, n=2000, d=16)
    feats = write_features(tmp_path / "f.h5", layers, layer_names=["blocks.0", "blocks.1"])
    out, log = tmp_path / "cache.h5", tmp_path / "layer_cache.log"
    with logged(log):
        layer_cache.run(feats, out, q=0.95, exact=False, normalize=True, topk=[5, 10],
                        cca_dims=[], layers=True, device="cpu", representation="features",
                        knn="approximate")
    lines = re.findall(r"recall@(\d+) of the approximate kNN lists \(layer (\S+)\): "
                       r"(0\.\d{3}|1\.000) on 1000 rows", log.read_text())
    assert [(k, name) for k, name, _ in lines] == [
        ("5", "blocks.0"), ("5", "blocks.1"), ("10", "blocks.0"), ("10", "blocks.1")]
    with h5py.File(out) as f:
        for k, name, value in lines:
            stored = f[f"knn_recall/k{k}"][int(name[-1])]
            assert f"{stored:.3f}" == value and stored >= 0.95
    with pytest.raises(ValueError, match="searches the features representation's lists"):
        layer_cache.run(feats, tmp_path / "d.h5", q=0.95, exact=False, normalize=True, topk=[5],
                        cca_dims=[], layers=False, device="cpu", knn="approximate")


def test_a_damaged_recall_record_is_refused_in_one_line(caches, tmp_path):
    _, (ax, _) = caches
    path = tmp_path / "x.h5"
    save_layer_cache(ax, path, topk=[5])
    with h5py.File(path, "a") as f:
        del f["knn_recall/k5"].attrs["nprobe"]
    with pytest.raises(ValueError, match=r"x\.h5: knn_recall/k5 is not one recall, nlist and "
                                         r"nprobe per layer \(1\); delete the file and rerun$"):
        load_layer_cache(path)
