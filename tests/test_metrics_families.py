"""The measures beyond the paper's eight (issue 23): each against an
independent reference (another library, or the published formula in
numpy/scipy, never prh's code path) on random cases, its symmetry or
asymmetry, degenerate layers, and its layer sweep and permuted sweep."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import spec_reference as ref
from prh.metrics import get_metric, measure
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import layer_scores, permuted_sweeps, sweep

CPU = torch.device("cpu")
NEW = ["procrustes", "procrustes_angular", "rsa_pearson", "rsa_spearman", "jaccard_knn", "pwcca",
       "ridge_r2", "rv"]
KNN = ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "jaccard_knn"]


def related(rng, n, da, db, shared=4, noise=0.5):
    """Two float32 matrices with a shared latent (scores well above chance)."""
    latent = rng.normal(size=(n, shared))
    a = latent @ rng.normal(size=(shared, da)) + noise * rng.normal(size=(n, da))
    b = latent @ rng.normal(size=(shared, db)) + noise * rng.normal(size=(n, db))
    return a.astype(np.float32), b.astype(np.float32)


# --- Procrustes ----------------------------------------------------------------

def scipy_procrustes(a, b):
    """1 - min_R ||A R - B||_F^2 / 2 over orthogonal R (scipy's solver) of
    the centred, unit-Frobenius layers zero-padded to one width."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    a, b = a - a.mean(0), b - b.mean(0)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    width = max(a.shape[1], b.shape[1])
    a = np.pad(a, ((0, 0), (0, width - a.shape[1])))
    b = np.pad(b, ((0, 0), (0, width - b.shape[1])))
    r, _ = scipy.linalg.orthogonal_procrustes(a, b)
    return 1.0 - np.linalg.norm(a @ r - b) ** 2 / 2


@pytest.mark.parametrize("seed", range(6))
def test_procrustes_equals_scipy_orthogonal_procrustes(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(12, 60))
    da, db = (int(d) for d in rng.integers(2, 80, size=2))  # wider than N in some cases
    a, b = related(rng, n, da, db)
    want = scipy_procrustes(a, b)
    assert measure("procrustes", a, b) == pytest.approx(want, abs=1e-6)
    # the angular shape metric (Williams et al. 2021) as a score
    theta = np.arccos(np.clip(want, 0, 1))
    assert measure("procrustes_angular", a, b) == pytest.approx(1 - theta / (np.pi / 2), abs=1e-6)
    # the sweep of one-layer models (its own code path: factors, QR when wider than N)
    for metric in ("procrustes", "procrustes_angular"):
        got = layer_scores([a], [b], metric, q=1.0, normalize=False, device="cpu")
        assert got[0, 0] == pytest.approx(measure(metric, a, b), abs=1e-6)


def test_procrustes_of_rank_deficient_layers_equals_scipy():
    # layers of rank 3 hundreds wide: the product's eigenproblem has hundreds
    # of zero eigenvalues, whose rounding must not show in the sum of roots
    rng = np.random.default_rng(8)
    latent = rng.normal(size=(300, 3))
    a = (latent @ rng.normal(size=(3, 250))).astype(np.float32)
    b = (latent @ rng.normal(size=(3, 200)) + 1e-4 * rng.normal(size=(300, 200))).astype(np.float32)
    got = layer_scores([a], [b], "procrustes", q=1.0, normalize=False, device="cpu")[0, 0]
    assert got == pytest.approx(scipy_procrustes(a, b), abs=1e-6)


def test_procrustes_null_batches_equal_one_permutation_at_a_time():
    # layers of several widths (grouped) against a batch of permutations
    rng = np.random.default_rng(9)
    xs, ys = two_models(rng, widths_x=(5, 9, 40, 9), widths_y=(7, 3, 7))
    sx, sy = LayerCache.from_features(xs, device="cpu"), LayerCache.from_features(ys, device="cpu")
    perms = np.stack([rng.permutation(sx.n) for _ in range(5)])
    for metric in ("procrustes", "procrustes_angular"):
        batch = permuted_sweeps(sx, sy, metric, perms)
        one = np.stack([layer_scores(xs, [y[p] for y in ys], metric, device="cpu") for p in perms])
        np.testing.assert_allclose(batch, one, atol=1e-9)


def test_procrustes_is_symmetric_and_invariant_to_rotation_and_scale():
    rng = np.random.default_rng(1)
    a, b = related(rng, 50, 7, 11)
    q, _ = np.linalg.qr(rng.normal(size=(11, 11)))
    for metric in ("procrustes", "procrustes_angular"):
        base = measure(metric, a, b)
        assert measure(metric, b, a) == pytest.approx(base, abs=1e-9)
        moved = (1e3 * b @ q + 5.0).astype(np.float32)  # rotated, scaled, shifted
        assert measure(metric, a, moved) == pytest.approx(base, abs=1e-5)
        assert measure(metric, a, a) == pytest.approx(1.0, abs=1e-6)


# --- RSA ----------------------------------------------------------------------------

def rsatoolbox_rsa(a, b, compare):
    """rsatoolbox's RSA: its 'euclidean' RDM is the squared distance over the
    width, whose ranks are those of the distance, and whose Pearson
    correlation on unit rows is that of the cosine RDM (2 - 2 cos over D)."""
    import rsatoolbox
    rdm = lambda x: rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x.astype(np.float64)),
                                            method="euclidean")
    return float(rsatoolbox.rdm.compare(rdm(a), rdm(b), method=compare)[0, 0])


def unit(x):
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
def test_rsa_equals_rsatoolbox_and_scipy(seed):
    from scipy.spatial.distance import pdist
    from scipy.stats import pearsonr

    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(10, 50))
    a, b = related(rng, n, *(int(d) for d in rng.integers(2, 30, size=2)))
    assert measure("rsa_spearman", a, b, distance="euclidean") == pytest.approx(
        rsatoolbox_rsa(a, b, "spearman"), abs=1e-6)
    ua, ub = unit(a).astype(np.float32), unit(b).astype(np.float32)
    for metric, compare in (("rsa_pearson", "corr"), ("rsa_spearman", "spearman")):
        assert measure(metric, ua, ub) == pytest.approx(rsatoolbox_rsa(ua, ub, compare), abs=1e-6)
    # the Euclidean (not squared) RDM's Pearson correlation, which rsatoolbox has not
    want = pearsonr(pdist(a.astype(np.float64)), pdist(b.astype(np.float64)))[0]
    assert measure("rsa_pearson", a, b, distance="euclidean") == pytest.approx(want, abs=1e-6)
    # cosine RDMs do not see the rows' norms
    assert measure("rsa_pearson", a, b) == pytest.approx(measure("rsa_pearson", ua, ub), abs=1e-6)


@pytest.mark.parametrize("metric", ["rsa_pearson", "rsa_spearman"])
def test_rsa_sweep_euclidean_is_on_the_rows_before_normalisation(metric):
    rng = np.random.default_rng(4)
    a, b = related(rng, 40, 6, 9)
    a[:5] *= 30.0  # norms that differ: the normalisation changes Euclidean distances
    got = layer_scores([a], [b], metric, q=1.0, distance="euclidean", device="cpu")[0, 0]
    compare = "spearman" if metric == "rsa_spearman" else None
    want = (rsatoolbox_rsa(a, b, compare) if compare else
            ref.METRICS[metric](a, b, distance="euclidean"))
    assert got == pytest.approx(want, abs=1e-6)
    # the cosine RDM of the normalised rows is that of the raw rows
    cos = layer_scores([a], [b], metric, q=1.0, device="cpu")[0, 0]
    assert cos == pytest.approx(ref.METRICS[metric](a, b), abs=1e-6)
    assert abs(cos - got) > 1e-3  # and the option changes the score here


def test_rsa_ranks_are_average_ranks_over_ties():
    from scipy.stats import rankdata

    from prh.metrics import average_ranks

    v = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 0.5])
    np.testing.assert_array_equal(average_ranks(torch.from_numpy(v)).numpy(), rankdata(v))


# --- Jaccard, and Euclidean neighbours for every kNN metric -------------------------

def sklearn_lists(x, k, metric):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(x.astype(np.float64))
    idx = nn.kneighbors(return_distance=False)  # the sample itself left out
    return [set(row) for row in idx[:, :k]]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_jaccard_equals_sklearn_neighbour_sets(seed, distance):
    rng = np.random.default_rng(300 + seed)
    n, k = int(rng.integers(20, 80)), int(rng.integers(1, 8))
    a, b = related(rng, n, 6, 9, noise=1.0)
    a *= rng.uniform(0.2, 5.0, size=(n, 1)).astype(np.float32)  # norms that differ
    if distance == "cosine":  # measure ranks by inner products: cosines of unit rows
        a, b = unit(a).astype(np.float32), unit(b).astype(np.float32)
    la, lb = sklearn_lists(a, k, distance), sklearn_lists(b, k, distance)
    want = np.mean([len(p & q) / len(p | q) for p, q in zip(la, lb)])
    assert measure("jaccard_knn", a, b, topk=k, distance=distance) == pytest.approx(want, abs=1e-12)
    mutual = np.mean([len(p & q) / k for p, q in zip(la, lb)])
    assert measure("mutual_knn", a, b, topk=k, distance=distance) == pytest.approx(mutual, abs=1e-12)


@pytest.mark.parametrize("metric", KNN)
def test_euclidean_neighbours_skip_the_normalisation(metric):
    rng = np.random.default_rng(5)
    xs, ys = two_models(rng, n=50, widths_x=(6, 11), widths_y=(9,))
    xs = [x * rng.uniform(0.1, 10.0, size=(50, 1)).astype(np.float32) for x in xs]
    p = {"topk": 4}
    euclid = layer_scores(xs, ys, metric, q=1.0, distance="euclidean", device="cpu", **p)
    # the Euclidean neighbours of the rows as given (no clamp: q = 1), not of unit rows
    want = np.array([[measure(metric, x, y, distance="euclidean", **p) for y in ys] for x in xs])
    np.testing.assert_allclose(euclid, want, atol=1e-12)
    unit32 = lambda x: unit(x).astype(np.float32)
    cosine = layer_scores(xs, ys, metric, q=1.0, device="cpu", **p)
    want = np.array([[measure(metric, unit32(x), unit32(y), **p) for y in ys] for x in xs])
    np.testing.assert_allclose(cosine, want, atol=1e-12)
    assert np.abs(euclid - cosine).max() > 0.05  # the option changes the scores here
    # on unit rows the two kinds of neighbours coincide
    assert layer_scores([unit32(x) for x in xs], [unit32(y) for y in ys], metric, q=1.0,
                        distance="euclidean",
                        normalize=False, device="cpu", **p) == pytest.approx(cosine, abs=1e-12)


def test_euclidean_neighbours_from_layer_caches(layer_cache_file):
    import h5py

    from prh.formats.layer_cache import load_layer_cache

    rng = np.random.default_rng(6)
    xs, ys = two_models(rng)
    sx, sy = LayerCache.from_features(xs, device="cpu"), LayerCache.from_features(ys, device="cpu")
    path = layer_cache_file("x.h5", xs, topk=[5], device="cpu")
    lx = load_layer_cache(path, "cpu")
    for metric in ("mutual_knn", "rsa_spearman"):
        p = {"topk": 5} if "knn" in metric else {}
        np.testing.assert_allclose(sweep(lx, sy, metric, distance="euclidean", **p),
                                   sweep(sx, sy, metric, distance="euclidean", **p), atol=1e-6)
    with h5py.File(path, "a") as f:  # a layer cache from before the row norms
        del f["row_norms"]
    old = load_layer_cache(path, "cpu")
    with pytest.raises(ValueError, match="distance: euclidean needs each row's norm"):
        sweep(old, sy, "mutual_knn", topk=5, distance="euclidean")
    assert sweep(old, sy, "mutual_knn", topk=5).shape == (3, 2)


def test_euclidean_views_share_the_gram_matrices():
    from prh.sweep.neighbours import euclidean_neighbours

    rng = np.random.default_rng(7)
    xs, ys = two_models(rng)
    sx, sy = LayerCache.from_features(xs, device="cpu"), LayerCache.from_features(ys, device="cpu")
    sweep(sx, sy, "cknna", topk=4)
    sweep(sx, sy, "mutual_knn", topk=4, distance="euclidean")
    view = euclidean_neighbours(sx)
    assert view.grams() is sx.grams()
    assert not torch.equal(view.knn(4)[0], sx.knn(4)[0])  # its own lists
    assert ("knn", 4) in view._cache.own and ("knn", 4) in sx._cache


# --- PWCCA ----------------------------------------------------------------------------

def morcos_pwcca(x, y, dims, dims_y=None):
    """Morcos et al. (2018)'s procedure in numpy/scipy: CCA of the two layers
    (here their top ``dims`` principal components, the neurons kept), the
    canonical directions of x orthonormalised by QR, weights sum_j
    |<direction_i, neuron_j>| over x's neurons, normalised."""
    def reduced(z):
        z = z.astype(np.float64) - z.astype(np.float64).mean(0)
        u, sv, vt = scipy.linalg.svd(z, full_matrices=False)
        return u[:, :dims] * sv[:dims] @ vt[:dims]  # the projection, in the neurons' basis

    x = reduced(x)
    dims = dims if dims_y is None else dims_y
    y = reduced(y)
    qx = scipy.linalg.orth(x)
    qy = scipy.linalg.orth(y)
    u, corr, _ = scipy.linalg.svd(qx.T @ qy, full_matrices=False)
    directions, _ = np.linalg.qr(qx @ u)
    weights = np.abs(directions.T @ x).sum(1)
    return float(weights @ corr / weights.sum())


@pytest.mark.parametrize("seed", range(5))
def test_pwcca_equals_repsim_and_morcos(seed):
    import repsim
    rng = np.random.default_rng(400 + seed)
    n = int(rng.integers(60, 200))
    a, b = related(rng, n, *(int(d) for d in rng.integers(3, 20, size=2)))
    full = max(a.shape[1], b.shape[1])  # every direction: plain PWCCA
    ab, ba = measure("pwcca", a, b, pca_dim=full), measure("pwcca", b, a, pca_dim=full)
    # repsim weighs each order by its own first argument and reports their mean
    assert (ab + ba) / 2 == pytest.approx(repsim.pwcca([a, b])[0, 1], abs=1e-6)
    assert ab == pytest.approx(morcos_pwcca(a, b, full), abs=1e-6)
    assert abs(ab - ba) > 1e-4  # asymmetric: both orders are scored
    d = int(rng.integers(1, min(a.shape[1], b.shape[1]) + 1))
    assert measure("pwcca", a, b, pca_dim=d) == pytest.approx(morcos_pwcca(a, b, d), abs=1e-6)
    got = layer_scores([a], [b], "pwcca", pca_dim=d, q=1.0, normalize=False, device="cpu")[0, 0]
    assert got == pytest.approx(morcos_pwcca(a, b, d), abs=1e-6)


def test_pwcca_keeps_only_the_directions_a_layer_has():
    rng = np.random.default_rng(8)
    a, b = related(rng, 80, 12, 9)
    low = (a[:, :3] @ rng.normal(size=(3, 12))).astype(np.float32)  # rank 3 in 12 columns
    want = morcos_pwcca(low, b, 3, 9)  # its 3 directions, and b's 9
    assert measure("pwcca", low, b, pca_dim=10) == pytest.approx(want, abs=1e-6)
    got = layer_scores([low], [b], "pwcca", q=1.0, normalize=False, device="cpu")[0, 0]
    assert got == pytest.approx(want, abs=1e-6)


# --- ridge regression -------------------------------------------------------------

def sklearn_ridge_r2(a, b, penalty):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    a, b = a.astype(np.float64), b.astype(np.float64)
    pred = cross_val_predict(Ridge(alpha=penalty), a, b, cv=LeaveOneOut())
    return r2_score(b, pred, multioutput="variance_weighted")


@pytest.mark.parametrize("seed", range(6))
def test_ridge_r2_equals_scikit_learn(seed):
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(12, 50))
    a, b = related(rng, n, *(int(d) for d in rng.integers(2, 80, size=2)))  # some wider than N
    penalty = float(rng.choice([0.1, 1.0, 10.0]))
    want = sklearn_ridge_r2(a, b, penalty)
    assert measure("ridge_r2", a, b, penalty=penalty) == pytest.approx(want, abs=1e-6)
    # the sweep's dual form, from the float32 Gram matrices of the normalised rows
    # (their rounding, ~1e-7 of the rows' norms, enters divided by the penalty)
    got = layer_scores([a], [b], "ridge_r2", q=1.0, device="cpu", penalty=penalty)
    assert got[0, 0] == pytest.approx(sklearn_ridge_r2(unit(a), unit(b), penalty), abs=1e-6)
    # the other direction is another question: both orders are scored
    back = sklearn_ridge_r2(b, a, penalty)
    assert measure("ridge_r2", b, a, penalty=penalty) == pytest.approx(back, abs=1e-6)
    assert abs(back - want) > 1e-4


def test_ridge_r2_does_not_depend_on_the_order_of_the_samples():
    rng = np.random.default_rng(9)
    a, b = related(rng, 40, 5, 8)
    perm = rng.permutation(40)
    assert measure("ridge_r2", a[perm], b[perm]) == pytest.approx(measure("ridge_r2", a, b), abs=1e-9)
    s = layer_scores([a, b], [b], "ridge_r2", device="cpu")
    moved = layer_scores([a[perm], b[perm]], [b[perm]], "ridge_r2", device="cpu")
    np.testing.assert_allclose(moved, s, atol=1e-6)


# --- RV ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_rv_is_escoufiers_coefficient_and_linear_cka(seed):
    rng = np.random.default_rng(600 + seed)
    n = int(rng.integers(8, 60))
    a, b = related(rng, n, *(int(d) for d in rng.integers(2, 40, size=2)))
    # Robert and Escoufier (1976): tr(S_ab S_ba) / sqrt(tr(S_aa^2) tr(S_bb^2)) of the
    # centred configurations' cross-products
    h = np.eye(n) - 1.0 / n
    wa, wb = h @ a.astype(np.float64) @ a.T.astype(np.float64) @ h, h @ b.astype(np.float64) @ b.T @ h
    want = np.trace(wa @ wb) / np.sqrt(np.trace(wa @ wa) * np.trace(wb @ wb))
    assert measure("rv", a, b) == pytest.approx(want, abs=1e-6)
    got = layer_scores([a], [b], "rv", q=1.0, normalize=False, device="cpu")[0, 0]
    assert got == pytest.approx(want, abs=1e-6)
    # linear CKA is the same ratio with 1e-6 added to its denominator
    cka = layer_scores([a], [b], "cka", q=1.0, normalize=False, device="cpu")[0, 0]
    den = np.sqrt(np.trace(wa @ wa) * np.trace(wb @ wb))
    assert cka == pytest.approx(want * den / (den + 1e-6), abs=1e-6)


# --- every new measure: sweep, permuted sweep, degenerate layers ------------------

def two_models(rng, n=36, widths_x=(5, 9, 40), widths_y=(7, 3)):
    latent = rng.normal(size=(n, 3))
    make = lambda w: (latent @ rng.normal(size=(3, w)) + 0.6 * rng.normal(size=(n, w))).astype(np.float32)
    return [make(w) for w in widths_x], [make(w) for w in widths_y]


def family_params(metric):
    p = {"topk": 4} if "knn" in metric else {}
    return [p, {**p, "distance": "euclidean"}] if "distance" in get_metric(metric).defaults else [p]


@pytest.mark.parametrize("metric,p", [(m, p) for m in NEW + KNN[:4] for p in family_params(m)])
def test_identity_permutation_gives_the_sweep(metric, p):
    rng = np.random.default_rng(2)
    xs, ys = two_models(rng)
    sx, sy = LayerCache.from_features(xs, device="cpu"), LayerCache.from_features(ys, device="cpu")
    plain = sweep(sx, sy, metric, **p)
    ident = permuted_sweeps(sx, sy, metric, np.arange(sx.n)[None], **p)[0]
    # float32 products of blocks in the nulls of the inner-product families
    np.testing.assert_allclose(ident, plain, atol=1e-12 if "procrustes" in metric else 1e-6, rtol=0)
    # and a real permutation is the sweep of Y reordered, from scratch
    perm = rng.permutation(sx.n)
    moved = permuted_sweeps(sx, sy, metric, perm[None], **p)[0]
    np.testing.assert_allclose(moved, layer_scores(xs, [y[perm] for y in ys], metric, device="cpu",
                                                   **p), atol=1e-6)  # float32 Gram matrices round per order


@pytest.mark.parametrize("metric", NEW)
def test_degenerate_layers(metric):
    rng = np.random.default_rng(3)
    n = 30
    base = rng.normal(size=(n, 6))
    constant = np.tile(rng.normal(size=(1, 6)), (n, 1))
    # nearly parallel rows: a large shared mean plus variations of 1e-3 of it
    parallel = 1.0 + 1e-3 * base
    layers = [x.astype(np.float32) for x in (base, constant, parallel, 1e20 * base, 1e-30 * base)]
    sx = LayerCache.from_features(layers, q=1.0, device="cpu")
    sy = LayerCache.from_features([layers[0]], q=1.0, device="cpu")
    s = sweep(sx, sy, metric)[:, 0]
    assert np.isnan(s[1])  # a constant layer is not scored
    assert np.all(np.isfinite(np.delete(s, 1)))
    # after the row normalisation the scale is gone: huge and tiny layers score as base
    assert s[3] == pytest.approx(s[0], abs=1e-6) and s[4] == pytest.approx(s[0], abs=1e-6)
    # nearly parallel rows: the float64 definition on the same float32 input
    unit = lambda x: x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    want = ref.METRICS[metric](unit(layers[2]), unit(layers[0]), **get_metric(metric).defaults)
    assert s[2] == pytest.approx(want, abs=1e-5)
    # the plain measure of a constant representation is finite, not NaN
    assert math.isfinite(measure(metric, layers[1], layers[0]))


# --- the documented tables ----------------------------------------------------------

def table_rows(text: str, header: str) -> dict[str, list[str]]:
    """Rows of the markdown table whose header line starts with ``header``,
    by the metric names in their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in cells[0].replace("(baseline)", "").split(","):
            rows[name.strip().strip("`")] = cells
    return rows


def test_docs_and_readme_tables_list_every_measure_with_its_kind_and_id():
    from pathlib import Path

    from prh.metric_info import METRICS

    repo = Path(__file__).resolve().parents[1]
    docs = table_rows((repo / "docs/metrics.md").read_text(), "| metric | kind | `similarity` id")
    readme = table_rows((repo / "README.md").read_text(), "| metric | kind | id in the")
    params = table_rows((repo / "docs/metrics.md").read_text(), "| metric | parameters (default)")
    for name, info in METRICS.items():
        for rows in (docs, readme):
            kind, reg = rows[name][1], rows[name][2]
            assert kind == info.kind, (name, kind)
            assert (reg.split(" ")[0].strip("`") if info.registry_id else reg) == \
                (info.registry_id or "none"), (name, reg)
        assert name in params
        assert ("**no**" in params[name][3]) == (not info.symmetric), name
    assert set(docs) == set(readme) == set(params) == set(METRICS)
    config = yaml_metrics(repo / "config.yaml")
    for name in METRICS:
        assert readme[name][4] == ("yes" if name in config else "no"), name


def yaml_metrics(path):
    import yaml

    return set(yaml.safe_load(path.read_text())["metrics"])


@pytest.mark.parametrize("metric,keeps", [("procrustes", True), ("pwcca", True),
                                          ("rsa_spearman", False), ("ridge_r2", False)])
def test_layer_caches_keep_the_layers_for_the_measures_that_need_them(tiny_config, metric, keeps):
    from prh.config import Config

    assert Config(tiny_config).layer_cache_params()["layers"] is False
    tiny_config["metrics"][metric] = {}
    assert Config(tiny_config).layer_cache_params()["layers"] is keeps


def test_bad_parameters_are_one_line_errors_naming_the_parameter():
    a = np.ones((10, 3), dtype=np.float32)
    for metric, params, words in [("rsa_pearson", {"distance": "manhattan"}, "distance='manhattan'"),
                                  ("mutual_knn", {"distance": "l1"}, "distance='l1'"),
                                  ("ridge_r2", {"penalty": 0}, "penalty"),
                                  ("pwcca", {"pca_dim": 0}, "pca_dim"),
                                  ("procrustes", {"topk": 3}, "unknown parameter 'topk'")]:
        with pytest.raises(ValueError, match=words) as err:
            measure(metric, a, a, **params)
        assert "\n" not in str(err.value)
