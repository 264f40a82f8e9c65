"""HDF5 layout of embedding files: round trip, layout, dtypes, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from file_factories import write_features
from prh.formats import features as storage
from prh.alignment import layer_scores

WIDTHS = (16, 24, 1280)
N = 10


def _layers(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((N, d)).astype(np.float32) for d in WIDTHS]


def _write(path, layers, *, batch=4, dtype="float32", bpb=None, attrs=None):
    """Streamed in batches of tensors, as the embedding stage writes."""
    ids = [f"s{i:02d}" for i in range(N)]
    write_features(path, [torch.from_numpy(x) for x in layers], sample_ids=ids,
                   layer_names=["stem", "blocks.0.0", "head"],
                   attrs=attrs or {"model": "m", "modality": "vision", "pool": "mean"},
                   dtype=dtype, bpb=bpb, batch=batch)
    return ids


def test_round_trip_layout_and_metadata(tmp_path):
    path = tmp_path / "f.h5"
    layers = _layers()
    bpb = np.linspace(0.5, 2.0, N).astype(np.float32)
    ids = _write(path, layers, bpb=bpb, attrs={"model": "m", "modality": "language", "pool": "mean",
                                               "dataset": "d", "param_count": 123})
    got = storage.read_features(path)
    assert [g.shape for g in got] == [(N, d) for d in WIDTHS]  # widths kept, never padded
    for g, x in zip(got, layers):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, x)
    np.testing.assert_array_equal(storage.read_bpb(path), bpb)

    with h5py.File(path) as h5:
        assert sorted(h5["feats"].keys()) == ["000", "001", "002"]
        assert h5["feats/002"].shape == (N, 1280)
        assert h5["sample_ids"].shape == (N,) and h5["layer_names"].shape == (3,)
    meta = storage.read_metadata(path)
    assert meta["sample_ids"] == ids
    assert meta["layer_names"] == ["stem", "blocks.0.0", "head"]
    assert meta["widths"] == list(WIDTHS)
    assert meta["n_samples"] == N and meta["n_layers"] == 3 and meta["complete"] is True
    assert meta["model"] == "m" and meta["param_count"] == 123 and meta["dtype"] == "float32"
    assert meta["has_bpb"] and "created" in meta


def test_one_layer_reads_alone(tmp_path):
    path = tmp_path / "f.h5"
    layers = _layers()
    _write(path, layers)
    (only,) = storage.read_features(path, layers=[1])
    np.testing.assert_array_equal(only, layers[1])
    with pytest.raises(ValueError, match="out of range"):
        storage.read_features(path, layers=[3])


def test_float16_storage(tmp_path):
    path = tmp_path / "f.h5"
    layers = _layers()
    _write(path, layers, dtype="float16")
    with h5py.File(path) as h5:
        assert h5["feats/000"].dtype == np.float16
    got = storage.read_features(path)
    assert all(g.dtype == np.float32 for g in got)
    np.testing.assert_allclose(got[2], layers[2], rtol=1e-3, atol=1e-3)


def test_features_feed_layer_scores(tmp_path):
    path = tmp_path / "f.h5"
    _write(path, _layers())
    feats = storage.read_features(path)
    S = layer_scores(feats, feats, "mutual_knn", topk=3)
    assert S.shape == (3, 3)
    np.testing.assert_allclose(np.diag(S), 1.0)


def test_layer_keys_sort_in_layer_order():
    for n in (3, 81, 1000, 1234):
        keys = [storage.layer_key(i, n) for i in range(n)]
        assert sorted(keys) == keys and len(set(keys)) == n


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "f.h5"
    layers = _layers()
    with pytest.raises(KeyboardInterrupt):
        with storage.FeatureWriter(path, sample_ids=[str(i) for i in range(N)]) as w:
            w.write(0, [x[:4] for x in layers])
            raise KeyboardInterrupt  # a killed run
    assert list(tmp_path.iterdir()) == []


def test_missing_rows_leave_no_file(tmp_path):
    path = tmp_path / "f.h5"
    with pytest.raises(RuntimeError, match="never written"):
        with storage.FeatureWriter(path, sample_ids=[str(i) for i in range(N)]) as w:
            w.write(0, [x[:4] for x in _layers()])
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_rewrite(tmp_path):
    path = tmp_path / "f.h5"
    layers = _layers()
    _write(path, layers)
    with pytest.raises(ValueError, match="non-finite"):
        with storage.FeatureWriter(path, sample_ids=[str(i) for i in range(N)]) as w:
            w.write(0, [np.full((N, 3), np.nan, dtype=np.float32)])
    np.testing.assert_array_equal(storage.read_features(path)[0], layers[0])
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_bad_batches_are_refused(tmp_path):
    with storage.FeatureWriter(tmp_path / "f.h5", sample_ids=["a", "b"]) as w:
        with pytest.raises(ValueError, match="outside"):
            w.write(1, [np.zeros((2, 3))])
        w.write(0, [np.zeros((2, 3))])
        with pytest.raises(ValueError, match="width"):
            w.write(0, [np.zeros((2, 4))])


def test_is_complete(tmp_path):
    path = tmp_path / "f.h5"
    assert storage.is_complete(path) == (False, "missing")
    _write(path, _layers())
    assert storage.is_complete(path, {"model": "m"})[0]
    ok, why = storage.is_complete(path, {"model": "other"})
    assert not ok and "model" in why
    path.write_bytes(b"not hdf5")
    assert not storage.is_complete(path)[0]
