"""Save and load one model's layer cache: its per-layer alignment work.

The workflow computes each model's expensive per-layer quantities once and
lets every pair job reuse them. HDF5 layout (one file per dataset and model):

- ``gram``          (L, N, N) float32   inner-product Gram matrices of the
                                        clamped, normalised layers, centred:
                                        xc xc^T with xc = x - mean(x)
- ``mean_dots``     (L, N) float64      a = xc @ mean(x) and
- ``mean_sq``       (L,) float64        c = mean(x) . mean(x), which restore
                                        x x^T = gram + a 1^T + 1 a^T + c
                                        (see prh.preprocess.centre_layer; files
                                        without them hold x x^T in ``gram``)
- ``row_norms``     (L, N) float64      the clamped rows' norms before the L2
                                        normalisation (ones without it): the
                                        Euclidean distances of prh.sweep.distances
- ``knn/k<K>``      (L, N, K) int32     neighbour indices, most similar first,
                                        one dataset per configured topk
- ``svcca/d<D>``    (L, N, D) float64   top-D left singular vectors of the
                                        standardised layers, per cca_dim
- ``layers/<l>``    (N, D_l) float32    optional: the clamped, normalised layers
                                        themselves, centred (xc; SVCCA on
                                        resamples and subsets must recompute its bases)
- ``sample_ids``    (N,) UTF-8          the samples' ids, in row order
- attributes: ``prh_format`` ("layer_cache") and ``prh_format_version``
  (:data:`FORMAT_VERSION`), without which the reader refuses the file;
  ``manifest_sha256`` and ``sample_ids_sha256`` (provenance,
  :mod:`prh.provenance`), ``n_samples``, ``widths`` (D_l per layer), ``q``, ``exact``,
  ``normalize``, ``clamp`` ("model": one outlier threshold over all layers,
  "layer": one per layer; see :mod:`prh.steps.layer_cache`), ``features``,
  ``prh_version``.

Kernel variants (centred, zero-diagonal, RBF) are O(N^2) per layer to derive
from the Gram matrix, so they are recomputed on load rather than stored.

A file of the features representation (attribute ``representation`` =
"features") holds the layers and kNN lists instead of ``gram``:
:mod:`prh.formats.feature_cache`.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import h5py
import numpy as np
import torch

from ..sweep.cache import LayerCache
from ..sweep.representation import FeatureCache
from ..devices import resolve_device
from ..jobio import atomic_output, open_h5
from .feature_cache import REPRESENTATION, read_feature_cache, save_feature_cache, write_record
from .features import numbered

#: the root attributes that mark a file as a layer cache: files of other
#: layouts (the "stats files" of prh before the rename, any other HDF5 file)
#: are refused by name, never read as one
FORMAT = "layer_cache"
FORMAT_VERSION = 1


def save_layer_cache(cache: LayerCache, path: str | os.PathLike, *,
                     topk: Iterable[int] = (), cca_dims: Iterable[int] = (),
                     layers: bool = False, attrs: dict | None = None,
                     sample_ids: Iterable[str] | None = None) -> None:
    """Compute (if needed) and write the per-layer work for the given topk and cca_dim values.

    Written to a temporary file beside ``path`` and renamed, so an interrupted
    job never leaves a half-written layer cache.
    """
    if isinstance(cache, FeatureCache):  # its layers are always written
        marked = {**(attrs or {}), "prh_format": FORMAT, "prh_format_version": FORMAT_VERSION}
        return save_feature_cache(cache, path, topk=topk, cca_dims=cca_dims, attrs=marked,
                                  sample_ids=sample_ids)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("gram", data=cache.grams().cpu().numpy())
            f.create_dataset("mean_dots", data=cache.mean_dots.cpu().numpy())
            f.create_dataset("mean_sq", data=cache.mean_sq.cpu().numpy())
            if ("row_norms",) in cache._cache:
                f.create_dataset("row_norms", data=cache._cache[("row_norms",)].cpu().numpy())
            for k in sorted(set(topk)):
                f.create_dataset(f"knn/k{k}", data=cache.knn(k)[0].cpu().numpy().astype(np.int32))
            for d in sorted(set(cca_dims)):
                f.create_dataset(f"svcca/d{d}", data=cache.svcca_basis(d).cpu().numpy())
            if layers:
                if not cache.layers:
                    raise ValueError("this layer cache holds no layers to save (it was loaded without them)")
                width = len(str(cache.n_layers - 1))
                for i, x in enumerate(cache.centred_layers()):
                    f.create_dataset(f"layers/{i:0{width}d}", data=x.cpu().numpy())
            write_record(f, cache, attrs, sample_ids)
            f.attrs["prh_format"] = FORMAT
            f.attrs["prh_format_version"] = FORMAT_VERSION


def load_layer_cache(path: str | os.PathLike, device: torch.device | str | None = None) -> LayerCache:
    """Rebuild a LayerCache from its file; kNN lists for other k come from
    the Gram matrices. A file of the features representation gives a FeatureCache."""
    dev = resolve_device(device, accelerators=("cuda",))
    with _open(path) as f:
        if f.attrs.get("representation") == REPRESENTATION:
            return read_feature_cache(f, path, dev)
        if "gram" not in f:
            raise ValueError(f"{path} is not a prh layer cache (no 'gram' dataset)")
        layers = [torch.from_numpy(f["layers"][name][...]).to(dev)
                  for name in numbered(f["layers"], path)] if "layers" in f else []
        shape = (len(f.attrs["widths"]), int(f.attrs["n_samples"]))
        offsets = ((torch.from_numpy(f["mean_dots"][...]), torch.from_numpy(f["mean_sq"][...]))
                   if "mean_dots" in f else  # older files: x x^T itself in "gram"
                   (torch.zeros(shape, dtype=torch.float64), torch.zeros(shape[0], dtype=torch.float64)))
        cache = LayerCache(layers, n=int(f.attrs["n_samples"]),
                           widths=tuple(int(w) for w in f.attrs["widths"]), device=dev,
                           offsets=offsets)
        gram = torch.from_numpy(f["gram"][...]).to(dev)
        cache._cache[("gram",)] = gram
        if "row_norms" in f:
            cache._cache[("row_norms",)] = torch.from_numpy(f["row_norms"][...]).to(dev)
        for name, ds in f.get("knn", {}).items():
            k = int(name[1:])
            idx = torch.from_numpy(ds[...].astype(np.int64)).to(dev)
            cache._cache[("knn", k)] = (idx, cache.gram_values(idx))
        for name, ds in f.get("svcca", {}).items():
            cache._cache[("svcca", int(name[1:]))] = torch.from_numpy(ds[...]).to(dev)
    return cache


def read_cache_provenance(path: str | os.PathLike) -> dict:
    """A layer cache's ``sample_ids`` (list, empty if none), ``manifest_sha256``
    and ``sample_ids_sha256`` ("" if not recorded)."""
    with _open(path) as f:
        ids = [v.decode("utf-8") if isinstance(v, bytes) else str(v)
               for v in f["sample_ids"][...]] if "sample_ids" in f else []
        return {"sample_ids": ids,
                "manifest_sha256": str(f.attrs.get("manifest_sha256", "")),
                "sample_ids_sha256": str(f.attrs.get("sample_ids_sha256", ""))}


def check_same_cache_samples(paths: Sequence[str | os.PathLike]) -> tuple[dict[str, str], list[str]]:
    """Refuse layer caches computed from different samples (ids in order, and
    manifest hash), each read once and compared with the first. Returns the
    provenance record a pair or block file keeps, and the samples' ids."""
    from ..provenance import IDS, MANIFEST, ProvenanceError, check_same_samples

    paths = list(paths)
    first = read_cache_provenance(paths[0])
    for path in paths[1:]:
        other = read_cache_provenance(path)
        if first["sample_ids"] or other["sample_ids"]:
            check_same_samples(first["sample_ids"], paths[0], other["sample_ids"], path)
        if first[MANIFEST] != other[MANIFEST]:
            raise ProvenanceError(
                f"{paths[0]} and {path} come from different manifests "
                f"({first[MANIFEST][:12] or '<none>'} vs {other[MANIFEST][:12] or '<none>'}); "
                "rerun the workflow")
    return {MANIFEST: first[MANIFEST], IDS: first[IDS]}, first["sample_ids"]


def _open(path: str | os.PathLike):
    """The layer cache at ``path`` opened for reading, or a one-line
    ValueError when the file lacks this format's marker or has another
    version of it."""
    f = open_h5(path, "layer cache")
    kind, version = f.attrs.get("prh_format"), f.attrs.get("prh_format_version")
    if not (isinstance(kind, str) and kind == FORMAT
            and np.ndim(version) == 0 and version == FORMAT_VERSION):
        f.close()
        found = (f"prh_format {kind!r}, version {version}" if kind is not None
                 else "no prh_format attribute: a stats file of an older prh, or another HDF5 file")
        raise ValueError(f"{path} is not a prh layer cache of version {FORMAT_VERSION} ({found}); "
                         "delete it and rerun the workflow, whose layer_cache rule writes it anew")
    return f
