"""Features computed outside prh (model source ``file:<path>``): reader,
checks and import into prh's features layout (:mod:`prh.formats.features`).

Accepted files, each naming its sample ids, which must equal the dataset
manifest's ids in order (row n of every layer is sample ``sample_ids[n]``):

- ``.h5`` / ``.hdf5`` in prh's own features layout (``feats/<l>``,
  ``sample_ids``, optional ``layer_names``), e.g. a copy of another run's file;
- ``.npz``: an array ``sample_ids`` (strings), optionally ``layer_names``,
  and every other array is one layer (N, D_l), in the order they were saved;
- ``.npy``: one array, (N, D) for one layer or (L, N, D) for L layers, with
  the ids one per line in the text file beside it (``feats.npy`` ->
  ``feats.ids.txt``); a .npy file cannot hold strings without pickle.

An ``.h5`` must hold its data itself (no links, external or virtual storage;
:func:`prh.jobio.h5_plain`), its layers named by number, and, if it records
the ``manifest_sha256`` of the samples it was computed on (prh's own files
do), that hash must be the dataset's: equal ids on other captions or images
are refused. Arrays are never unpickled: a ``.npz``/``.npy`` holding Python
objects is refused.

Layer names come from the config (``layer_names``), else the file, else
``layer.<i>``. Every check fails in one line naming the file; nothing is
written at the output path unless every check passed (the features writer
is atomic).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SAMPLE_IDS = "sample_ids"
LAYER_NAMES = "layer_names"


class Refused(ValueError):
    """A check of this module refused the file (its message is final)."""


def ids_file(path: str | os.PathLike) -> Path:
    """The sample-id list beside a .npy file."""
    p = Path(path)
    return p.with_name(p.name[: -len(".npy")] + ".ids.txt")


def _strings(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _numpy_error(p: Path, err: BaseException, member: str | None = None) -> ValueError:
    """One line for a .npy/.npz numpy cannot read; pickled content is named as
    such (numpy's own message suggests loading it unsafely)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    what = f"array {member!r}" if member else "it"
    if "pickle" in text or "Object arrays" in text:
        return ValueError(f"features file {p}: {what} holds Python objects (a pickle), which "
                          "prh never loads; save plain arrays: numbers, and the ids as "
                          "np.array(ids, dtype=str)")
    return ValueError(f"features file {p}: not a readable {p.suffix} ({text}); write it again")


def _check_magic(p: Path, prefixes: tuple[bytes, ...], writer: str) -> None:
    """numpy takes any file that is neither .npy nor .npz for a pickle; prh
    only says it is not the format its suffix names."""
    with open(p, "rb") as fh:
        head = fh.read(max(len(x) for x in prefixes))
    if not head.startswith(prefixes):
        raise Refused(f"features file {p}: not a {p.suffix} file (numpy's {writer} writes "
                      "one); prh never unpickles")


def _check_declared(p: Path, fh: Any, stored: int, member: str | None = None) -> None:
    """Refuse an array whose header declares more bytes than the file can
    hold: numpy allocates the declared size before it reads."""
    version = np.lib.format.read_magic(fh)
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise Refused(f"features file {p}: .npy format version {version} is not read; "
                      "save it with numpy's np.save / np.savez")
    shape, _, dtype = reader(fh)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > stored:
        where = f"array {member!r}" if member else "it"
        raise Refused(f"features file {p}: {where} declares shape {tuple(shape)} "
                      f"({declared} bytes) but holds {stored} bytes; write it again")


def read_user_features(path: str | os.PathLike) -> dict[str, Any]:
    """``{"sample_ids", "layer_names" (or None), "layers" (list of (N, D_l)),
    "attrs"}`` of a features file; a file that cannot be read this way is a
    one-line ValueError naming it. Pickled arrays are never loaded."""
    p = Path(path)
    if not p.is_file():
        raise Refused(f"features file {p}: no such file")
    if p.stat().st_size == 0:
        raise Refused(f"features file {p}: empty file (0 bytes); write it again")
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        from .features import read_features, read_metadata

        meta = read_metadata(p)
        if not meta["sample_ids"]:
            raise Refused(f"features file {p}: no 'sample_ids' dataset")
        attrs = {k: meta[k] for k in ("modality", "param_count", "model", "manifest_sha256")
                 if k in meta}
        return {"sample_ids": meta["sample_ids"], "layer_names": meta["layer_names"] or None,
                "layers": read_features(p), "attrs": attrs}
    if suffix == ".npz":
        return _read_npz(p)
    if suffix == ".npy":
        return _read_npy(p)
    raise Refused(f"features file {p}: {p.suffix or 'no suffix'} is not .h5, .npz or .npy")


def _read_npz(p: Path) -> dict[str, Any]:
    import zipfile
    import zlib

    from .features import MAX_RATIO

    _check_magic(p, (b"PK\x03\x04", b"PK\x05\x06"), "np.savez")
    member = None
    try:
        with np.load(p, allow_pickle=False) as data:
            if SAMPLE_IDS not in data.files:
                raise Refused(f"features file {p}: no array 'sample_ids'; save the ids "
                              "with np.savez(..., sample_ids=np.array(ids), ...)")
            arrays = {}
            for member in data.files:
                if member + ".npy" not in data.zip.namelist():
                    raise Refused(f"features file {p}: {member} in the archive is not a "
                                  "numpy array; save only arrays with np.savez")
                info = data.zip.getinfo(member + ".npy")
                if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                    raise Refused(f"features file {p}: array {member!r} unpacks to "
                                  f"{info.file_size} bytes from {info.compress_size}; "
                                  "write it again")
                with data.zip.open(info) as fh:
                    _check_declared(p, fh, info.file_size, member)
                arrays[member] = data[member]
    except Refused:
        raise
    except ValueError as err:
        raise _numpy_error(p, err, member) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise _numpy_error(p, err, member) from None
    ids = _strings(arrays.pop(SAMPLE_IDS))
    names = arrays.pop(LAYER_NAMES, None)
    return {"sample_ids": ids, "layer_names": None if names is None else _strings(names),
            "layers": list(arrays.values()), "attrs": {}}


def _read_npy(p: Path) -> dict[str, Any]:
    _check_magic(p, (np.lib.format.MAGIC_PREFIX,), "np.save")
    try:
        with open(p, "rb") as fh:
            _check_declared(p, fh, p.stat().st_size)
        array = np.load(p, allow_pickle=False)
    except Refused:
        raise
    except ValueError as err:
        raise _numpy_error(p, err) from None
    except (OSError, EOFError) as err:
        raise _numpy_error(p, err) from None
    side = ids_file(p)
    if not side.is_file():
        raise Refused(f"features file {p}: its sample ids belong in {side}, one per line")
    try:
        ids = [line.rstrip("\r\n") for line in side.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as err:
        raise Refused(f"features file {p}: {side} is not UTF-8 text (byte {err.start}); "
                      "write the ids one per line in UTF-8") from None
    if array.ndim == 2:
        layers = [array]
    elif array.ndim == 3:
        layers = list(array)
    else:
        raise Refused(f"features file {p}: shape {array.shape}; a .npy holds (N, D) "
                      "or (L, N, D)")
    return {"sample_ids": ids, "layer_names": None, "layers": layers, "attrs": {}}


def check_sample_ids(path: str | os.PathLike, ids: Sequence[str], expected: Sequence[str],
                     manifest: str | os.PathLike) -> None:
    """The file's ids must be the manifest's, in order; otherwise one line
    naming the file, the first differing position and both ids."""
    for n, (got, want) in enumerate(zip(ids, expected)):
        if got != want:
            raise ValueError(f"features file {path}: row {n} is sample {got!r}, the manifest "
                             f"{manifest} has {want!r} there; write the rows in manifest order")
    if len(ids) != len(expected):
        n = min(len(ids), len(expected))
        what = (f"missing sample {expected[n]!r} (row {n})" if len(ids) < len(expected)
                else f"extra sample {ids[n]!r} (row {n})")
        raise ValueError(f"features file {path}: {len(ids)} samples, the manifest {manifest} "
                         f"has {len(expected)}: {what}")


def check_layers(path: str | os.PathLike, layers: Sequence[np.ndarray], n: int,
                 names: Sequence[str] | None) -> None:
    if not layers:
        raise ValueError(f"features file {path}: no layer arrays")
    for i, a in enumerate(layers):
        if a.ndim != 2 or a.shape[0] != n:
            raise ValueError(f"features file {path}: layer {i} has shape {a.shape}, expected "
                             f"({n}, D): one row per sample")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"features file {path}: layer {i} is {a.dtype}, not numbers")
        if not np.isfinite(a).all():
            raise ValueError(f"features file {path}: layer {i} has NaN or infinite values")
    if names is not None and len(names) != len(layers):
        raise ValueError(f"features file {path}: {len(names)} layer names for {len(layers)} layers")


def import_features(path: str | os.PathLike, out: str | os.PathLike, *, model: str, modality: str,
                    manifest_ids: Sequence[str], manifest: str | os.PathLike, dataset: str,
                    manifest_sha256: str, layer_names: Sequence[str] | None = None,
                    dtype: str = "float32", source: str = "") -> dict[str, Any]:
    """Check a features file against the manifest and write it to ``out`` in
    prh's layout; returns ``n_layers``."""
    from .. import __version__
    from .features import FeatureWriter

    data = read_user_features(path)
    check_sample_ids(path, data["sample_ids"], manifest_ids, manifest)
    recorded = str(data["attrs"].get("manifest_sha256") or "")
    if recorded and recorded != manifest_sha256:
        raise ValueError(f"features file {path}: computed on samples with manifest hash "
                         f"{recorded[:12]}, the manifest {manifest} is {manifest_sha256[:12]}: "
                         "same ids, other captions or images; compute the features on this "
                         "dataset's samples")
    names = list(layer_names) if layer_names is not None else data["layer_names"]
    check_layers(path, data["layers"], len(manifest_ids), names)
    declared = data["attrs"].get("modality")
    if declared and declared != modality:
        raise ValueError(f"features file {path}: holds {declared} features, the config says "
                         f"{modality}; fix models.{model}.modality")
    attrs = {"model": model, "modality": modality, "pool": "", "pool_requested": "",
             "dataset": dataset, "manifest_sha256": manifest_sha256, "prh_version": __version__,
             "source": source or f"file:{path}", "weights": "pretrained",
             "imported_from": str(path)}
    if "param_count" in data["attrs"]:
        attrs["param_count"] = data["attrs"]["param_count"]
    with FeatureWriter(out, sample_ids=manifest_ids, layer_names=names, attrs=attrs,
                       dtype=dtype) as writer:
        writer.write(0, [np.asarray(a, dtype=np.float32) if a.dtype.kind != "f" else a
                         for a in data["layers"]])
    return {"n_layers": len(data["layers"])}
