"""Distances between one layer's samples, from its stored Gram matrix: the
cosine distance of the preprocessed rows, and the Euclidean distance of the
clamped rows before their L2 normalisation (docs/metrics.md, section 2).

The Gram matrix G of the centred rows gives every squared distance between
the stored rows, G_nn + G_mm - 2 G_nm, without cancellation against the
rows' shared mean. Rows normalised from norms rho (the clamped rows' norms,
kept by :func:`prh.sweep.cache.LayerCache.from_features`; 1 when the layers
were not normalised) were rho_n u_n before, so

    ||rho_n u_n - rho_m u_m||^2 = (rho_n - rho_m)^2 + rho_n rho_m ||u_n - u_m||^2,

each term on the scale of what it measures.
"""

from __future__ import annotations

import torch

ROW_NORMS = ("row_norms",)


def row_norms(cache) -> torch.Tensor:
    """(L, N) float64 norms of the clamped rows before their normalisation."""
    norms = cache._cache.get(ROW_NORMS)
    if norms is None:
        raise ValueError(
            "distance: euclidean needs each row's norm before the L2 normalisation, and "
            "this layer cache does not hold them (written by an older prh): recompute the layer cache")
    return norms


def stored_sq_distances(cache, layer: int) -> torch.Tensor:
    """(N, N) float64 squared Euclidean distances between the stored rows."""
    g = cache.grams()[layer].double()
    sq = g.diagonal()
    return (sq[:, None] + sq[None, :] - 2.0 * g).clamp_min_(0.0)


def euclidean_sq(cache, layer: int) -> torch.Tensor:
    """(N, N) float64 squared Euclidean distances between the clamped rows
    before normalisation."""
    rho = row_norms(cache)[layer]
    return (rho[:, None] - rho[None, :]) ** 2 + rho[:, None] * rho[None, :] * stored_sq_distances(cache, layer)


def cosine_distance(cache, layer: int) -> torch.Tensor:
    """(N, N) float64 1 - cos(x_n, x_m) of the stored rows (the same before and
    after normalisation): (d^2 - (r_n - r_m)^2) / (2 r_n r_m) with r the rows'
    norms, exact for unit rows whatever their spread; 1 where a row is zero."""
    a = cache.mean_dots[layer]
    g = cache.grams()[layer].double()
    r = (g.diagonal() + 2.0 * a + cache.mean_sq[layer]).clamp_min(0.0).sqrt()
    outer = r[:, None] * r[None, :]
    d2 = stored_sq_distances(cache, layer) - (r[:, None] - r[None, :]) ** 2
    return torch.where(outer > 0, d2 / (2.0 * outer.clamp_min(1e-300)), torch.ones_like(d2))
