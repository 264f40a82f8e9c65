"""The workflow's layer cache and pair steps follow the paper's clamp: one threshold
over all layers of an equal-width model, one per layer of a ragged model."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import spec_reference as ref
from prh.formats.pair import read_pair
from prh.steps import layer_cache, pair_scores

N = 40
CACHE = dict(q=0.95, exact=False, normalize=True, topk=[5], cca_dims=[4], layers=False,
             device="cpu")
METRICS = {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 5}, "cka": {},
           "unbiased_cka": {}, "cknna": {"topk": 5}, "svcca": {"cca_dim": 4}}


@pytest.fixture
def files(tmp_path, features_file):
    rng = np.random.default_rng(7)
    latent = rng.standard_normal((N, 6))
    # equal width, layers of very different scales: a shared threshold clamps
    # the loud layers hard and the quiet one not at all, unlike per-layer ones
    equal = [(latent @ rng.standard_normal((6, 16)) + rng.standard_normal((N, 16)))
             * s for s in (0.1, 1.0, 30.0)]
    equal[2][:, 0] += 200.0 * rng.standard_normal(N)  # heavy outliers in one layer
    ragged = [latent @ rng.standard_normal((6, w)) + rng.standard_normal((N, w))
              for w in (8, 12, 20)]
    equal = [x.astype(np.float32) for x in equal]
    ragged = [x.astype(np.float32) for x in ragged]
    features_file("equal.h5", equal, attrs={"model": "equal"})
    features_file("ragged.h5", ragged, attrs={"model": "ragged"})
    for name in ("equal", "ragged"):
        layer_cache.run(tmp_path / f"{name}.h5", tmp_path / f"{name}.cache.h5", **CACHE)
    pair_scores.run(tmp_path / "equal.cache.h5", tmp_path / "ragged.cache.h5",
                    tmp_path / "pair.h5", metrics=METRICS, model_x="equal", model_y="ragged",
                    device="cpu", calibration=None)
    return tmp_path, equal, ragged


def test_layer_caches_record_the_clamp_mode(files):
    d, _, _ = files
    with h5py.File(d / "equal.cache.h5") as f:
        assert f.attrs["clamp"] == "model"
    with h5py.File(d / "ragged.cache.h5") as f:
        assert f.attrs["clamp"] == "layer"
    assert layer_cache.clamp_mode([7]) == "layer"


@pytest.mark.parametrize("metric", list(METRICS))
def test_pair_scores_equal_the_paper_clamp_reading(files, metric):
    d, equal, ragged = files
    pair = read_pair(d / "pair.h5")
    params = METRICS[metric]
    # the definitions in float64: the equal-width model as one N x L x D block
    want = ref.layer_scores(np.stack(equal, axis=1), list(ragged), metric, **params)
    np.testing.assert_allclose(pair["xy"][metric], want, atol=1e-5)
    # and the per-layer clamp would have given other numbers for this model
    per_layer = ref.layer_scores(list(equal), list(ragged), metric, **params)
    if metric in ("cka", "unbiased_cka", "svcca"):
        assert np.abs(per_layer - want).max() > 1e-3


def test_alignment_device_auto_runs_the_layer_cache_and_pair_steps(files):
    # alignment.device: auto passes the schema; every job must accept it too
    d, _, _ = files
    layer_cache.run(d / "equal.h5", d / "auto.cache.h5", **{**CACHE, "device": "auto"})
    pair_scores.run(d / "auto.cache.h5", d / "ragged.cache.h5", d / "auto_pair.h5",
                    metrics={"cka": {}}, model_x="equal", model_y="ragged", device="auto",
                    calibration=None)
    np.testing.assert_allclose(read_pair(d / "auto_pair.h5")["xy"]["cka"],
                               read_pair(d / "pair.h5")["xy"]["cka"], atol=1e-6)
