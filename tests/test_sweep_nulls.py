"""The CKA permutation null (blocked, batched, float32 products) and the
sequence metrics' null (programme on sharing rows only) against brute force.

The reference recomputes every null matrix from scratch: the permuted
features Y[perm] are prepared as a new model and scored with the plain
sweep (float64 products of its own kernels), so it shares none of the
null's gathers, blocks, batches, scales or triangle packing.
"""

import numpy as np
import pytest
import torch

import prh.sweep.blocks as blocks
import prh.sweep.kernel as kernel_sweep
import prh.sweep.knn as knn_sweep
import spec_reference as ref
from prh.inference.permutation import null_distributions
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import permuted_sweep, sweep
from prh.sweep.kernel import PERMUTATION_BATCH

N = 37  # prime: no block size or batch divides it

VARIANTS = [("cka", "ip"), ("cka", "rbf"), ("unbiased_cka", "ip"), ("unbiased_cka", "rbf")]


def planted(rng, layers, d, scale=1.0, shift=0.0):
    latent = rng.normal(size=(N, 3))
    out = [latent @ rng.normal(size=(3, d)) + 0.5 * rng.normal(size=(N, d)) for _ in range(layers)]
    return (scale * (np.stack(out, 1) + shift)).astype(np.float32)


def brute_force(X, Y, perms, metric, params, normalize=True):
    sx = LayerCache.from_features(X, device="cpu", normalize=normalize)
    return np.stack([sweep(sx, LayerCache.from_features(Y[p], device="cpu", normalize=normalize),
                           metric, **params) for p in perms])


def fast(X, Y, perms, metric, params, normalize=True):
    sx = LayerCache.from_features(X, device="cpu", normalize=normalize)
    sy = LayerCache.from_features(Y, device="cpu", normalize=normalize)
    _, mats = null_distributions(sx, sy, {metric: params}, permutations=perms, return_matrices=True)
    return mats[("xy", metric)]


def perms_for(rng, k=PERMUTATION_BATCH + 5):  # one full batch and a partial one
    return np.stack([rng.permutation(N) for _ in range(k)])


@pytest.mark.parametrize("metric,kernel", VARIANTS)
@pytest.mark.parametrize("layers", [(3, 2), (2, 3)], ids=["permute-Y", "permute-X"])
@pytest.mark.parametrize("block_rows", [1, 5, N])
def test_null_matrices_equal_brute_force(monkeypatch, metric, kernel, layers, block_rows):
    # Blocks of 1, 5 (not dividing 37) and all rows of the fixed side's kernels;
    # with fewer X layers the null permutes X by the inverse permutations.
    monkeypatch.setattr(kernel_sweep, "_NULL_ROW_BYTES", (4 * N * max(layers) * block_rows,) * 2)
    rng = np.random.default_rng(block_rows)
    X, Y = planted(rng, layers[0], 6), planted(rng, layers[1], 4)
    perms = perms_for(rng)
    params = {"kernel": kernel}
    got = fast(X, Y, perms, metric, params)
    want = brute_force(X, Y, perms, metric, params)
    assert got.shape == (len(perms), *layers)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the null is not the observed score repeated: permutations do change it
    assert np.ptp(got, axis=0).max() > 1e-3


@pytest.mark.parametrize("metric,kernel", VARIANTS)
def test_degenerate_layers(metric, kernel):
    rng = np.random.default_rng(7)
    X, Y = planted(rng, 4, 6), planted(rng, 3, 5)
    X[:, 1] = 0.25                                  # constant layer: NaN row
    X[:, 2] = 50.0 + 1e-3 * X[:, 2]                 # nearly parallel rows (mean cosine ~1 - 1e-9)
    X[:, 3] *= 1e3  # unnormalised below: an RBF kernel ~constant off the diagonal (all far apart)
    Y[:, 1] = Y[:, 0] + 1e-4 * rng.normal(size=(N, 5)).astype(np.float32)  # nearly equal layers
    perms = perms_for(rng)
    params = {"kernel": kernel}
    got = fast(X, Y, perms, metric, params, normalize=False)
    want = brute_force(X, Y, perms, metric, params, normalize=False)
    assert np.isnan(got[:, 1]).all() and np.isnan(want[:, 1]).all()
    assert not np.isnan(np.delete(got, 1, axis=1)).any()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric,kernel", VARIANTS)
@pytest.mark.parametrize("scale", [1e-15, 1e15])
def test_huge_and_tiny_values(metric, kernel, scale):
    # Unnormalised layers at 1e-15 / 1e15: the kernels' products (1e-60 /
    # 1e60 and beyond) are outside float32, which the null's power-of-two
    # scales bring back; the reference multiplies in float64.
    rng = np.random.default_rng(11)
    X, Y = planted(rng, 2, 6, scale=scale), planted(rng, 2, 4, scale=scale)
    X[:, 1] *= 1e3  # layers of one model at different scales
    perms = perms_for(rng)
    # eps=0: the plain ratio, scale-free (eps=1e-6 would swamp tiny kernels);
    # sigma: an RBF that is not constant on the first layer, nearly so on the second
    params = {"kernel": kernel, "sigma": 1.3 * scale, "eps": 0.0}
    got = fast(X, Y, perms, metric, params, normalize=False)
    want = brute_force(X, Y, perms, metric, params, normalize=False)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# The sequence metrics' null: rows whose two kNN lists share no sample get the
# closed form (LCS 0, edit distance k), the others the programme.

def sequence_reference(sx, sy, perm, topk, metric):
    """Every row scored in plain Python on Y's lists renamed by perm: Y'[n] = Y[perm[n]]."""
    ix, iy = sx.knn(topk)[0].numpy(), sy.knn(topk)[0].numpy()
    order = np.arange(sx.n) if perm is None else perm
    inverse = np.argsort(order)
    fn = ref.lcs if metric == "lcs_knn" else ref.levenshtein
    out = np.empty((len(ix), len(iy)))
    for i in range(len(ix)):
        for j in range(len(iy)):
            mean = np.mean([fn(list(ix[i, n]), list(inverse[iy[j, order[n]]])) for n in range(sx.n)])
            out[i, j] = mean if metric == "lcs_knn" else 1.0 - mean / topk
    return out


def tied(rng, layers):
    """Features of a few small integers: many samples coincide, so similarities tie."""
    return (rng.integers(1, 4, size=(N, layers, 3)) + 0.0).astype(np.float32)


def partly_shuffled(rng, fraction):
    perm = np.arange(N)
    moved = rng.choice(N, int(fraction * N), replace=False)
    perm[moved] = rng.permutation(moved)
    return perm


@pytest.mark.parametrize("metric", ["lcs_knn", "edit_distance_knn"])
@pytest.mark.parametrize("topk", [1, 4])
@pytest.mark.parametrize("data", ["planted", "tied", "same"])
@pytest.mark.parametrize("path", ["gather", "dense", "chosen", "one-layer-blocks"])
def test_sequence_null_equals_every_row_scored(monkeypatch, metric, topk, data, path):
    rng = np.random.default_rng(topk)
    X = tied(rng, 3) if data == "tied" else planted(rng, 3, 6)
    Y = X if data == "same" else tied(rng, 2) if data == "tied" else planted(rng, 2, 5)
    if path in ("gather", "dense"):
        monkeypatch.setattr(knn_sweep, "_SHARED_DENSE", 2.0 if path == "gather" else -1.0)
    if path == "one-layer-blocks":
        monkeypatch.setattr(blocks, "_BLOCK_BYTES", 1)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    # identity and partial shuffles leave rows that share all or most of their lists
    perms = [np.arange(N), partly_shuffled(rng, 0.3), *perms_for(rng, 4)]
    got = permuted_sweep(sx, sy, metric, torch.as_tensor(np.stack(perms)), {"topk": topk})
    for p, matrix in zip(perms, got):
        np.testing.assert_array_equal(matrix, sequence_reference(sx, sy, p, topk, metric))
    np.testing.assert_array_equal(sweep(sx, sy, metric, topk=topk),
                                  sequence_reference(sx, sy, None, topk, metric))
    if data == "same":  # the identity pairs every layer with itself: every row fully shared
        best = topk if metric == "lcs_knn" else 1.0
        assert got[0][0, 0] == got[0][1, 1] == best
    assert len({m.tobytes() for m in got}) == len(perms)  # permutations do change the scores


@pytest.mark.parametrize("case", ["planted", "same-model", "identity-and-partial"])
def test_cknna_null_from_shared_entries_equals_brute_force(case):
    # The null gathers only the entries both kNN lists share; the reference
    # scores the permuted features from scratch with the dense sweep.
    rng = np.random.default_rng(11)
    X = planted(rng, 3, 6)
    Y = X.copy() if case == "same-model" else planted(rng, 2, 4)
    perms = perms_for(rng, 20)
    if case == "identity-and-partial":
        perms[0] = np.arange(N)                       # every entry shared
        perms[1] = np.arange(N)
        perms[1][:9] = rng.permutation(9)             # most entries shared
    params = {"topk": 4}
    got = fast(X, Y, perms, "cknna", params)
    want = brute_force(X, Y, perms, "cknna", params)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the plain (dense) sweep and the identity permutation agree too
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    np.testing.assert_allclose(permuted_sweep(sx, sy, "cknna", torch.arange(N), params),
                               sweep(sx, sy, "cknna", **params), rtol=1e-9, atol=1e-12)
