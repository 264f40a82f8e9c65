"""The batched layer sweep (prh.sweep): same numbers as the per-pair
algorithm and the spec, bad input, and the public import path prh.alignment."""

import numpy as np
import pytest
import torch

import prh.sweep.blocks as blocks
import spec_reference as ref
from prh.sweep.cache import LayerCache
from prh.sweep.dispatch import layer_scores, sweep
from prh.metrics import get_metric, list_metrics, measure
from prh.preprocess import clamp_threshold, prepare_layers
from prh.scoring import best_layer_pair
from prh.formats.layer_cache import load_layer_cache, save_layer_cache

CPU = torch.device("cpu")


def params_for(metric):
    if metric == "svcca":
        return {"cca_dim": 4}
    if "knn" in metric or metric == "cknna":
        return {"topk": 5}
    return {}


def two_models(rng, n=40, widths_x=(6, 6, 6), widths_y=(5, 5)):
    """Models with shared latent structure, heavy-tailed entries (so the clamp bites)."""
    latent = rng.normal(size=(n, 4))

    def layers(widths):
        return [(latent @ rng.normal(size=(4, w)) + 0.7 * rng.standard_t(3, size=(n, w))).astype(np.float32)
                for w in widths]

    return layers(widths_x), layers(widths_y)


def stacked(layers):
    return np.stack(layers, axis=1)


@pytest.mark.parametrize("metric", list_metrics())
def test_sweep_equals_per_pair_loop_over_measure(metric):
    rng = np.random.default_rng(0)
    xs, ys = two_models(rng)
    X, Y = stacked(xs), stacked(ys)
    p = params_for(metric)
    S = layer_scores(X, Y, metric, device="cpu", **p)
    px = prepare_layers(X, "X", device=CPU)
    py = prepare_layers(Y, "Y", device=CPU)
    loop = np.array([[measure(metric, a, b, **p) for b in py] for a in px])
    assert S.shape == (3, 2)
    np.testing.assert_allclose(S, loop, atol=1e-5, rtol=0)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("metric", list_metrics())
def test_sweep_matches_spec_with_clamp_equal_widths(metric, exact):
    rng = np.random.default_rng(1)
    xs, ys = two_models(rng)
    X, Y = stacked(xs), stacked(ys)
    p = params_for(metric)
    got = layer_scores(X, Y, metric, exact=exact, device="cpu", **p)
    want = ref.layer_scores(X, Y, metric, exact=exact, **p)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("metric", list_metrics())
def test_sweep_matches_spec_with_layers_of_different_widths(metric, exact):
    rng = np.random.default_rng(2)
    xs, ys = two_models(rng, widths_x=(4, 9, 16), widths_y=(7, 3, 12, 5))
    p = params_for(metric)
    if metric == "svcca":
        p = {"cca_dim": 3}
    got = layer_scores(xs, ys, metric, exact=exact, device="cpu", **p)
    want = ref.layer_scores(xs, ys, metric, exact=exact, **p)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_layers_of_different_widths_are_clamped_one_by_one():
    rng = np.random.default_rng(3)
    small = rng.normal(size=(30, 4)).astype(np.float32)
    large = 50 * rng.normal(size=(30, 40)).astype(np.float32)
    as_list = prepare_layers([small, large], "X", normalize=False, device=CPU)
    t_small = np.quantile(np.abs(small), 0.95, axis=1).mean()
    t_large = np.quantile(np.abs(large), 0.95, axis=1).mean()
    assert as_list[0].abs().max() == pytest.approx(t_small, rel=1e-5)
    assert as_list[1].abs().max() == pytest.approx(t_large, rel=1e-5)
    # Over a stacked tensor one threshold serves all layers.
    same = [rng.normal(size=(30, 8)).astype(np.float32), 9 * rng.normal(size=(30, 8)).astype(np.float32)]
    both = torch.from_numpy(np.concatenate(same, axis=1))
    joint = np.quantile(np.abs(both.numpy()), 0.95, axis=1).mean()
    assert float(clamp_threshold(both, 0.95, exact=False)) == pytest.approx(joint, rel=1e-6)
    t_exact = clamp_threshold(both, 0.9, exact=True)
    flat = np.sort(np.abs(np.concatenate(same, axis=1)).ravel())
    assert float(t_exact) == flat[int(0.9 * flat.size)]


def test_q_of_one_disables_the_clamp():
    rng = np.random.default_rng(4)
    x = rng.standard_t(2, size=(20, 2, 6)).astype(np.float32)
    raw = prepare_layers(x, "X", q=1.0, normalize=False, device=CPU)
    np.testing.assert_array_equal(raw[1].numpy(), x[:, 1])


def test_small_memory_budget_gives_the_same_scores(monkeypatch):
    rng = np.random.default_rng(5)
    xs, ys = two_models(rng, widths_x=(5,) * 5, widths_y=(6,) * 4)
    full = {m: layer_scores(stacked(xs), stacked(ys), m, device="cpu", **params_for(m))
            for m in list_metrics()}
    monkeypatch.setattr(blocks, "_BLOCK_BYTES", 1)  # one X layer per block
    for m in list_metrics():
        chunked = layer_scores(stacked(xs), stacked(ys), m, device="cpu", **params_for(m))
        np.testing.assert_allclose(chunked, full[m], atol=1e-12, rtol=0)


def test_layer_caches_are_reused_across_metrics_and_pairs():
    rng = np.random.default_rng(6)
    xs, ys = two_models(rng)
    sx = LayerCache.from_features(stacked(xs), device="cpu")
    sy = LayerCache.from_features(stacked(ys), device="cpu")
    sweep(sx, sy, "mutual_knn", topk=5)
    gram = sx.grams()
    sweep(sx, sy, "cka")
    sweep(sx, sy, "cknna", topk=5)
    assert sx.grams() is gram  # computed once, shared
    assert ("knn", 5) in sx._cache


def test_layer_cache_file_round_trip_gives_the_same_scores(tmp_path):
    rng = np.random.default_rng(7)
    xs, ys = two_models(rng, widths_x=(4, 9, 16), widths_y=(7, 3, 12))
    sx = LayerCache.from_features(xs, device="cpu")
    sy = LayerCache.from_features(ys, device="cpu")
    save_layer_cache(sx, tmp_path / "x.h5", topk=[5], cca_dims=[3])
    save_layer_cache(sy, tmp_path / "y.h5", topk=[5], cca_dims=[3])
    lx, ly = load_layer_cache(tmp_path / "x.h5", "cpu"), load_layer_cache(tmp_path / "y.h5", "cpu")
    assert lx.widths == (4, 9, 16) and lx.n == 40
    for m in list_metrics():
        p = {"cca_dim": 3} if m == "svcca" else params_for(m)
        if get_metric(m).needs_layers:
            with pytest.raises(ValueError, match=f"{m} needs this model's preprocessed layers"):
                sweep(lx, ly, m, **p)
            continue
        # the same up to float32 rounding: row sums of a linear kernel come from
        # the features when they are at hand, else from the stored float32 K
        np.testing.assert_allclose(sweep(lx, ly, m, **p), sweep(sx, sy, m, **p), atol=1e-6)
    # k not stored: derived from the Gram matrices, same answer.
    np.testing.assert_array_equal(sweep(lx, ly, "mutual_knn", topk=3), sweep(sx, sy, "mutual_knn", topk=3))
    with pytest.raises(ValueError, match=r"cca_dim=2 needs this model.s features.*\[3\]"):
        sweep(lx, ly, "svcca", cca_dim=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5", "y.h5"]  # no temp files left
    # With its layers stored, a loaded model can compute any SVCCA basis again.
    save_layer_cache(sx, tmp_path / "x.h5", topk=[5], layers=True)
    with_layers = load_layer_cache(tmp_path / "x.h5", "cpu")
    np.testing.assert_allclose(sweep(with_layers, sy, "svcca", cca_dim=2),
                               sweep(sx, sy, "svcca", cca_dim=2), atol=1e-12)
    for m in list_metrics():
        if get_metric(m).needs_layers:
            np.testing.assert_allclose(sweep(with_layers, sy, m), sweep(sx, sy, m), atol=1e-12)


@pytest.mark.parametrize("marker, says", [
    ({}, "no prh_format attribute"),  # a stats file of prh before the rename
    ({"prh_format": "pair"}, "prh_format 'pair'"),  # another file's marker
    ({"prh_format": "layer_cache", "prh_format_version": 2}, "version 2"),
])
def test_a_file_without_the_layer_cache_marker_is_refused_by_name(tmp_path, marker, says):
    import h5py

    from prh.formats.layer_cache import check_same_cache_samples, read_cache_provenance

    xs, _ = two_models(np.random.default_rng(8))
    path = tmp_path / "glove.h5"
    save_layer_cache(LayerCache.from_features(xs, device="cpu"), path, topk=[5])
    with h5py.File(path, "a") as f:
        assert (f.attrs["prh_format"], f.attrs["prh_format_version"]) == ("layer_cache", 1)
        del f.attrs["prh_format"], f.attrs["prh_format_version"]
        f.attrs.update(marker)
    # the same layout with no marker: what the old writer left in results/<ds>/stats/
    for read in (lambda p: load_layer_cache(p, "cpu"), read_cache_provenance,
                 lambda p: check_same_cache_samples([p, p])):
        with pytest.raises(ValueError) as err:
            read(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{path} is not a prh layer cache") and says in msg
        assert "delete it and rerun the workflow" in msg


def test_best_layer_pair_takes_the_first_maximum_in_row_major_order():
    S = np.array([[0.1, 0.7, 0.2], [0.7, 0.3, 0.7]])
    assert best_layer_pair(S) == (0.7, (0, 1))
    assert best_layer_pair(np.array([[np.nan, 0.2], [0.5, np.nan]])) == (0.5, (1, 0))
    with pytest.raises(ValueError, match="2-D"):
        best_layer_pair(np.zeros(3))
    with pytest.raises(ValueError, match="only NaN"):
        best_layer_pair(np.full((2, 2), np.nan))


def test_sweep_bad_input():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20, 2, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="same number of samples: X has 20, Y has 19"):
        layer_scores(X, X[:19], "cka", device="cpu")
    with pytest.raises(ValueError, match=r"X must be 3-dimensional, got shape \(20, 10\)"):
        layer_scores(X.reshape(20, 10), X, "cka", device="cpu")
    with pytest.raises(ValueError, match=r"layers of Y disagree on the number of samples: \[20, 18\]"):
        layer_scores(X, [X[:, 0], X[:18, 1]], "cka", device="cpu")
    with pytest.raises(ValueError, match="q=1.5 is out of range"):
        layer_scores(X, X, "cka", q=1.5, device="cpu")
    with pytest.raises(ValueError, match="topk=20 is out of range"):
        layer_scores(X, X, "mutual_knn", topk=20, device="cpu")
    with pytest.raises(ValueError, match="unknown metric 'ckaa'"):
        layer_scores(X, X, "ckaa", device="cpu")
    with pytest.raises(ValueError, match="unknown parameter 'cca_dims'"):
        layer_scores(X, X, "svcca", cca_dims=3, device="cpu")
    bad = X.copy()
    bad[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match="Y contains 1 NaN or Inf"):
        layer_scores(X, bad, "cka", device="cpu")
    with pytest.raises(ValueError, match=r"X\[1\] contains"):
        layer_scores([X[:, 0], bad[:, 1]], X, "cka", device="cpu")


def test_a_dead_layer_of_zeros_scores_nan_and_the_others_finite():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(25, 3, 6)).astype(np.float32)
    X[:, 1] = 0.0
    for m in list_metrics():
        S = layer_scores(X, X, m, device="cpu", **params_for(m))
        assert np.isnan(S[1]).all() and np.isnan(S[:, 1]).all(), m
        keep = [0, 2]
        assert np.isfinite(S[np.ix_(keep, keep)]).all(), m


@pytest.mark.parametrize("q", [0.05, 0.5, 0.9, 0.95, 0.999])
def test_per_sample_quantile_matches_numpy_at_both_ends(q):
    rng = np.random.default_rng(10)
    x = rng.standard_t(3, size=(17, 301)).astype(np.float32)
    got = clamp_threshold(torch.from_numpy(x), q, exact=False)
    assert float(got) == pytest.approx(np.quantile(np.abs(x), q, axis=1).mean(), rel=1e-6)


def test_prh_alignment_is_the_public_path_to_the_sweep():
    import prh.alignment as alignment
    from prh.sweep import cache, dispatch, kernel

    homes = {"LayerCache": cache, "CONSTANT_SPREAD": cache, "sweep": dispatch,
             "permuted_sweep": dispatch, "permuted_sweeps": dispatch,
             "layer_scores": dispatch, "PERMUTATION_BATCH": kernel, "one_cpu_thread": blocks}
    assert set(alignment.__all__) == set(homes)
    for name, home in homes.items():
        assert getattr(alignment, name) is getattr(home, name), name
