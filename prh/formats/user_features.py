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

The import streams: every check that needs no values (ids, shapes, types,
the manifest hash, declared sizes, pickles) runs on the headers first, then
each layer is read and written in blocks of rows (:data:`BLOCK_BYTES`): a
``.npy`` through a read-only memory map, an ``.h5`` layer by row ranges
(aligned to its chunks), an ``.npz`` member as it unpacks (a Fortran-ordered
member whole, one layer at a time). Memory holds one block, not the file,
whatever its size; a NaN found in a late block still leaves no output.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

SAMPLE_IDS = "sample_ids"
LAYER_NAMES = "layer_names"
#: bytes of one block of rows read from a layer and written to the output
BLOCK_BYTES = 8 << 20


class Refused(ValueError):
    """A check of this module refused the file (its message is final)."""


def ids_file(path: str | os.PathLike) -> Path:
    """The sample-id list beside a .npy file."""
    p = Path(path)
    return p.with_name(p.name[: -len(".npy")] + ".ids.txt")


def _strings(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _numpy_error(p: Path, err: BaseException, member: str | None = None) -> Refused:
    """One line for a .npy/.npz numpy cannot read; pickled content is named as
    such (numpy's own message suggests loading it unsafely)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    what = f"array {member!r}" if member else "it"
    if "pickle" in text or "Object arrays" in text:
        return Refused(f"features file {p}: {what} holds Python objects (a pickle), which "
                       "prh never loads; save plain arrays: numbers, and the ids as "
                       "np.array(ids, dtype=str)")
    return Refused(f"features file {p}: not a readable {p.suffix} ({text}); write it again")


def _check_magic(p: Path, prefixes: tuple[bytes, ...], writer: str) -> None:
    """numpy takes any file that is neither .npy nor .npz for a pickle; prh
    only says it is not the format its suffix names."""
    with open(p, "rb") as fh:
        head = fh.read(max(len(x) for x in prefixes))
    if not head.startswith(prefixes):
        raise Refused(f"features file {p}: not a {p.suffix} file (numpy's {writer} writes "
                      "one); prh never unpickles")


def _check_declared(p: Path, fh: Any, stored: int,
                    member: str | None = None) -> tuple[tuple[int, ...], bool, np.dtype]:
    """An array's header (shape, Fortran order, dtype), read without its
    data; refused when it declares more bytes than the file can hold (numpy
    would allocate the declared size before reading) or holds Python objects."""
    version = np.lib.format.read_magic(fh)
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise Refused(f"features file {p}: .npy format version {version} is not read; "
                      "save it with numpy's np.save / np.savez")
    shape, fortran, dtype = reader(fh)
    if dtype.hasobject:
        raise _numpy_error(p, ValueError("Object arrays"), member)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > stored:
        where = f"array {member!r}" if member else "it"
        raise Refused(f"features file {p}: {where} declares shape {tuple(shape)} "
                      f"({declared} bytes) but holds {stored} bytes; write it again")
    return tuple(shape), fortran, dtype



@dataclass
class Layer:
    """One layer of a features file: shape and dtype from its header, its
    rows read on demand, one block at a time."""

    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[int], Iterator[np.ndarray]]  # rows per block -> the blocks, in row order

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) pairs covering the layer; a block has about
        ``rows`` rows (an ``.h5`` layer's are whole chunks)."""
        start = 0
        for block in self.read(rows):
            n = block.shape[0]
            yield start, block
            del block  # before the next one is read: one block in memory, not two
            start += n


@dataclass
class UserFeatures:
    """A features file opened for import: what its headers say."""

    sample_ids: list[str]
    layer_names: list[str] | None
    layers: list[Layer]
    attrs: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def open_user_features(path: str | os.PathLike) -> Iterator[UserFeatures]:
    """A features file's ids, layer names, attributes and layers (read
    lazily, inside the ``with`` block); a file that cannot be read this way
    is a one-line ValueError naming it. Pickled arrays are never loaded."""
    p = Path(path)
    if not p.is_file():
        raise Refused(f"features file {p}: no such file")
    if p.stat().st_size == 0:
        raise Refused(f"features file {p}: empty file (0 bytes); write it again")
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        opener = _open_h5
    elif suffix == ".npz":
        opener = _open_npz
    elif suffix == ".npy":
        opener = _open_npy
    else:
        raise Refused(f"features file {p}: {p.suffix or 'no suffix'} is not .h5, .npz or .npy")
    with opener(p) as data:
        yield data


@contextlib.contextmanager
def _open_h5(p: Path) -> Iterator[UserFeatures]:
    from .features import open_layers, read_metadata

    meta = read_metadata(p)
    if not meta["sample_ids"]:
        raise Refused(f"features file {p}: no 'sample_ids' dataset")
    attrs = {k: meta[k] for k in ("modality", "param_count", "model", "manifest_sha256")
             if k in meta}
    with open_layers(p) as datasets:
        yield UserFeatures(meta["sample_ids"], meta["layer_names"] or None,
                           [Layer(ds.shape, ds.dtype, _h5_reader(ds)) for ds in datasets], attrs)


def _h5_reader(ds: Any) -> Callable[[int], Iterator[np.ndarray]]:
    def read(rows: int) -> Iterator[np.ndarray]:
        # whole chunks per block: a chunk cut across blocks would be unpacked twice
        step = rows if ds.chunks is None else max(1, rows // ds.chunks[0]) * ds.chunks[0]
        for start in range(0, ds.shape[0], step):
            yield ds[start:start + step]
    return read


@contextlib.contextmanager
def _open_npz(p: Path) -> Iterator[UserFeatures]:
    from .features import MAX_RATIO

    _check_magic(p, (b"PK\x03\x04", b"PK\x05\x06"), "np.savez")
    try:
        zf = zipfile.ZipFile(p)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError) as err:
        raise _numpy_error(p, err) from None
    with zf:
        names = [n[:-len(".npy")] if n.endswith(".npy") else n for n in zf.namelist()]
        if SAMPLE_IDS not in names:
            raise Refused(f"features file {p}: no array 'sample_ids'; save the ids "
                          "with np.savez(..., sample_ids=np.array(ids), ...)")
        headers = {}
        for member in names:
            if member + ".npy" not in zf.namelist():
                raise Refused(f"features file {p}: {member} in the archive is not a "
                              "numpy array; save only arrays with np.savez")
            info = zf.getinfo(member + ".npy")
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise Refused(f"features file {p}: array {member!r} unpacks to "
                              f"{info.file_size} bytes from {info.compress_size}; "
                              "write it again")
            with _npz_errors(p, member), zf.open(info) as fh:
                headers[member] = (info, _check_declared(p, fh, info.file_size, member))
        small = {}
        for member in (SAMPLE_IDS, LAYER_NAMES):
            if member in headers:
                with _npz_errors(p, member), zf.open(headers.pop(member)[0]) as fh:
                    small[member] = np.lib.format.read_array(fh, allow_pickle=False)
        names_array = small.get(LAYER_NAMES)
        layers = [Layer(header[0], header[2], _npz_reader(p, zf, info, member, header))
                  for member, (info, header) in headers.items()]
        yield UserFeatures(_strings(small[SAMPLE_IDS]),
                           None if names_array is None else _strings(names_array), layers)


@contextlib.contextmanager
def _npz_errors(p: Path, member: str) -> Iterator[None]:
    """A damaged archive member (bad CRC, cut short) as one line naming it."""
    try:
        yield
    except Refused:
        raise
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise _numpy_error(p, err, member) from None


def _npz_reader(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, member: str,
                header: tuple[tuple[int, ...], bool, np.dtype]) -> Callable[[int], Iterator[np.ndarray]]:
    shape, fortran, dtype = header

    def read(rows: int) -> Iterator[np.ndarray]:
        with _npz_errors(p, member), zf.open(info) as fh:
            if fortran or len(shape) != 2:  # rows not contiguous: the member whole, one layer
                yield np.lib.format.read_array(fh, allow_pickle=False)
                return
            _check_declared(p, fh, info.file_size, member)
            for start in range(0, shape[0], rows):
                block = np.empty((min(rows, shape[0] - start), shape[1]), dtype=dtype)
                _read_into(fh, memoryview(block).cast("B"), member, start)
                yield block
                del block
    return read


def _read_into(fh: Any, buf: memoryview, member: str, start: int) -> None:
    """Fill ``buf`` from the archive member in pieces: one read of the whole
    block would hold it twice (zipfile joins what it unpacks)."""
    done = 0
    while done < len(buf):
        piece = fh.read(min(len(buf) - done, 1 << 16))
        if not piece:
            raise EOFError(f"array {member!r} ends within rows from {start}")
        buf[done:done + len(piece)] = piece
        done += len(piece)


@contextlib.contextmanager
def _open_npy(p: Path) -> Iterator[UserFeatures]:
    _check_magic(p, (np.lib.format.MAGIC_PREFIX,), "np.save")
    try:
        with open(p, "rb") as fh:
            _check_declared(p, fh, p.stat().st_size)
        # a read-only map: the import reads one block of rows at a time
        array = np.load(p, mmap_mode="r", allow_pickle=False)
    except Refused:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise _numpy_error(p, err) from None
    side = ids_file(p)
    if not side.is_file():
        raise Refused(f"features file {p}: its sample ids belong in {side}, one per line")
    try:
        ids = [line.rstrip("\r\n") for line in side.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as err:
        raise Refused(f"features file {p}: {side} is not UTF-8 text (byte {err.start}); "
                      "write the ids one per line in UTF-8") from None
    if array.ndim not in (2, 3):
        raise Refused(f"features file {p}: shape {array.shape}; a .npy holds (N, D) "
                      "or (L, N, D)")
    layers = [None] if array.ndim == 2 else list(range(array.shape[0]))
    yield UserFeatures(ids, None, [Layer(array.shape[-2:], array.dtype, _npy_reader(p, array, i))
                                   for i in layers])


def _npy_reader(p: Path, whole: np.memmap, index: int | None) -> Callable[[int], Iterator[np.ndarray]]:
    """Blocks of layer ``index`` (None: the file is one layer) of a mapped
    .npy. Each block of a C-ordered file is a map of its own, unmapped once
    written, so the pages read do not stay in the process's resident memory
    (which a cluster's memory limit may count) until the end."""
    layer = whole if index is None else whole[index]
    n, d = layer.shape
    first = whole.offset + (index or 0) * n * d * whole.dtype.itemsize

    def read(rows: int) -> Iterator[np.ndarray]:
        for start in range(0, n, rows):
            if not whole.flags.c_contiguous:  # Fortran order: rows are strided
                yield layer[start:start + rows]
                continue
            block = np.memmap(p, dtype=whole.dtype, mode="r", shape=(min(rows, n - start), d),
                              offset=first + start * d * whole.dtype.itemsize)
            yield block
            del block
    return read


def check_sample_ids(path: str | os.PathLike, ids: Sequence[str], expected: Sequence[str],
                     manifest: str | os.PathLike) -> None:
    """The file's ids must be the manifest's, in order; otherwise one line
    naming the file, the first differing position and both ids."""
    if list(ids) == list(expected):
        return
    for n, (got, want) in enumerate(zip(ids, expected)):
        if got != want:
            raise ValueError(f"features file {path}: row {n} is sample {got!r}, the manifest "
                             f"{manifest} has {want!r} there; write the rows in manifest order")
    n = min(len(ids), len(expected))
    what = (f"missing sample {expected[n]!r} (row {n})" if len(ids) < len(expected)
            else f"extra sample {ids[n]!r} (row {n})")
    raise ValueError(f"features file {path}: {len(ids)} samples, the manifest {manifest} "
                     f"has {len(expected)}: {what}")


def check_layers(path: str | os.PathLike, layers: Sequence[Any], n: int,
                 names: Sequence[str] | None) -> None:
    """Shapes and types, from the headers (arrays or :class:`Layer`)."""
    if not layers:
        raise ValueError(f"features file {path}: no layer arrays")
    for i, a in enumerate(layers):
        if a.ndim != 2 or a.shape[0] != n or a.shape[1] == 0:
            raise ValueError(f"features file {path}: layer {i} has shape {tuple(a.shape)}, "
                             f"expected ({n}, D): one row per sample, D >= 1")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"features file {path}: layer {i} is {a.dtype}, not numbers")
    if names is not None and len(names) != len(layers):
        raise ValueError(f"features file {path}: {len(names)} layer names for {len(layers)} layers")


def import_features(path: str | os.PathLike, out: str | os.PathLike, *, model: str, modality: str,
                    manifest_ids: Sequence[str], manifest: str | os.PathLike, dataset: str,
                    manifest_sha256: str, layer_names: Sequence[str] | None = None,
                    dtype: str = "float32", source: str = "") -> dict[str, Any]:
    """Check a features file against the manifest and write it to ``out`` in
    prh's layout, layer by layer in blocks of rows; returns ``n_layers``."""
    from .. import __version__
    from .features import FeatureWriter

    with open_user_features(path) as data:
        check_sample_ids(path, data.sample_ids, manifest_ids, manifest)
        recorded = str(data.attrs.get("manifest_sha256") or "")
        if recorded and recorded != manifest_sha256:
            raise ValueError(f"features file {path}: computed on samples with manifest hash "
                             f"{recorded[:12]}, the manifest {manifest} is "
                             f"{manifest_sha256[:12]}: same ids, other captions or images; "
                             "compute the features on this dataset's samples")
        names = list(layer_names) if layer_names is not None else data.layer_names
        check_layers(path, data.layers, len(manifest_ids), names)
        declared = data.attrs.get("modality")
        if declared and declared != modality:
            raise ValueError(f"features file {path}: holds {declared} features, the config "
                             f"says {modality}; fix models.{model}.modality")
        attrs = {"model": model, "modality": modality, "pool": "", "pool_requested": "",
                 "dataset": dataset, "manifest_sha256": manifest_sha256,
                 "prh_version": __version__, "source": source or f"file:{path}",
                 "weights": "pretrained", "imported_from": str(path)}
        if "param_count" in data.attrs:
            attrs["param_count"] = data.attrs["param_count"]
        with FeatureWriter(out, sample_ids=manifest_ids, layer_names=names, attrs=attrs,
                           dtype=dtype) as writer:
            writer.create_layers([layer.shape[1] for layer in data.layers])
            for i, layer in enumerate(data.layers):
                rows = max(1, BLOCK_BYTES // (layer.shape[1] * layer.dtype.itemsize))
                for start, block in layer.blocks(rows):
                    if not np.isfinite(block).all():
                        raise ValueError(f"features file {path}: layer {i} has NaN or "
                                         f"infinite values (rows {start}..{start + len(block)})")
                    writer.write_layer(i, start, block)
                    del block
    return {"n_layers": len(data.layers)}
