"""The exact blocked kNN search (prh.sweep.search): the dense path's
neighbour lists, ties and near-ties included, in O(block x N) memory."""

import numpy as np
import pytest
import torch

from prh.metrics import knn_from_gram, ranking_gram
from prh.sweep.cache import LayerCache
from prh.sweep.neighbours import euclidean_neighbours
from prh.sweep.search import (MIN_BLOCK_ROWS, block_rows_for, block_starts, knn_exact,
                              search)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def dense_knn(x, k):
    return knn_from_gram(ranking_gram(x)[0], k, inplace=True)[0]


def tricky_rows(rng, n, d):
    """Random rows with exact duplicates (ties), rows one float32 step apart
    and nearly parallel rows (near-ties)."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[5] = x[7]
    x[8] = x[7]                                   # three identical rows
    x[20] = np.nextafter(x[21], np.float32(np.inf))  # one ulp apart
    x[30:40] = x[30] + 1e-6 * rng.normal(size=(10, d)).astype(np.float32)  # nearly parallel
    return torch.from_numpy(x)


def test_block_products_hold_the_bits_of_the_whole_product():
    # What the search relies on (module docstring): a block of at least
    # MIN_BLOCK_ROWS rows times x^T equals those rows of x x^T bit for bit.
    rng = np.random.default_rng(0)
    for n, d in [(300, 3), (1000, 64), (777, 513)]:
        x = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32))
        full = x @ x.T
        for rows in (MIN_BLOCK_ROWS, 17, 64, 250):
            for s in block_starts(n, rows):
                assert torch.equal(x[s:s + rows] @ x.T, full[s:s + rows]), (n, d, rows, s)
                sq = x[s:s + rows] @ x[s:s + rows].T
                assert torch.equal(sq.diagonal(), full.diagonal()[s:s + rows])


def test_block_starts_cover_every_row_with_equal_blocks():
    for n, rows in [(10, 10), (100, 16), (101, 16), (1000, 999), (64, 16)]:
        starts = block_starts(n, rows)
        covered = np.zeros(n, dtype=int)
        for s in starts:
            assert 0 <= s and s + rows <= n
            covered[s:s + rows] += 1
        assert covered.min() >= 1, (n, rows)
    assert block_starts(101, 16)[-1] == 85  # the last block overlaps its predecessor


def test_block_rows_stay_within_bounds():
    assert block_rows_for(10) == 10                       # one block: the dense product
    assert block_rows_for(10**6, block_rows=1) == MIN_BLOCK_ROWS
    assert block_rows_for(1000, block_rows=5000) == 1000
    assert MIN_BLOCK_ROWS <= block_rows_for(10**6) <= 10**6
    assert block_rows_for(10**6, "euclidean") < block_rows_for(10**6, "cosine")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,d,k", [(50, 8, 5), (333, 64, 10), (1000, 5, 10), (600, 300, 20)])
def test_knn_exact_equals_the_dense_lists(n, d, k, device):
    x = tricky_rows(np.random.default_rng(n + d), n, d).to(device)
    want = dense_knn(x, k)
    for rows in (None, MIN_BLOCK_ROWS, 37, n - 1, n):
        got = knn_exact(x, k, block_rows=rows)
        assert got.dtype == torch.int64 and got.shape == (n, k)
        assert torch.equal(got, want), (rows, int((got != want).sum()))


def test_ties_and_near_ties_rank_as_the_dense_path():
    # every row the same but a few: all similarities tie, and topk's choice
    # among them must be the dense path's
    rng = np.random.default_rng(3)
    x = np.repeat(rng.normal(size=(1, 16)), 200, axis=0).astype(np.float32)
    x[::17] += 1e-3 * rng.normal(size=(len(x[::17]), 16)).astype(np.float32)
    x = torch.from_numpy(x)
    assert torch.equal(knn_exact(x, 10, block_rows=16), dense_knn(x, 10))
    # unit rows nearly parallel (mean cosine ~0.9999999) and huge or tiny scales
    base = rng.normal(size=32)
    for scale in (1e-20, 1.0, 1e20):
        y = (base + 3e-4 * rng.normal(size=(300, 32))) * scale
        y = torch.from_numpy(y.astype(np.float32))
        assert torch.equal(knn_exact(y, 7, block_rows=20), dense_knn(y, 7)), scale


def test_search_gives_the_model_cache_lists_and_values():
    rng = np.random.default_rng(4)
    feats = tricky_rows(rng, 400, 24).numpy()[:, None, :].repeat(2, axis=1)
    feats[:, 1] = rng.normal(size=(400, 24))
    dense = LayerCache.from_features(feats, device="cpu")
    idx, _ = dense.knn(10)
    for l in range(2):
        nb = search(dense.layers[l], dense.mean_dots[l], 10, block_rows=48)
        assert torch.equal(nb.idx, idx[l])
        assert torch.equal(nb.gram, torch.gather(dense.grams()[l], 1, idx[l]))
        assert torch.equal(nb.rank, torch.gather(dense.ranking_grams()[l], 1, idx[l]))


def test_euclidean_search_equals_the_dense_euclidean_lists():
    rng = np.random.default_rng(5)
    feats = (tricky_rows(rng, 300, 12).numpy() * rng.uniform(0.1, 10, size=(300, 1))
             ).astype(np.float32)
    dense = LayerCache.from_features(feats[:, None, :], device="cpu")
    want = euclidean_neighbours(dense).knn(8)[0][0]
    norms = dense._cache[("row_norms",)][0]
    got = search(dense.layers[0], dense.mean_dots[0], 8, block_rows=32, norms=norms)
    assert torch.equal(got.idx, want)


def test_repeated_samples_are_never_their_own_neighbours():
    rng = np.random.default_rng(6)
    dense = LayerCache.from_features(rng.normal(size=(200, 1, 10)).astype(np.float32), device="cpu")
    idx = torch.from_numpy(rng.integers(0, 200, size=200))
    res = dense.resample(idx)
    want = res.knn(5)[0][0]
    got = search(res.layers[0], res.mean_dots[0], 5, block_rows=16, source=res._source)
    assert torch.equal(got.idx, want)
    assert not (idx[got.idx] == idx[:, None]).any()


def test_bad_k_is_one_line():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"topk=10 needs 1 <= topk <= N - 1 = 9"):
        knn_exact(x, 10)
    with pytest.raises(ValueError, match="one \\(N, D\\) layer"):
        knn_exact(torch.randn(3, 4, 5), 2)
