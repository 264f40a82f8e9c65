"""The features representation's per-model file (a layer cache whose
``representation`` attribute is "features"): what
:class:`prh.sweep.representation.FeatureCache` holds, O(N (D + k)) a layer
instead of the dense file's N x N Gram matrices.

HDF5 layout (besides the dense file's ``mean_dots``, ``mean_sq``,
``row_norms``, ``svcca/d<D>``, ``sample_ids`` and attributes, see
:mod:`prh.formats.layer_cache`):

- ``layers/<l>``      (N, D_l) float32  the clamped, normalised layers,
                                        centred (always: every score reads them)
- ``knn/k<K>``        (L, N, K) int32   neighbour indices, most similar first
- ``knn_gram/k<K>``   (L, N, K) float32 products of the centred rows at
                                        those entries (the Gram values)
- ``knn_rank/k<K>``   (L, N, K) float32 the ranking values there (CKNNA's
                                        reads of Y's kernel)
- attribute ``representation`` = "features"

Lists searched approximately (``alignment.knn: approximate``) add:

- attribute ``knn`` = "approximate" (absent: exact)
- ``knn_recall/k<K>`` (L,) float64      recall@K of each layer's lists against
                                        the exact ranking, on ``rows`` rows
                                        (attribute); attributes ``nlist`` and
                                        ``nprobe`` (L,): each layer's index

The products are stored, not recomputed on load: recomputed one by one
they would not hold the bits of the blocked products that ranked them.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import h5py
import numpy as np
import torch

from .. import __version__
from ..jobio import atomic_output
from ..sweep.approximate import RECALL_ROWS
from ..sweep.representation import KNN_METHODS, FeatureCache
from ..sweep.search import Neighbours
from .features import numbered

REPRESENTATION = "features"


def save_feature_cache(cache: FeatureCache, path: str | os.PathLike, *, topk: Iterable[int] = (),
                       cca_dims: Iterable[int] = (), attrs: dict | None = None,
                       sample_ids: Iterable[str] | None = None) -> None:
    """Write ``cache`` to ``path`` atomically, computing the kNN lists for
    every k in ``topk`` and the SVCCA bases for every cca_dim first; ``attrs``
    and ``sample_ids`` as :func:`prh.formats.layer_cache.save_layer_cache` takes them."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _write(f, cache, topk, cca_dims)
            write_record(f, cache, attrs, sample_ids)


def write_record(f: h5py.File, cache: Any, attrs: dict | None,
                 sample_ids: Iterable[str] | None) -> None:
    """What every layer cache records whatever its representation: the sample
    ids, N, the widths, the prh version and the caller's ``attrs``."""
    if sample_ids:
        f.create_dataset("sample_ids", data=np.array(list(sample_ids), dtype=object),
                         dtype=h5py.string_dtype("utf-8"))
    f.attrs["n_samples"] = cache.n
    f.attrs["widths"] = np.asarray(cache.widths, dtype=np.int64)
    f.attrs["prh_version"] = __version__
    for key, value in (attrs or {}).items():
        f.attrs[key] = value


def _write(f: h5py.File, cache: FeatureCache, topk: Iterable[int], cca_dims: Iterable[int]) -> None:
    width = len(str(cache.n_layers - 1))
    for i, x in enumerate(cache.layers):
        f.create_dataset(f"layers/{i:0{width}d}", data=x.cpu().numpy())
    f.create_dataset("mean_dots", data=cache.mean_dots.cpu().numpy())
    f.create_dataset("mean_sq", data=cache.mean_sq.cpu().numpy())
    if ("row_norms",) in cache._cache:
        f.create_dataset("row_norms", data=cache._cache[("row_norms",)].cpu().numpy())
    cache.search_neighbours(topk)
    for k in sorted(set(topk)):
        nb = cache.neighbours(k)
        f.create_dataset(f"knn/k{k}", data=nb.idx.cpu().numpy().astype(np.int32))
        f.create_dataset(f"knn_gram/k{k}", data=nb.gram.cpu().numpy())
        f.create_dataset(f"knn_rank/k{k}", data=nb.rank.cpu().numpy())
    if cache.knn_method != "exact":
        f.attrs["knn"] = cache.knn_method
        for k in sorted(set(topk) & set(cache.knn_recall)):
            ds = f.create_dataset(f"knn_recall/k{k}", data=cache.knn_recall[k].numpy())
            ds.attrs["rows"] = min(RECALL_ROWS, cache.n)
            for key, values in cache.knn_index[k].items():
                ds.attrs[key] = np.asarray(values, dtype=np.int64)
    for d in sorted(set(cca_dims)):
        f.create_dataset(f"svcca/d{d}", data=cache.svcca_basis(d).cpu().numpy())
    f.attrs["representation"] = REPRESENTATION


def read_feature_cache(f: h5py.File, path: str | os.PathLike, device: torch.device) -> FeatureCache:
    """The FeatureCache that :func:`write_feature_cache` wrote into ``f``."""
    if "layers" not in f:
        raise ValueError(f"{path} is a features layer cache without its layers; recompute it")
    knn = str(f.attrs.get("knn", "exact"))
    if knn not in KNN_METHODS:
        raise ValueError(f"{path}: attribute knn {knn!r} is none of {', '.join(KNN_METHODS)}; "
                         "delete the file and rerun")
    layers = [torch.from_numpy(f["layers"][name][...]).to(device)
              for name in numbered(f["layers"], path)]
    cache = FeatureCache(layers, (torch.from_numpy(f["mean_dots"][...]),
                                  torch.from_numpy(f["mean_sq"][...])),
                         row_norms=(torch.from_numpy(f["row_norms"][...])
                                    if "row_norms" in f else None),
                         knn=knn)
    for name, ds in f.get("knn_recall", {}).items():
        index = {key: np.asarray(ds.attrs.get(key, [])).reshape(-1) for key in ("nlist", "nprobe")}
        if ds.shape != (cache.n_layers,) or any(len(v) != cache.n_layers for v in index.values()):
            raise ValueError(f"{path}: knn_recall/{name} is not one recall, nlist and nprobe per "
                             f"layer ({cache.n_layers}); delete the file and rerun")
        k = int(name[1:])
        cache.knn_recall[k] = torch.from_numpy(ds[...].astype(np.float64))
        cache.knn_index[k] = {key: [int(v) for v in vals] for key, vals in index.items()}
    for name, ds in f.get("knn", {}).items():
        k = name[1:]
        parts = (ds[...].astype(np.int64), f["knn_gram"][name][...], f["knn_rank"][name][...])
        cache._cache[("knn", int(k), "lists")] = Neighbours(
            *(torch.from_numpy(p).to(device) for p in parts))
    for name, ds in f.get("svcca", {}).items():
        cache._cache[("svcca", int(name[1:]))] = torch.from_numpy(ds[...]).to(device)
    return cache
