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
pair work per permutation (docs/metrics.md, "Cost"), done for a batch of
permutations and a group of equally wide layers at once.
"""

from __future__ import annotations

import math

import torch

#: bytes of Y's factors gathered at once for a batch of permutations (the cost
#: model counts them: prh.config.cost.GATHER_MB)
_GATHER_BYTES = 128 * 2**20


def layers_needed(cache, metric: str) -> None:
    """Refuse, in one line, a model rebuilt without its layers."""
    if not cache.layers:
        raise ValueError(
            f"{metric} needs this model's preprocessed layers, and its layer cache holds none: "
            "recompute the layer cache with layers (the workflow keeps them when a metric that "
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


def procrustes_factors(cache, metric: str = "procrustes") -> list[torch.Tensor]:
    """Each layer's float64 factor (:func:`unit_centred`), centred on the
    model's own samples (a resample's too), cached on ``cache``."""
    layers_needed(cache, metric)
    return cache._cached(("procrustes",),
                         lambda: [unit_centred(x) for x in cache.centred_layers()])


def nuclear(m: torch.Tensor) -> torch.Tensor:
    """Nuclear norms of a batch of matrices (..., a, b): square roots of the
    eigenvalues of the smaller of M^T M and M M^T, summed. A symmetric
    eigenproblem after one product costs about half the singular values of M
    (bidiagonalisation); in float64 an eigenvalue's rounding (~1e-16 of the
    largest, at most 1 here) moves its square root by ~1e-8, so even a
    rank-deficient pair with hundreds of zero eigenvalues stays within 1e-6
    of the singular values' sum (tests/test_metrics_families.py)."""
    g = m.mT @ m if m.shape[-2] >= m.shape[-1] else m @ m.mT
    return torch.linalg.eigvalsh(g).clamp_min_(0).sqrt_().sum(-1)


def _by_width(factors: list[torch.Tensor]) -> dict[int, tuple[list[int], torch.Tensor]]:
    """The factors grouped by width, each group stacked (G, N, r): one batched
    product and eigenproblem per group instead of one per layer."""
    groups: dict[int, list[int]] = {}
    for j, f in enumerate(factors):
        groups.setdefault(f.shape[1], []).append(j)
    return {r: (idx, torch.stack([factors[j] for j in idx])) for r, idx in groups.items()}


def nuclear_norms(sx, sy, metric: str, perm: torch.Tensor | None = None) -> torch.Tensor:
    """(Lx, Ly) float64 ||F_x^T F_y||_*, Y's rows reordered by ``perm``.

    Without a permutation the last pair's matrix is kept on X's cache, with
    Y itself (so that it cannot stand for another model): procrustes and
    procrustes_angular of one pair then cost one set of eigenvalues.
    """
    last = sx._cache.get(("procrustes_pair",))
    if perm is None and last is not None and last[0] is sy:
        return last[1]
    out = permuted_nuclear_norms(sx, sy, metric, None if perm is None else perm[None])[0]
    if perm is None:
        sx._cache[("procrustes_pair",)] = (sy, out)
    return out


def permuted_nuclear_norms(sx, sy, metric: str, perms: torch.Tensor | None) -> torch.Tensor:
    """(P, Lx, Ly) float64 ||F_x^T P F_y||_* for a batch of reorderings (P, N)
    of Y's rows (None: the identity, P = 1): each of Y's factors gathered once
    per batch, every product of a layer of X with a group of Y's layers of one
    width and every permutation one batched matrix product and eigenproblem."""
    fx, fy = procrustes_factors(sx, metric), procrustes_factors(sy, metric)
    p = 1 if perms is None else len(perms)
    out = torch.empty(p, len(fx), len(fy), dtype=torch.float64, device=sx.device)
    for idx, group in _by_width(fy).values():
        if perms is None:
            for i, a in enumerate(fx):
                out[0, i, idx] = nuclear(a.T @ group)
            continue
        step = max(1, _GATHER_BYTES // (8 * p * group[0].numel()))
        for s in range(0, len(idx), step):
            moved = group[s:s + step, perms].transpose(0, 1)  # (P, G', N, r)
            for i, a in enumerate(fx):
                out[:, i, idx[s:s + step]] = nuclear(a.T @ moved)
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


def _permuted_procrustes(sx, sy, perms):
    return permuted_nuclear_norms(sx, sy, "procrustes", perms)


def _permuted_procrustes_angular(sx, sy, perms):
    return angular_score(permuted_nuclear_norms(sx, sy, "procrustes_angular", perms))


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64
SWEEPS = {"procrustes": _sweep_procrustes, "procrustes_angular": _sweep_procrustes_angular}
#: batched nulls: fn(sx, sy, perms) -> (P, Lx, Ly) for (P, N) perms
PERMUTED = {"procrustes": _permuted_procrustes,
            "procrustes_angular": _permuted_procrustes_angular}
