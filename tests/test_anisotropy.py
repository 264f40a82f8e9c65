"""CKA, unbiased CKA and CKNNA stay exact on anisotropic layers.

Hidden states of large causal LMs are anisotropic: a large mean shared by all
samples plus small variations, so that after the spec's normalisation the
samples are nearly parallel (mean pairwise cosine 0.999 and above). The
metrics are about those small variations. Here every code path that scores
these metrics (the layer sweep, the per-pair ``measure``, and the calibration
path: observed score, permutation null, resamples) is held to the float64
reading of the definitions in ``spec_reference`` on layers whose mean cosine
goes from 0.9 to 0.9999999.

At the far end even float64 is not enough for the literal reading of unbiased
HSIC: its three terms are sums of N^2 kernel values near 1 that cancel down to
~1e-14, below their rounding. CKA and unbiased CKA are therefore referred to
the same definitions evaluated on rows centred in float64 first: for the
linear kernel H K H is unchanged by it, the RBF kernel depends on differences
only, and unbiased HSIC is blind to K + f 1' + 1 f' + c; so this is the same
number, not an approximation, only well-conditioned. Where float64 suffices
the two agree (tested below). CKNNA, whose kNN lists and masked kernels see
the uncentred values, is referred to the literal reading, which stays
well-conditioned there.
"""

import numpy as np
import pytest
import torch

import spec_reference as ref
from prh.alignment import LayerCache, layer_scores, sweep
from prh.calibration import calibrate_pair, sample_permutations
from prh.metrics import measure
from prh.preprocess import prepare_layers
from prh.formats.layer_cache import load_layer_cache, save_layer_cache

N, D, RANK, TOPK = 96, 64, 4, 10
TARGETS = [0.9, 0.999, 0.99999, 0.9999999]
TOL = 1e-4
CASES = [
    ("cka", {}),
    ("cka", {"eps": 0.0}),
    ("cka", {"kernel": "rbf", "eps": 0.0}),
    ("unbiased_cka", {}),
    ("unbiased_cka", {"eps": 0.0}),
    ("cknna", {"topk": TOPK}),
]
CASE_IDS = [m + "".join(f"-{k}={v}" for k, v in p.items()) for m, p in CASES]
RANGES = {"cka": (0.0, 1.0), "unbiased_cka": (-1.0, 1.0), "cknna": (-1.0, 1.0)}


def anisotropic_model(rng, latent, target, strengths):
    """N x L x D float32 features: per layer, one large mean vector shared by all
    samples plus small noise, part of it a projection of the latent shared with
    the other model (weight ``strength``), scaled so that the mean pairwise
    cosine of the normalised rows is about ``target``."""
    spread = np.sqrt(1.0 - target)  # |x_n - mean| relative to |mean|: cos ~ 1 - spread^2
    layers = []
    for strength in strengths:
        mean = 3.0 * rng.normal(size=D)  # large, so the clamp cuts its biggest coordinates
        signal = latent @ rng.normal(size=(latent.shape[1], D))
        noise = rng.normal(size=(N, D)) * rng.uniform(0.5, 1.5, size=(N, 1))
        var = (strength * signal / np.linalg.norm(signal, axis=1).mean()
               + (1 - strength) * noise / np.linalg.norm(noise, axis=1).mean())
        var *= spread * np.linalg.norm(mean) / np.linalg.norm(var, axis=1).mean()
        layers.append(mean + var)
    return np.stack(layers, axis=1).astype(np.float32)


_MODELS: dict[float, tuple] = {}


def models(target):
    """X (2 layers) and Y (2 layers: one sharing X's latent, one not), raw and
    prepared by the reference (float64)."""
    if target not in _MODELS:
        rng = np.random.default_rng(int(round(-np.log10(1 - target))))
        latent = rng.normal(size=(N, RANK))
        X = anisotropic_model(rng, latent, target, [0.8, 0.5])
        Y = anisotropic_model(rng, latent, target, [0.7, 0.0])
        _MODELS[target] = X, Y, ref.prepare(X), ref.prepare(Y)
    return _MODELS[target]


def mean_cosine(x):
    g = x @ x.T
    return (g.sum() - np.trace(g)) / (len(x) * (len(x) - 1))


def reference(metric, xs, ys, p, literal=False):
    """The spec reference's scores; CKA variants on rows centred first (see above)."""
    if metric != "cknna" and not literal:
        xs, ys = [x - x.mean(0) for x in xs], [y - y.mean(0) for y in ys]
    return np.array([[ref.METRICS[metric](x, y, **p) for y in ys] for x in xs])


def check(got, want, metric):
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    low, high = RANGES[metric]
    assert np.all(got >= low - 1e-9) and np.all(got <= high + 1e-9), got


@pytest.mark.parametrize("target", TARGETS)
def test_layers_have_the_target_mean_cosine(target):
    _, _, xs, ys = models(target)
    for x in xs + ys:
        realised = mean_cosine(x)
        assert 0.7 < (1 - realised) / (1 - target) < 1.3, (target, realised)


@pytest.mark.parametrize("metric,params", [c for c in CASES if c[0] != "cknna"],
                         ids=[i for i in CASE_IDS if not i.startswith("cknna")])
@pytest.mark.parametrize("target", TARGETS[:2])
def test_centring_first_leaves_the_reference_unchanged_where_float64_suffices(target, metric, params):
    _, _, xs, ys = models(target)
    np.testing.assert_allclose(reference(metric, xs, ys, params),
                               reference(metric, xs, ys, params, literal=True), atol=1e-7, rtol=0)


@pytest.mark.parametrize("metric,params", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_sweep_matches_float64_reference(target, metric, params):
    X, Y, xs, ys = models(target)
    want = reference(metric, xs, ys, params)
    check(layer_scores(X, Y, metric, device="cpu", **params), want, metric)


@pytest.mark.parametrize("metric,params", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_measure_matches_float64_reference(target, metric, params):
    # measure scores the float32 matrices it is given (no preprocessing): the
    # reference reads the same values in float64.
    X, Y, _, _ = models(target)
    px = prepare_layers(X, "X", device=torch.device("cpu"))
    py = prepare_layers(Y, "Y", device=torch.device("cpu"))
    got = np.array([[measure(metric, a, b, **params) for b in py] for a in px])
    want = reference(metric, [a.numpy().astype(np.float64) for a in px],
                     [b.numpy().astype(np.float64) for b in py], params)
    check(got, want, metric)


@pytest.mark.parametrize("metric,params", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_calibration_path_matches_float64_reference(target, metric, params):
    X, Y, xs, ys = models(target)
    sx = LayerCache.from_features(X, device="cpu")
    sy = LayerCache.from_features(Y, device="cpu")
    K, seed = 20, 3
    (S, rows), = calibrate_pair(sx, sy, {metric: params}, n_permutations=K, seed=seed,
                                both_orders=False).values()
    want = reference(metric, xs, ys, params)
    check(S, want, metric)
    assert rows["max"]["score"] == pytest.approx(want.max(), abs=TOL)
    # The permutation null (its first values): Y's samples reordered, every
    # layer pair scored again.
    null = [reference(metric, xs, [y[perm] for y in ys], params).max()
            for perm in sample_permutations(N, K, seed)[:4]]
    check(rows["max"]["null"][:4], np.array(null), metric)
    # Resamples (with copies, jackknife sets, sample-size subsets) keep the full
    # sample's centring.
    rng = np.random.default_rng(seed)
    # A copy of a sample is never its own neighbour in prh's resamples (the
    # reference has no such rule), so kNN-based CKNNA is checked on a subset.
    idx = (np.sort(rng.permutation(N)[:N - 16]) if metric == "cknna"
           else rng.integers(0, N, size=N))
    got = sweep(sx.resample(torch.from_numpy(idx)), sy.resample(torch.from_numpy(idx)),
                metric, **params)
    check(got, reference(metric, [x[idx] for x in xs], [y[idx] for y in ys], params), metric)


def test_epsilon_free_cka_of_a_constant_layer_is_zero_not_nan():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2, 5)).astype(np.float32)
    X[:, 1] = 1.0  # every sample the same: a constant kernel, HSIC 0
    for metric in ("cka", "unbiased_cka"):
        # the ratio itself is 0 without eps, never 0/0
        assert measure(metric, X[:, 1], X[:, 0], eps=0) == 0.0
        # the layer sweep marks a constant layer's scores NaN (never a winner)
        S = layer_scores(X, X, metric, eps=0.0, device="cpu")
        assert np.isnan(S[1]).all() and np.isnan(S[:, 1]).all()
        assert S[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="eps=-1.0 is out of range"):
        layer_scores(X, X, "cka", eps=-1.0, device="cpu")


def test_layer_caches_keep_anisotropic_layers_exact(tmp_path):
    # The workflow scores pairs from layer caches: centred Gram matrices plus
    # their float64 offsets must come back as they were saved.
    X, Y, xs, ys = models(TARGETS[-1])
    for name, F in (("x", X), ("y", Y)):
        save_layer_cache(LayerCache.from_features(F, device="cpu"), tmp_path / f"{name}.h5",
                         topk=[TOPK])
    lx, ly = load_layer_cache(tmp_path / "x.h5", "cpu"), load_layer_cache(tmp_path / "y.h5", "cpu")
    for metric, params in CASES:
        check(sweep(lx, ly, metric, **params), reference(metric, xs, ys, params), metric)
