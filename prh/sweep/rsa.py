"""Representational similarity analysis (rsa_pearson, rsa_spearman): each
layer's representational dissimilarity matrix (RDM) from its Gram matrix,
its upper triangle standardised once (for Spearman: ranked first, the
N(N-1)/2 entries sorted once per layer), so that the correlation of two
layers' RDMs is one inner product (:mod:`.pairwise`), and a permutation
null reorders Y's standardised RDM (docs/metrics.md, section 3.10).

The standardised upper triangle z (zero mean, unit norm) is stored as the
symmetric N x N matrix (z + z^T) / sqrt(2) with a zero diagonal: the inner
product of two such matrices is z_x . z_y, the correlation.
"""

from __future__ import annotations

import math

import torch

from ..metrics import average_ranks
from .distances import cosine_distance, euclidean_sq
from .pairwise import permuted_products, sweep_products


def standardised(v: torch.Tensor) -> torch.Tensor:
    """v less its mean, over its norm (all zeros when v is constant)."""
    v = v - v.mean()
    norm = torch.linalg.vector_norm(v)
    return v / norm if bool(norm > 0) else v


def rdm(cache, layer: int, distance: str) -> torch.Tensor:
    """(N, N) float64 RDM of one layer: 1 - cosine of its rows, or the Euclidean
    distance between its clamped rows before normalisation (:mod:`.distances`)."""
    return cosine_distance(cache, layer) if distance == "cosine" else euclidean_sq(cache, layer).sqrt_()


def _pearson_matrix(d: torch.Tensor) -> torch.Tensor:
    """The standardised RDM (z + z^T) / sqrt(2) from the whole symmetric matrix,
    without gathering its upper triangle: the same entries, each twice."""
    n = d.shape[0]
    d.diagonal().zero_()
    d -= d.sum() / (n * (n - 1))
    d.diagonal().zero_()
    norm = torch.linalg.vector_norm(d)  # sqrt(2) ||z||
    return d / norm if bool(norm > 0) else d


def _rdm_matrices(cache, distance: str, spearman: bool):
    key = ("rsa", distance, spearman)

    def build():
        n = cache.n
        out = torch.zeros(cache.n_layers, n, n, device=cache.device)
        if not spearman:
            for l in range(cache.n_layers):
                out[l] = _pearson_matrix(rdm(cache, l, distance))
            return out
        iu = torch.triu_indices(n, n, 1, device=cache.device)
        for l in range(cache.n_layers):
            v = rdm(cache, l, distance)[iu[0], iu[1]]
            z = standardised(average_ranks(v)) / math.sqrt(2.0)
            out[l, iu[0], iu[1]] = z.float()
            out[l] += out[l].T.clone()
        return out
    return key, build


def _sweep(sx, sy, distance, spearman):
    return sweep_products(sx, _rdm_matrices(sx, distance, spearman),
                          sy, _rdm_matrices(sy, distance, spearman))


def _permuted(sx, sy, perms, distance, spearman):
    return permuted_products(sx, _rdm_matrices(sx, distance, spearman),
                             sy, _rdm_matrices(sy, distance, spearman), perms)


def _sweep_rsa_pearson(sx, sy, distance):
    return _sweep(sx, sy, distance, False)


def _sweep_rsa_spearman(sx, sy, distance):
    return _sweep(sx, sy, distance, True)


def _permuted_rsa_pearson(sx, sy, perms, distance):
    return _permuted(sx, sy, perms, distance, False)


def _permuted_rsa_spearman(sx, sy, perms, distance):
    return _permuted(sx, sy, perms, distance, True)


#: this family's sweeps: fn(sx, sy, **params) -> (Lx, Ly) float64
SWEEPS = {"rsa_pearson": _sweep_rsa_pearson, "rsa_spearman": _sweep_rsa_spearman}
#: batched nulls: fn(sx, sy, perms, **params) -> (P, Lx, Ly) for (P, N) perms
PERMUTED = {"rsa_pearson": _permuted_rsa_pearson, "rsa_spearman": _permuted_rsa_spearman}
