"""Files from anywhere stay inert: every HDF5 file prh reads holds its data
itself (no links out, no external or virtual storage), hand-written layers
are read in numeric order, a file: source from other samples is refused by
its manifest hash, and .npy/.npz files never unpickle, never allocate what
they only declare, and fail in one line naming the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from prh.datasets import Manifest, Sample
from prh.formats import features as storage
from prh.formats.alignment import read_alignment
from prh.formats.pair import read_pair, read_pairs, write_pair_block
from prh.formats.layer_cache import load_layer_cache, read_cache_provenance, save_layer_cache
from prh.formats.user_features import ids_file
from prh.steps import embed as embed_step

from plot_fixtures import alignment as alignment_file, pair as pair_file

IDS = [f"s{i}" for i in range(6)]
N = len(IDS)
PLAIN = "prh reads only datasets stored in the file itself"


@pytest.fixture
def manifest(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    samples = []
    for sid in IDS:
        img = tmp_path / f"{sid}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(img)
        samples.append(Sample(sid, f"caption {sid}", str(img)))
    return Manifest("toy", samples).save(tmp_path / "manifest.json")


def _import(src, manifest, tmp_path):
    """Import ``src`` as a file: source; returns the output path (which must
    not exist after a refusal)."""
    out = tmp_path / "features" / "mine.h5"
    model = {"source": f"file:{src}", "modality": "language", "batch_size": 2, "device": "cpu",
             "dtype": "float32", "storage_dtype": "float32", "pool": None}
    embed_step.run(model, manifest, out, name="mine")
    return out


def _refused(src, manifest, tmp_path, *parts):
    """The import fails in one line holding every part, and writes nothing."""
    with pytest.raises(ValueError) as err:
        _import(src, manifest, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(src) in msg, msg
    for part in parts:
        assert part in msg, msg
    assert not (tmp_path / "features" / "mine.h5").exists()
    return msg


def _layers(n_layers=2, width=4):
    rng = np.random.default_rng(1)
    return [rng.standard_normal((N, width)).astype(np.float32) for _ in range(n_layers)]


def _features(path, **attrs):
    with storage.FeatureWriter(path, sample_ids=IDS, layer_names=["a", "b"],
                               attrs={"modality": "language", **attrs}) as w:
        w.write(0, _layers())
    return path


@pytest.fixture
def other(tmp_path) -> Path:
    """Another HDF5 file and a raw file on disk, the data a hostile file points at."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["secret"] = np.full((N, 4), 7.0, dtype=np.float32)
    np.full((N, 4), 7.0, dtype="<f4").tofile(tmp_path / "raw.bin")
    return path


def _replace_layer(path, how, other):
    """Swap layer 1 of a features file for a dataset or link that reaches outside it."""
    with h5py.File(path, "a") as f:
        del f["feats/001"]
        if how == "external link":
            f["feats/001"] = h5py.ExternalLink(str(other), "/secret")
        elif how == "external storage":
            f.create_dataset("feats/001", shape=(N, 4), dtype="<f4",
                             external=[(str(other.parent / "raw.bin"), 0, N * 4 * 4)])
        elif how == "virtual dataset":
            layout = h5py.VirtualLayout(shape=(N, 4), dtype="float32")
            layout[:] = h5py.VirtualSource(str(other), "secret", shape=(N, 4))
            f.create_virtual_dataset("feats/001", layout)
        elif how == "dangling soft link":
            f["feats/001"] = h5py.SoftLink("/nonexistent")
        elif how == "soft link in the file":
            f["feats/001"] = h5py.SoftLink("/feats/000")


# --- 1. data outside the file ------------------------------------------------------


@pytest.mark.parametrize("how, says", [
    ("external link", "/feats/001 is an external link to /secret in"),
    ("external storage", "/feats/001 keeps its data in the external file"),
    ("virtual dataset", "/feats/001 is a virtual dataset"),
    ("dangling soft link", "/feats/001 is a soft link to /nonexistent"),
    # refused too: prh never writes links, and a layer that is another
    # layer under a second name is not the data its name says
    ("soft link in the file", "/feats/001 is a soft link to /feats/000"),
])
def test_file_source_whose_layer_lives_outside_the_file_is_refused(tmp_path, manifest, other,
                                                                   how, says):
    src = _features(tmp_path / "mine_src.h5")
    _replace_layer(src, how, other)
    _refused(src, manifest, tmp_path, says, PLAIN)


def test_every_prh_hdf5_format_refuses_a_link_out_of_the_file(tmp_path, other):
    import torch
    from prh.alignment import LayerCache

    feats = _features(tmp_path / "f.h5")
    cache = tmp_path / "layer_cache.h5"
    save_layer_cache(LayerCache.from_features([torch.from_numpy(x) for x in _layers()],
                                              device="cpu"),
                     cache, topk=[2], layers=True, sample_ids=IDS)
    pair = pair_file(tmp_path / "pair.h5", "x", "y", ["mutual_knn"])
    aligned = tmp_path / "alignment.h5"
    alignment_file(aligned, ["x", "y", "z"], ["mutual_knn"])
    reads = {feats: [storage.read_metadata, storage.read_features],
             cache: [load_layer_cache, read_cache_provenance],
             pair: [read_pair, lambda p: list(read_pairs(p))],
             aligned: [read_alignment]}
    where = {feats: "feats/extra", cache: "knn/k3", pair: "xy/extra", aligned: "mutual_knn/extra"}
    for path, readers in reads.items():
        for read in readers:
            read(path)  # readable as written
        with h5py.File(path, "a") as f:
            f[where[path]] = h5py.ExternalLink(str(other), "/secret")
        for read in readers:
            with pytest.raises(ValueError, match=f"{path}: /{where[path]} is an external link"):
                read(path)


def test_block_file_checks_the_pairs_it_reads(tmp_path, other):
    import json

    def one(x, y):
        return {"model_x": x, "model_y": y, "n_samples": N, "metrics": {"mutual_knn": {}},
                "scores": {("xy", "mutual_knn"): np.eye(2)}, "calibration": {}, "seed": 0}

    block = tmp_path / "block.h5"
    write_pair_block(block, "0-1", [one("a", "b"), one("a", "c")])
    with h5py.File(block, "a") as f:
        del f["pairs/a__c/xy/mutual_knn"]
        f["pairs/a__c/xy/mutual_knn"] = h5py.ExternalLink(str(other), "/secret")
    assert read_pair(block, ("a", "b"))["model_y"] == "b"  # the other pair is its own
    with pytest.raises(ValueError, match="/pairs/a__c/xy/mutual_knn is an external link"):
        read_pair(block, ("c", "a"))
    with pytest.raises(ValueError, match="/pairs/a__c/xy/mutual_knn is an external link"):
        list(read_pairs(block))
    # a link on the way to a pair is refused before it is followed
    with h5py.File(block, "a") as f:
        f.move("pairs/a__c", "elsewhere")
        f["pairs/a__c"] = h5py.SoftLink("/elsewhere")
        assert json.loads(f.attrs["pairs"]) == [["a", "b"], ["a", "c"]]
    with pytest.raises(ValueError, match="/pairs/a__c is a soft link to /elsewhere"):
        read_pair(block, ("a", "c"))


# --- 2. layer order of a hand-written file -------------------------------------------


def _hand_written(path, names, layer=lambda i: np.full((N, 3), float(i), dtype=np.float32)):
    with h5py.File(path, "w") as f:
        f.create_dataset("sample_ids", data=np.array(IDS, dtype=object),
                         dtype=h5py.string_dtype())
        for i, name in enumerate(names):
            f[f"feats/{name}"] = layer(i)
        f.create_dataset("layer_names", data=np.array([f"block{i}" for i in range(len(names))],
                                                      dtype=object), dtype=h5py.string_dtype())
    return path


def test_hand_written_layers_0_to_10_are_read_in_numeric_order(tmp_path, manifest):
    src = _hand_written(tmp_path / "mine_src.h5", [str(i) for i in range(11)])
    out = _import(src, manifest, tmp_path)
    got = storage.read_features(out)
    names = storage.read_metadata(out)["layer_names"]
    # layer i holds the value i, and its name says block<i>
    assert [float(a[0, 0]) for a in got] == [float(i) for i in range(11)]
    assert names == [f"block{i}" for i in range(11)]


@pytest.mark.parametrize("names, says", [
    (["0", "1", "last"], "feats/last is not a layer number; name the layers feats/0, feats/1"),
    (["0", "1", "01"], "feats/01 and feats/1 are both layer 1"),
])
def test_hand_written_layer_names_that_are_not_numbers_are_refused(tmp_path, manifest,
                                                                   names, says):
    src = _hand_written(tmp_path / "mine_src.h5", names)
    _refused(src, manifest, tmp_path, says)


@pytest.mark.parametrize("layer, says", [
    (lambda i: np.zeros(N, dtype=np.float32), "feats/1 is a 1-D float32 dataset"),
    (lambda i: np.array([f"{j}" for j in range(N)], dtype="S2").reshape(N, 1),
     "feats/1 is a 2-D |S2 dataset"),
])
def test_hand_written_layer_that_is_not_a_matrix_of_numbers_is_one_line(tmp_path, manifest,
                                                                       layer, says):
    src = _hand_written(tmp_path / "mine_src.h5", ["0", "1"],
                        layer=lambda i: np.zeros((N, 3), np.float32) if i == 0 else layer(i))
    _refused(src, manifest, tmp_path, says, "a layer is an (N, D) array of numbers")


def test_features_file_with_no_layers_is_one_line(tmp_path):
    path = _hand_written(tmp_path / "f.h5", [])
    with h5py.File(path, "a") as f:
        f.create_group("feats")
    for read in (storage.read_metadata, storage.read_features):
        with pytest.raises(ValueError, match=f"^{path}: 'feats' holds no layers$"):
            read(path)


def test_hand_written_layer_never_written_is_refused_not_read_as_zeros(tmp_path, manifest):
    src = _hand_written(tmp_path / "mine_src.h5", ["0"])
    with h5py.File(src, "a") as f:  # declared, never written: reads as fill values
        f.create_dataset("feats/1", shape=(N, 3), dtype="float32")
    _refused(src, manifest, tmp_path, "/feats/1 was never fully written")
    with h5py.File(src, "a") as f:  # half its chunks written
        del f["feats/1"]
        ds = f.create_dataset("feats/1", shape=(N, 3), dtype="float32", chunks=(1, 3))
        ds[: N // 2] = 1.0
    _refused(src, manifest, tmp_path, "/feats/1 was never fully written")


def test_hand_written_layer_declaring_terabytes_is_refused_before_reading(tmp_path, manifest):
    src = _hand_written(tmp_path / "mine_src.h5", ["0"])
    with h5py.File(src, "a") as f:
        ds = f.create_dataset("feats/1", shape=(N, 10**11), dtype="float32",
                              chunks=(N, 1 << 16), compression="gzip")
        ds[:, : 1 << 16] = 0.0  # one chunk written; the rest would read as zeros
    _refused(src, manifest, tmp_path, "/feats/1 was never fully written")


# --- 3. manifest hash ----------------------------------------------------------------


def test_file_source_from_other_samples_with_the_same_ids_is_refused(tmp_path, manifest):
    from prh.datasets import load_manifest

    here = load_manifest(manifest).content_sha256
    theirs = Manifest("toy", [Sample(i, f"another caption {i}", "") for i in IDS]).content_sha256
    src = _features(tmp_path / "mine_src.h5", manifest_sha256=theirs)
    _refused(src, manifest, tmp_path, f"manifest hash {theirs[:12]}",
             f"the manifest {manifest} is {here[:12]}")
    # the same file computed on these samples is imported
    _features(src, manifest_sha256=here)
    assert storage.read_metadata(_import(src, manifest, tmp_path))["manifest_sha256"] == here


# --- 4. numpy files --------------------------------------------------------------------


def test_npz_with_sample_ids_as_object_array_is_one_line(tmp_path, manifest):
    src = tmp_path / "mine_src.npz"
    np.savez(src, sample_ids=np.array(IDS, dtype=object), a=_layers()[0])
    _refused(src, manifest, tmp_path, "array 'sample_ids' holds Python objects",
             "np.array(ids, dtype=str)")


def test_h5_with_sample_ids_as_object_or_bytes_array_is_read(tmp_path, manifest):
    for dtype in (h5py.string_dtype(), "S4"):
        src = tmp_path / "mine_src.h5"
        _features(src)
        with h5py.File(src, "a") as f:
            del f["sample_ids"]
            f.create_dataset("sample_ids", data=np.array(IDS, dtype=object).astype(
                dtype if dtype == "S4" else object), dtype=dtype)
        assert storage.read_metadata(_import(src, manifest, tmp_path))["sample_ids"] == IDS


def test_h5_sample_ids_that_are_not_strings_are_one_line(tmp_path, manifest):
    src = _features(tmp_path / "mine_src.h5")
    with h5py.File(src, "a") as f:
        del f["sample_ids"]
        f["sample_ids"] = np.zeros((N, 2), dtype=np.float32)
    _refused(src, manifest, tmp_path, "sample_ids is a 2-D float32 dataset",
             "one string per row")


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".h5"])
def test_empty_features_file_is_one_line(tmp_path, manifest, suffix):
    src = tmp_path / f"mine_src{suffix}"
    src.write_bytes(b"")
    if suffix == ".npy":
        ids_file(src).write_text("\n".join(IDS) + "\n")
    _refused(src, manifest, tmp_path, "empty file (0 bytes)")


def test_truncated_npz_is_one_line(tmp_path, manifest):
    src = tmp_path / "mine_src.npz"
    np.savez(src, sample_ids=np.array(IDS), a=_layers()[0])
    src.write_bytes(src.read_bytes()[:-40])
    _refused(src, manifest, tmp_path, "not a readable .npz")


class _Payload:
    """Loading this pickle would create the file it names."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_pickle_is_never_loaded(tmp_path, manifest, suffix):
    ran = tmp_path / "pickle_ran"
    src = tmp_path / f"mine_src{suffix}"
    payload = np.array([_Payload(ran)] * N, dtype=object)
    # a pickle named like a numpy file, and a numpy file holding a pickled array
    with open(src, "wb") as fh:
        pickle.dump(payload, fh)
    if suffix == ".npy":
        ids_file(src).write_text("\n".join(IDS) + "\n")
    msg = _refused(src, manifest, tmp_path, f"not a {suffix} file", "prh never unpickles")
    assert "allow_pickle" not in msg
    if suffix == ".npz":
        np.savez(src, sample_ids=np.array(IDS), a=payload.reshape(N, 1))
        _refused(src, manifest, tmp_path, "array 'a' holds Python objects")
    else:
        np.save(src, payload.reshape(N, 1), allow_pickle=True)
        _refused(src, manifest, tmp_path, "holds Python objects")
    assert not ran.exists()


def _npy_header(shape) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_numpy_array_declaring_terabytes_is_refused_before_allocating(tmp_path, manifest,
                                                                      suffix):
    import zipfile

    src = tmp_path / f"mine_src{suffix}"
    if suffix == ".npy":
        src.write_bytes(_npy_header((N, 10**12)))
        ids_file(src).write_text("\n".join(IDS) + "\n")
    else:
        np.savez(src, sample_ids=np.array(IDS))
        with zipfile.ZipFile(src, "a") as z:
            z.writestr("a.npy", _npy_header((N, 10**12)))
    _refused(src, manifest, tmp_path, f"declares shape ({N}, {10**12})")


def test_npy_ids_file_that_is_not_utf8_is_one_line(tmp_path, manifest):
    src = tmp_path / "mine_src.npy"
    np.save(src, _layers()[0])
    ids_file(src).write_bytes(b"\xff\xfes0\n")
    _refused(src, manifest, tmp_path, f"{ids_file(src)} is not UTF-8 text")
