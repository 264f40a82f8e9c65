"""Neighbour sets (jaccard_knn) and Euclidean neighbours for every kNN metric
(``distance: euclidean``, docs/metrics.md, section 2.1).

A model's Euclidean neighbours come from a view of its
:class:`~prh.sweep.cache.LayerCache` whose ranking matrix is minus the
squared Euclidean distance between the clamped rows before normalisation
(:mod:`.distances`): its neighbour lists, masks and CKNNA terms are its own,
every other cached term (Gram matrices, kernels, bases) is the model's. The
kNN sweeps of :mod:`.knn` then run unchanged on the views.
"""

from __future__ import annotations

import torch

from ..metric_info import get_metric
from .blocks import layer_blocks, lookup, sample_order
from .cache import LayerCache
from .distances import euclidean_sq


def _own(key: tuple) -> bool:
    """Cache entries that depend on the neighbour lists."""
    return key[0] in ("knn", "knn_mask", "cknna") or key[:2] == ("by_entry", "mask")


class _SharedCache:
    """A view's cache: neighbour terms its own, the rest the model's."""

    def __init__(self, parent: dict):
        self.parent, self.own = parent, {}

    def _home(self, key: tuple) -> dict:
        return self.own if _own(key) else self.parent

    def __contains__(self, key: tuple) -> bool:
        return key in self._home(key)

    def __getitem__(self, key: tuple):
        return self._home(key)[key]

    def __setitem__(self, key: tuple, value) -> None:
        self._home(key)[key] = value

    def get(self, key: tuple, default=None):
        return self._home(key).get(key, default)


class _EuclideanNeighbours(LayerCache):
    """A model whose neighbours are its nearest rows in Euclidean distance
    before normalisation."""

    def ranking_grams(self) -> torch.Tensor:
        out = torch.empty(self.n_layers, self.n, self.n, device=self.device)
        for l in range(self.n_layers):
            out[l] = euclidean_sq(self, l).neg_()
        return out


def euclidean_neighbours(cache: LayerCache) -> LayerCache:
    """The Euclidean-neighbour view of ``cache`` (built once, kept on it);
    a model of the features representation builds its own."""
    own = getattr(cache, "euclidean_neighbours", None)
    if own is not None:
        return own()

    def build():
        view = _EuclideanNeighbours.__new__(_EuclideanNeighbours)
        view.__dict__.update(cache.__dict__)
        view._cache = _SharedCache(cache._cache)
        return view
    return cache._cached(("euclidean_view",), build)


def by_distance(sx, sy, metric: str, params: dict) -> tuple:
    """(sx, sy, params) for a kNN-family sweep: ``distance`` taken out of the
    parameters, and the models' Euclidean views when it is "euclidean"."""
    if get_metric(metric).family != "knn":
        return sx, sy, params
    params = dict(params)
    if params.pop("distance", "cosine") == "euclidean":
        sx, sy = euclidean_neighbours(sx), euclidean_neighbours(sy)
    return sx, sy, params


def _sweep_jaccard_knn(sx, sy, topk, perm=None):
    """Mean over samples of s / (2k - s), s the neighbours the two lists share
    (looked up in Y's kNN mask, as mutual_knn does)."""
    ix = sx.knn(topk)[0]
    my = sy.by_entry("mask", topk)
    order = sample_order(sy, perm)
    lin = order[None, :, None] * sx.n + order[ix]  # Y's mask entry (n, X-neighbour of n)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sx.n_layers, sy.n_layers * sx.n * topk * 2):
        shared = lookup(my, lin[sl]).sum(dim=3).double()  # (bx, Ly, N)
        out[sl] = (shared / (2 * topk - shared)).mean(dim=2)
    return out


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64
SWEEPS = {"jaccard_knn": _sweep_jaccard_knn}
