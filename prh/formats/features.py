"""HDF5 layout of one embedding file: the features of one model on one dataset.

One file per (dataset, model). Layout::

    /feats/<l>      (N, D_l) float32 or float16, one dataset per layer,
                    l = 0 .. L-1 written zero-padded ("000", "001", ...) so
                    that names sort in layer order; readers order them as
                    numbers (a hand-written "0" .. "10" reads "10" last) and
                    refuse other names. Widths may differ between
                    layers (EfficientNet blocks run from 16 to 1280 channels);
                    they are never padded to a common width. Each layer is a
                    separate dataset so one layer reads alone.
    /sample_ids     (N,) UTF-8 strings, the manifest's sample ids in order.
                    Row n of every layer belongs to sample_ids[n].
    /layer_names    (L,) UTF-8 strings, a readable name per layer
                    ("stem", "blocks.3.1", "hidden.12", ...).
    /bpb            (N,) float32, causal language models only: bits per byte
                    of each caption (see :mod:`prh.models.language`).

Attributes on the root group::

    model, modality ("vision" | "language"), pool, dataset, n_samples,
    manifest_sha256 (content hash of the prepared samples), param_count,
    dtype (of /feats), n_layers, prh_version, torch_version, timm_version,
    transformers_version, numpy_version, h5py_version, device, created
    (ISO 8601 UTC), seconds (wall time of the embedding), complete (True),
    weights ("pretrained" | "random") and seed (random weights only);
    causal language models add bpb_start_token (the token each caption's
    bits per byte is conditioned on, "" for none); transformers language
    models add max_caption_tokens (their token limit, 0 for none) and
    n_truncated_captions (how many captions were cut to it).

Writing is streamed: :class:`FeatureWriter` receives one batch of pooled
features at a time and writes its rows, so memory holds one batch, never the
N x L x D whole (81 layers x 8192 dims of a 65B model would not fit). The file
is written under a temporary name in the same folder and moved into place by
``os.replace`` only when every row is written, so a killed run never leaves a
partial file at the final path.

Every object must be stored in the file itself: no soft or external links,
external raw storage or virtual datasets (:func:`prh.jobio.h5_plain`).

Readers: :func:`read_features` returns the list of per-layer float32 arrays
(N x D_l) that :func:`prh.alignment.layer_scores` accepts;
:func:`read_metadata` returns the attributes, sample ids and layer names;
:func:`read_bpb` the bits per byte.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import h5py
import numpy as np
from ..jobio import (SoftFailFile, check_output_target, disk_full_error, is_disk_full, open_h5,
                     publish, temp_prefix)

FEATS = "feats"
SAMPLE_IDS = "sample_ids"
LAYER_NAMES = "layer_names"
BPB = "bpb"
STORAGE_DTYPES = ("float32", "float16")

_STR = h5py.string_dtype("utf-8")


def layer_key(index: int, n_layers: int) -> str:
    """Dataset name of layer ``index``: zero-padded to at least 3 digits so names sort."""
    width = max(3, len(str(max(n_layers - 1, 0))))
    return f"{index:0{width}d}"


def _as_str_list(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


class FeatureWriter:
    """Stream per-layer pooled features of N samples into ``path``, atomically.

    Use as a context manager::

        with FeatureWriter(path, sample_ids=ids, attrs={...}) as w:
            for start, feats in batches:
                w.write(start, feats)          # list of (B, D_l) arrays/tensors
        # the file appears at `path` only here, complete

    Layer datasets are created on the first write, when the widths are known
    (or by :meth:`create_layers`). :meth:`write_layer` writes rows of one
    layer alone, so that a file read layer by layer (an import) is written
    holding one block in memory. Every row of every layer must be written;
    closing with rows missing raises and leaves no file.
    """

    def __init__(self, path: str | os.PathLike, *, sample_ids: Sequence[str],
                 layer_names: Sequence[str] | None = None, attrs: dict[str, Any] | None = None,
                 dtype: str = "float32", with_bpb: bool = False):
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage dtype {dtype!r} is not supported; use one of {STORAGE_DTYPES}")
        self.path = Path(path)
        self.n = len(sample_ids)
        if self.n == 0:
            raise ValueError(f"{self.path}: no samples to write")
        self.sample_ids = list(sample_ids)
        self.layer_names = list(layer_names) if layer_names is not None else None
        self.attrs = dict(attrs or {})
        self.dtype = np.dtype(dtype)
        self.with_bpb = with_bpb
        self._written: np.ndarray | None = None  # (L, N): rows written, per layer
        self._tmp: Path | None = None
        self._sink: SoftFailFile | None = None
        self._h5: h5py.File | None = None
        self._layers: list[h5py.Dataset] | None = None

    def __enter__(self) -> "FeatureWriter":
        check_output_target(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.path), suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            # HDF5 never sees a failed write (a full disk): it would crash on close
            self._sink = SoftFailFile(self._tmp)
            self._h5 = h5py.File(self._sink, "w")
            self._h5.create_dataset(SAMPLE_IDS, data=np.array(self.sample_ids, dtype=object), dtype=_STR)
            if self.with_bpb:
                self._h5.create_dataset(BPB, shape=(self.n,), dtype="float32", fillvalue=np.nan)
            self._sink.check(self.path)
        except BaseException as err:
            self.__exit__(type(err), err, None)
            raise
        return self

    def create_layers(self, widths: Sequence[int]) -> None:
        """Create one dataset per layer, of these widths (once)."""
        if self._layers is not None:
            raise ValueError(f"{self.path}: the layers exist already")
        names = self.layer_names or [f"layer.{i}" for i in range(len(widths))]
        if len(names) != len(widths):
            raise ValueError(f"{self.path}: {len(names)} layer names for {len(widths)} layers")
        g = self._h5.create_group(FEATS)
        self._layers = []
        for i, d in enumerate(widths):
            # Row chunks keep one layer readable without touching the others and
            # let each batch land in few chunks.
            chunk_rows = max(1, min(self.n, (1 << 20) // max(1, d * self.dtype.itemsize)))
            self._layers.append(g.create_dataset(layer_key(i, len(widths)), shape=(self.n, d),
                                                 dtype=self.dtype, chunks=(chunk_rows, d)))
        self._h5.create_dataset(LAYER_NAMES, data=np.array(names, dtype=object), dtype=_STR)
        self.layer_names = names
        self._written = np.zeros((len(widths), self.n), dtype=bool)

    def write(self, start: int, feats: Sequence[Any], bpb: Any = None) -> None:
        """Write rows ``start .. start+B`` of every layer (``feats[l]`` is (B, D_l))."""
        arrays = [_to_numpy(f) for f in feats]
        b = arrays[0].shape[0]
        if any(a.ndim != 2 or a.shape[0] != b for a in arrays):
            raise ValueError(f"{self.path}: every layer of a batch must be (B, D_l); got "
                             f"{[a.shape for a in arrays]}")
        if start < 0 or start + b > self.n:
            raise ValueError(f"{self.path}: rows {start}..{start + b} are outside 0..{self.n}")
        if self._layers is None:
            self.create_layers([a.shape[1] for a in arrays])
        if len(arrays) != len(self._layers):
            raise ValueError(f"{self.path}: batch has {len(arrays)} layers, file has {len(self._layers)}")
        for i, a in enumerate(arrays):
            self._put(i, start, a)
        if self.with_bpb:
            if bpb is None:
                raise ValueError(f"{self.path}: this file stores bits per byte; the batch gave none")
            self._h5[BPB][start:start + b] = _to_numpy(bpb).reshape(-1)
        self._sink.check(self.path)
        self._written[:, start:start + b] = True

    def write_layer(self, index: int, start: int, rows: Any) -> None:
        """Write rows ``start .. start+B`` of layer ``index`` alone (``rows``
        is (B, D)); the layers must exist (:meth:`create_layers`). Not for
        files that store bits per byte, which :meth:`write` gives per batch."""
        if self._layers is None or not 0 <= index < len(self._layers):
            raise ValueError(f"{self.path}: no layer {index}; create the layers first")
        if self.with_bpb:
            raise ValueError(f"{self.path}: this file stores bits per byte; write whole batches")
        a = _to_numpy(rows)
        if a.ndim != 2 or start < 0 or start + a.shape[0] > self.n:
            raise ValueError(f"{self.path}: rows of shape {a.shape} at {start} do not fit "
                             f"layer {index} ({self.n} rows)")
        self._put(index, start, a)
        self._sink.check(self.path)
        self._written[index, start:start + a.shape[0]] = True

    def _put(self, index: int, start: int, a: np.ndarray) -> None:
        ds, b = self._layers[index], a.shape[0]
        if a.shape[1] != ds.shape[1]:
            raise ValueError(f"{self.path}: layer {ds.name} has width {ds.shape[1]}, batch gives {a.shape[1]}")
        if not np.isfinite(a).all():
            raise ValueError(f"{self.path}: non-finite features in layer {ds.name}, rows {start}..{start + b}")
        if self.dtype == np.float16:
            big = float(np.abs(a).max(initial=0.0))
            if big > float(np.finfo(np.float16).max):
                raise ValueError(f"{self.path}: layer {ds.name.rsplit('/', 1)[-1]} "
                                 f"({self.layer_names[index]}) has "
                                 f"|value| {big:.3g} beyond float16's range (65504); "
                                 "use storage_dtype: float32 for this model")
        ds[start:start + b] = a.astype(self.dtype, copy=False)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._finish(exc_type)
        except Exception as err:
            for e in (err, exc):
                if is_disk_full(e):
                    raise disk_full_error(self.path, e) from None
            raise
        if exc is not None and is_disk_full(exc):
            raise disk_full_error(self.path, exc) from None

    def _finish(self, exc_type) -> None:
        try:
            if exc_type is None:
                done = (np.zeros(self.n, dtype=bool) if self._written is None
                        else self._written.all(axis=0))
                if not done.all():
                    missing = int((~done).sum())
                    raise RuntimeError(f"{self.path}: {missing} of {self.n} rows were never written")
                attrs = dict(self.attrs)
                attrs.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
                attrs.update(n_samples=self.n, n_layers=len(self._layers), dtype=self.dtype.name,
                             complete=True)
                for k, v in attrs.items():
                    # str() turns str subclasses (torch's TorchVersion) into plain
                    # strings, which h5py stores as UTF-8.
                    self._h5.attrs[k] = "" if v is None else (str(v) if isinstance(v, str) else v)
            h5, self._h5 = self._h5, None
            if h5 is not None:
                h5.close()
            if exc_type is None:
                self._sink.check(self.path)
                publish(self._tmp, self.path)
                self._tmp = None
        finally:
            # Close at most once: a second close of a file whose first close
            # failed (a full disk) raises again and would skip the unlink.
            h5, self._h5 = self._h5, None
            if h5 is not None:
                try:
                    h5.close()
                except Exception:
                    pass
            if self._sink is not None:
                self._sink.close()
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu")
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    a = np.asarray(x)
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def _read_strings(h5: h5py.File, key: str, path: Any) -> list[str]:
    """A 1-D dataset of strings (or integers) as a list of str; [] if absent."""
    if key not in h5:
        return []
    ds = h5[key]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or not (
            h5py.check_string_dtype(ds.dtype) or ds.dtype.kind in "SUiu"):
        what = f"a {ds.ndim}-D {ds.dtype} dataset" if isinstance(ds, h5py.Dataset) else "a group"
        raise ValueError(f"{path}: {key} is {what}; write it as one string per row "
                         f"(dtype=h5py.string_dtype())")
    return _as_str_list(ds[...])


def _open(path: str | os.PathLike) -> h5py.File:
    return open_h5(path, "embedding file")


def numbered(group: h5py.Group, path: Any) -> list[str]:
    """The names in ``group`` in layer order. They must be numbers and are
    ordered as numbers, so that a hand-written ``feats/0 .. feats/10`` reads
    10 last, as prh's zero-padded names do."""
    where = group.name.strip("/")
    names = list(group.keys())
    bad = [n for n in names if not re.fullmatch(r"[0-9]+", n)]
    if bad:
        raise ValueError(f"{path}: {where}/{bad[0]} is not a layer number; name the layers "
                         f"{where}/0, {where}/1, ... in layer order")
    order = sorted(names, key=int)
    same = [(a, b) for a, b in zip(order, order[1:]) if int(a) == int(b)]
    if same:
        raise ValueError(f"{path}: {where}/{same[0][0]} and {where}/{same[0][1]} are both "
                         f"layer {int(same[0][0])}; keep one")
    return order


def _layer_keys(h5: h5py.File, path: Any) -> list[str]:
    if not isinstance(h5.get(FEATS), h5py.Group):
        raise ValueError(f"{path}: no '{FEATS}' group; not a prh embedding file")
    keys = numbered(h5[FEATS], path)
    if not keys:
        raise ValueError(f"{path}: '{FEATS}' holds no layers")
    for k in keys:
        ds = h5[FEATS][k]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.dtype.kind not in "fiu":
            what = (f"a {ds.ndim}-D {ds.dtype} dataset" if isinstance(ds, h5py.Dataset)
                    else "a group")
            raise ValueError(f"{path}: {FEATS}/{k} is {what}; a layer is an (N, D) array of numbers")
    return keys


# deflate, HDF5's usual compression, shrinks data at most about 1032 times
MAX_RATIO = 1100


def _stored(ds: h5py.Dataset, path: Any) -> h5py.Dataset:
    """A layer whose every row is stored in the file: a dataset HDF5 created but
    was never (fully) written reads as its fill value, zeros by default, and
    one whose declared size is far beyond its stored bytes would fill memory
    before it could be checked."""
    stored = ds.id.get_storage_size()
    chunks = 0 if ds.chunks is None else ds.id.get_num_chunks()
    expect = (int(np.prod([-(-n // c) for n, c in zip(ds.shape, ds.chunks)]))
              if ds.chunks is not None else 0)
    if ds.nbytes and (stored == 0 or chunks < expect):
        raise ValueError(f"{path}: {ds.name} was never fully written (rows would read as "
                         "fill values); write every row")
    if ds.nbytes > MAX_RATIO * stored:
        raise ValueError(f"{path}: {ds.name} declares shape {ds.shape} ({ds.nbytes} bytes) "
                         f"but stores {stored}, more than compression could pack; write it "
                         "again, uncompressed or with gzip")
    return ds


def read_features(path: str | os.PathLike, layers: Iterable[int] | None = None) -> list[np.ndarray]:
    """Per-layer features as float32 arrays (N, D_l), in layer order.

    ``layers`` selects layer indices (default all); each is read alone.
    """
    with _open(path) as h5:
        keys = _layer_keys(h5, path)
        idx = range(len(keys)) if layers is None else list(layers)
        out = []
        for i in idx:
            if not 0 <= i < len(keys):
                raise ValueError(f"{path}: layer {i} out of range 0..{len(keys) - 1}")
            out.append(_stored(h5[FEATS][keys[i]], path)[...].astype(np.float32, copy=False))
        return out


@contextlib.contextmanager
def open_layers(path: str | os.PathLike) -> Iterator[list[h5py.Dataset]]:
    """The layer datasets of a features file, in layer order, each checked
    as :func:`read_features` checks it, to read in row ranges while the file
    stays open (the ``with`` block): an import holds one block, not a layer."""
    with _open(path) as h5:
        yield [_stored(h5[FEATS][k], path) for k in _layer_keys(h5, path)]


def read_bpb(path: str | os.PathLike) -> np.ndarray | None:
    """Per-sample bits per byte (N,), or None for models that have none."""
    with _open(path) as h5:
        return h5[BPB][...] if BPB in h5 else None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes plus ``sample_ids``, ``layer_names``, ``widths`` and ``has_bpb``."""
    with _open(path) as h5:
        meta: dict[str, Any] = {}
        for k, v in h5.attrs.items():
            if isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, np.generic):
                v = v.item()
            meta[k] = v
        keys = _layer_keys(h5, path)
        meta["sample_ids"] = _read_strings(h5, SAMPLE_IDS, path)
        meta["layer_names"] = _read_strings(h5, LAYER_NAMES, path)
        meta["widths"] = [int(h5[FEATS][k].shape[1]) for k in keys]
        meta["has_bpb"] = BPB in h5
        return meta


def is_complete(path: str | os.PathLike, expect: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Whether ``path`` is a finished embedding file whose attributes equal ``expect``.

    Returns (ok, reason); the reason says what differs when not ok.
    """
    p = Path(path)
    if not p.exists():
        return False, "missing"
    try:
        meta = read_metadata(p)
    except (ValueError, OSError, KeyError) as e:
        return False, f"unreadable ({e})"
    if not meta.get("complete"):
        return False, "not marked complete"
    for k, v in (expect or {}).items():
        if meta.get(k) != v:
            return False, f"{k} is {meta.get(k)!r}, expected {v!r}"
    return True, "up to date"
