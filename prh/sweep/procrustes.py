"""Orthogonal Procrustes (procrustes, procrustes_angular): each layer
centred on its samples' mean and scaled to unit Frobenius norm, held as a
factor F with F F^T = Xc Xc^T / ||Xc||_F^2, and the sweep, the nuclear norm
||F_x^T F_y||_* of every layer pair (docs/metrics.md, section 3.9).

F is the layer itself when it is at most N wide, else R^T of the QR
decomposition of its transpose (N x N): nuclear norms of F_x^T F_y depend
only on F F^T, so the product and its singular values never exceed N x N.
The score needs the layers, not only their Gram matrices: a nuclear norm
sums square roots of eigenvalues, and float32 Gram matrices leave the small
ones with errors of ~1e-7 of the largest, whose square roots (~3e-4) would
show in the score. A permutation reorders Y's factor rows (``perm``);
nothing carries over between permutations, so a null costs one sweep's
pair work per permutation (docs/metrics.md, "Cost").
"""

from __future__ import annotations

import math

import torch


def layers_needed(stats, metric: str) -> None:
    """Refuse, in one line, a model rebuilt without its layers."""
    if not stats.layers:
        raise ValueError(
            f"{metric} needs this model's preprocessed layers, and its stats hold none: "
            "recompute the stats with layers (the workflow keeps them when a metric that "
            "needs them is configured)")


def unit_centred(x: torch.Tensor) -> torch.Tensor:
    """float64 (N, r) factor of a layer (N, D): centred columns, unit
    Frobenius norm, r = min(D, N) columns; all zeros for a constant layer."""
    xc = x.double()
    xc = xc - xc.mean(dim=0)
    if xc.shape[1] > xc.shape[0]:
        xc = torch.linalg.qr(xc.T, mode="r")[1].T
    norm = torch.linalg.matrix_norm(xc)
    return xc / norm if bool(norm > 0) else xc


def procrustes_factors(stats, metric: str = "procrustes") -> list[torch.Tensor]:
    """Each layer's float64 factor (:func:`unit_centred`), centred on the
    model's own samples (a resample's too), cached on ``stats``."""
    layers_needed(stats, metric)
    return stats._cached(("procrustes",),
                         lambda: [unit_centred(x) for x in stats.centred_layers()])


def nuclear_norms(sx, sy, metric: str, perm: torch.Tensor | None = None) -> torch.Tensor:
    """(Lx, Ly) float64 ||F_x^T F_y||_*, Y's rows reordered by ``perm``.

    Without a permutation the last pair's matrix is kept on X's cache, with
    Y itself (so that it cannot stand for another model): procrustes and
    procrustes_angular of one pair then cost one set of singular values.
    """
    fx, fy = procrustes_factors(sx, metric), procrustes_factors(sy, metric)
    last = sx._cache.get(("procrustes_pair",))
    if perm is None and last is not None and last[0] is sy:
        return last[1]
    if perm is not None:
        fy = [f[perm] for f in fy]
    out = torch.empty(len(fx), len(fy), dtype=torch.float64, device=sx.device)
    for i, a in enumerate(fx):
        for j, b in enumerate(fy):
            out[i, j] = torch.linalg.svdvals(a.T @ b).sum()
    if perm is None:
        sx._cache[("procrustes_pair",)] = (sy, out)
    return out


def angular_score(nuclear: torch.Tensor) -> torch.Tensor:
    """1 - theta / (pi / 2), theta = arccos(nuclear norm): the shape metric's
    angle (Williams et al. 2021) as a score in [0, 1]; the nuclear norm is
    clipped to [0, 1] first (rounding may take it past 1 by ~1e-16)."""
    return 1.0 - torch.arccos(nuclear.clamp(0.0, 1.0)) / (math.pi / 2)


def _sweep_procrustes(sx, sy, perm=None):
    return nuclear_norms(sx, sy, "procrustes", perm).clone()


def _sweep_procrustes_angular(sx, sy, perm=None):
    return angular_score(nuclear_norms(sx, sy, "procrustes_angular", perm))


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64
SWEEPS = {"procrustes": _sweep_procrustes, "procrustes_angular": _sweep_procrustes_angular}
