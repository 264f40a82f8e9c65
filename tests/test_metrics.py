"""The single-pair metrics: hand-worked cases, the spec's definitions, properties, bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import spec_reference as ref
from prh.metrics import METRICS, get_metric, list_metrics, measure
from prh.sequences import lcs_length, levenshtein

KNN_METRICS = ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "jaccard_knn"]


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def params_for(metric, n):
    if metric == "svcca":
        return {"cca_dim": 5}
    if metric in KNN_METRICS or metric == "cknna":
        return {"topk": min(5, n - 1)}
    return {}


# --- hand-worked cases -------------------------------------------------------

# Six points on a line embedded as 2-D unit vectors at angles 0, 10, 20, 100,
# 110, 120 degrees: two clusters of three. With k=2 each point's neighbours are
# the other two of its cluster, ordered by angle gap.
ANGLES_A = np.deg2rad([0, 10, 25, 100, 110, 125])
# B keeps the clusters but swaps the order within each: 25 is closer to 10 than 0.
ANGLES_B = np.deg2rad([0, 20, 25, 100, 120, 125])


def on_circle(angles):
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def test_knn_lists_of_the_six_point_example():
    assert ref.knn(on_circle(ANGLES_A), 2).tolist() == [[1, 2], [0, 2], [1, 0], [4, 5], [3, 5], [4, 3]]
    assert ref.knn(on_circle(ANGLES_B), 2).tolist() == [[1, 2], [2, 0], [1, 0], [4, 5], [5, 3], [4, 3]]


def test_six_point_example_by_hand():
    a, b = on_circle(ANGLES_A), on_circle(ANGLES_B)
    # Same neighbour sets everywhere: mutual kNN is 1 although the orders differ.
    assert measure("mutual_knn", a, b, topk=2) == 1.0
    # Rows 1 and 4 list their two neighbours in swapped order: LCS 1 instead of 2.
    assert measure("lcs_knn", a, b, topk=2) == pytest.approx((2 * 4 + 1 * 2) / 6)
    # A swap costs two substitutions: edit distance 2 on two of six rows.
    assert measure("edit_distance_knn", a, b, topk=2) == pytest.approx(1 - (2 * 2 / 6) / 2)
    # With k=1: A's nearest are [1,0,1,4,3,4], B's [1,2,1,4,5,4]: rows 0, 2, 3, 5 agree.
    assert measure("mutual_knn", a, b, topk=1) == pytest.approx(4 / 6)


def test_cycle_knn_by_hand_and_asymmetric():
    a, b = on_circle(ANGLES_A), on_circle(ANGLES_B)
    # k=1. B: 0->1, 1->2, 2->1, 3->4, 4->5, 5->4. A: 0->1, 1->0, 2->1, 3->4, 4->3, 5->4.
    # cycle(A, B): n -> B-nn -> A-nn: 0->1->0 (hit), 1->2->1 (hit), 2->1->0, 3->4->3 (hit),
    # 4->5->4 (hit), 5->4->3.
    assert measure("cycle_knn", a, b, topk=1) == pytest.approx(4 / 6)
    # cycle(B, A): n -> A-nn -> B-nn: 0->1->2, 1->0->1 (hit), 2->1->2 (hit), 3->4->5,
    # 4->3->4 (hit), 5->4->5 (hit).
    assert measure("cycle_knn", b, a, topk=1) == pytest.approx(4 / 6)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = (x[:, :4] @ rng.normal(size=(4, 8)) + rng.normal(size=(40, 8))).astype(np.float32)
    xy, yx = measure("cycle_knn", x, y, topk=3), measure("cycle_knn", y, x, topk=3)
    assert xy == pytest.approx(ref.cycle_knn(x, y, 3)) and yx == pytest.approx(ref.cycle_knn(y, x, 3))
    assert xy != yx
    assert not get_metric("cycle_knn").symmetric


@pytest.mark.parametrize("x, y, expected", [
    ([1, 2, 3, 4], [2, 4, 3], 2),
    ([5, 1, 2, 3], [1, 2, 3, 5], 3),
    ([1, 2, 3], [4, 5, 6], 0),
    ([7, 8, 9], [7, 8, 9], 3),
])
def test_lcs_of_known_lists(x, y, expected):
    assert int(lcs_length(torch.tensor(x), torch.tensor(y))) == expected
    assert ref.lcs(x, y) == expected


@pytest.mark.parametrize("x, y, expected", [
    ("kitten", "sitting", 3),
    ("flaw", "lawn", 2),
    ("abc", "abc", 0),
    ("abcd", "dcba", 4),
])
def test_levenshtein_of_known_lists(x, y, expected):
    tx, ty = torch.tensor([ord(c) for c in x]), torch.tensor([ord(c) for c in y])
    assert int(levenshtein(tx, ty)) == expected
    assert ref.levenshtein(x, y) == expected


def test_sequence_ops_batch_over_leading_dimensions():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 6, size=(3, 4, 7)))
    y = torch.from_numpy(rng.integers(0, 6, size=(4, 7)))
    lcs = lcs_length(x, y)
    lev = levenshtein(x, y)
    assert lcs.shape == lev.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert lcs[i, j] == ref.lcs(x[i, j].tolist(), y[j].tolist())
            assert lev[i, j] == ref.levenshtein(x[i, j].tolist(), y[j].tolist())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12),
       st.lists(st.integers(0, 4), min_size=1, max_size=12))
def test_bit_parallel_sequence_ops_equal_the_plain_programme(x, y):
    tx, ty = torch.tensor(x), torch.tensor(y)
    assert int(lcs_length(tx, ty)) == ref.lcs(x, y)
    assert int(levenshtein(tx, ty)) == ref.levenshtein(x, y)


def test_long_lists_fall_back_to_the_plain_programme():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 8, size=70).tolist(), rng.integers(0, 8, size=65).tolist()
    assert int(lcs_length(torch.tensor(x), torch.tensor(y))) == ref.lcs(x, y)
    assert int(levenshtein(torch.tensor(x), torch.tensor(y))) == ref.levenshtein(x, y)


# --- agreement with the spec, metric by metric -------------------------------

@pytest.mark.parametrize("metric", list_metrics())
def test_measure_matches_spec_definition(metric):
    rng = np.random.default_rng(7)
    a = unit_rows(rng, 48, 12)
    b = (a[:, :9] @ rng.normal(size=(9, 20)) + 0.5 * rng.normal(size=(48, 20))).astype(np.float32)
    p = params_for(metric, 48)
    assert measure(metric, a, b, **p) == pytest.approx(ref.METRICS[metric](a, b, **p), abs=1e-5)


@pytest.mark.parametrize("metric", ["cka", "unbiased_cka"])
def test_rbf_kernel_matches_spec(metric):
    rng = np.random.default_rng(8)
    a, b = unit_rows(rng, 30, 6), unit_rows(rng, 30, 9)
    got = measure(metric, a, b, kernel="rbf", sigma=0.7)
    assert got == pytest.approx(ref.METRICS[metric](a, b, kernel="rbf", sigma=0.7), abs=1e-5)


def test_measure_accepts_torch_and_numpy_alike():
    rng = np.random.default_rng(1)
    a, b = unit_rows(rng, 32, 5), unit_rows(rng, 32, 7)
    for metric in list_metrics():
        p = params_for(metric, 32)
        assert measure(metric, torch.from_numpy(a), torch.from_numpy(b), **p) == measure(metric, a, b, **p)


def test_svcca_is_the_closed_form_with_exact_svd():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(60, 15)).astype(np.float32)
    b = (a @ rng.normal(size=(15, 15)) + rng.normal(size=(60, 15))).astype(np.float32)
    got = measure("svcca", a, b, cca_dim=6)
    assert got == pytest.approx(ref.svcca(a, b, cca_dim=6), abs=1e-6)
    # Identical inputs: the subspaces coincide and every canonical correlation is 1.
    assert measure("svcca", a, a, cca_dim=6) == pytest.approx(1.0, abs=1e-6)
    # Deterministic, unlike the reference's randomised SVD.
    assert measure("svcca", a, b, cca_dim=6) == got


# --- properties --------------------------------------------------------------

@pytest.mark.parametrize("metric", list_metrics())
def test_a_representation_is_fully_aligned_with_itself(metric):
    rng = np.random.default_rng(4)
    a = unit_rows(rng, 40, 10)
    p = params_for(metric, 40)
    expected = 5.0 if metric == "lcs_knn" else 1.0
    # The unbiased estimators are small (they divide by N(N-3)), so the
    # reference's +1e-6 in the denominator shows at the 1e-5 level.
    if METRICS[metric].kind == "predictive":
        # ridge's shrinkage and held-out samples keep even A from A below 1
        assert 0.5 < measure(metric, a, a, **p) < 1.0
    else:
        assert measure(metric, a, a, **p) == pytest.approx(expected, abs=1e-4)
    assert measure(metric, a, a, **p) == pytest.approx(ref.METRICS[metric](a, a, **p), abs=1e-6)


def _rotation(rng, d):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.25, 20.0), d=st.integers(2, 12))
def test_cka_invariant_to_rotation_and_isotropic_scaling(seed, scale, d):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(30, d))
    b = a[:, :1] + rng.normal(size=(30, d + 2))
    base = measure("cka", a.astype(np.float32), b.astype(np.float32))
    moved = (scale * a @ _rotation(rng, d)).astype(np.float32)
    assert measure("cka", moved, b.astype(np.float32)) == pytest.approx(base, abs=2e-5)
    base_u = measure("unbiased_cka", a.astype(np.float32), b.astype(np.float32))
    assert measure("unbiased_cka", moved, b.astype(np.float32)) == pytest.approx(base_u, abs=2e-5)


def test_shuffled_pairing_gives_mutual_knn_near_chance():
    rng = np.random.default_rng(5)
    n, k = 1000, 10
    latent = rng.normal(size=(n, 16))
    a = (latent @ rng.normal(size=(16, 32)) + 0.3 * rng.normal(size=(n, 32))).astype(np.float32)
    b = (latent @ rng.normal(size=(16, 24)) + 0.3 * rng.normal(size=(n, 24))).astype(np.float32)
    paired = measure("mutual_knn", a, b, topk=k)
    shuffled = measure("mutual_knn", a, b[rng.permutation(n)], topk=k)
    chance = k / (n - 1)
    assert paired > 0.15
    # The mean of N near-independent overlap fractions: its spread is about
    # sqrt(chance / (N k)) ~ 0.001, so 0.006 is far out in the tail.
    assert abs(shuffled - chance) < 0.006


def test_zero_vectors_do_not_produce_nan():
    rng = np.random.default_rng(6)
    a = unit_rows(rng, 24, 6)
    a[3] = 0.0
    zeros = np.zeros((24, 5), dtype=np.float32)
    for metric in list_metrics():
        p = params_for(metric, 24)
        assert math.isfinite(measure(metric, a, a, **p)), metric
        assert math.isfinite(measure(metric, a, zeros, **p)), metric


def test_registry_lists_defaults_and_symmetry():
    assert set(METRICS) == {"mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn",
                            "cka", "unbiased_cka", "cknna", "svcca",
                            "procrustes", "procrustes_angular", "rsa_pearson", "rsa_spearman",
                            "jaccard_knn", "pwcca", "ridge_r2", "rv"}
    assert METRICS["mutual_knn"].defaults == {"topk": 10, "distance": "cosine"}
    assert METRICS["svcca"].defaults == {"cca_dim": 10}
    assert METRICS["cka"].defaults == {"kernel": "ip", "sigma": 1.0, "eps": 1e-6}
    assert METRICS["mutual_knn"].symmetric and not METRICS["cycle_knn"].symmetric
    assert METRICS["lcs_knn"].max_score(topk=7) == 7.0
    assert METRICS["cka"].max_score() == 1.0


def test_cknna_is_not_exactly_symmetric():
    # The mask breaks the kernels' symmetry, so HSIC_u(M*K, M*L) != HSIC_u(M*L, M*K):
    # the registry must not let the workflow mirror one order into the other.
    rng = np.random.default_rng(11)
    a = unit_rows(rng, 60, 8)
    b = (a[:, :5] @ rng.normal(size=(5, 8)) + 0.8 * rng.normal(size=(60, 8))).astype(np.float32)
    ab, ba = measure("cknna", a, b, topk=6), measure("cknna", b, a, topk=6)
    assert ab == pytest.approx(ref.cknna(a, b, 6), abs=1e-6)
    assert ba == pytest.approx(ref.cknna(b, a, 6), abs=1e-6)
    assert ab != ba


# --- bad input ---------------------------------------------------------------

def _raises(match, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        measure(*args, **kwargs)


def test_bad_input_gives_value_errors_naming_the_problem():
    rng = np.random.default_rng(0)
    a, b = unit_rows(rng, 10, 4), unit_rows(rng, 12, 4)
    _raises(r"same number of samples.*A has 10, B has 12", "mutual_knn", a, b)
    _raises(r"topk=10 is out of range.*\[1, 9\]", "mutual_knn", a, a, topk=10)
    _raises(r"topk=0 is out of range", "cycle_knn", a, a, topk=0)
    _raises(r"topk=1 is out of range.*\[2, 9\]", "cknna", a, a, topk=1)
    _raises(r"topk must be an integer, got 2.5", "mutual_knn", a, a, topk=2.5)
    _raises(r"unknown metric 'mutual_nn'.*mutual_knn", "mutual_nn", a, a)
    _raises(r"unknown parameter 'k'=3 for metric 'mutual_knn'.*topk", "mutual_knn", a, a, k=3)
    _raises(r"kernel='poly' is not valid", "cka", a, a, kernel="poly")
    _raises(r"sigma=0.0 is out of range", "cka", a, a, kernel="rbf", sigma=0.0)
    _raises(r"cca_dim=5 is out of range.*\[1, 4\]", "svcca", a, a, cca_dim=5)
    _raises(r"A must be 2-dimensional, got shape \(10, 2, 2\)", "cka", a.reshape(10, 2, 2), a)
    _raises(r"B must be a numpy array or torch tensor", "cka", a, a.tolist())
    tiny = a[:3]
    _raises(r"'unbiased_cka' needs N >= 4 samples, got N=3", "unbiased_cka", tiny, tiny)
    _raises(r"'cknna' needs N >= 4 samples, got N=3", "cknna", tiny, tiny, topk=2)
    bad = a.copy()
    bad[2, 1] = np.nan
    _raises(r"A contains 1 NaN or Inf values", "cka", bad, a)
    bad[2, 1] = np.inf
    _raises(r"B contains 1 NaN or Inf values", "mutual_knn", a, bad, topk=3)
