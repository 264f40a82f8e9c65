"""Projection-weighted CCA (pwcca, Morcos et al. 2018): each layer's top
principal directions (at most ``pca_dim``, fewer for a layer of lower rank)
as an orthonormal basis U (N x d) and the neurons' coordinates in it,
W = U^T Xc (d x D), and the sweep: batched singular value decompositions of
the d x d products U_x^T U_y, whose singular values are the canonical
correlations and whose left singular vectors give X's canonical variates
U_x p_i, weighted by sum_j |(P^T W_x)_ij| (docs/metrics.md, section 3.12).
A permutation reorders Y's basis rows (``perm``).
"""

from __future__ import annotations

import torch

from ..metrics import top_left_singular_vectors
from .blocks import layer_blocks
from .procrustes import layers_needed

#: singular values below this fraction of a layer's largest are rounding noise
#: of its float32 rows (~1e-7 of it), not directions to correlate
RANK_TOL = 1e-6


def principal_basis(x: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """U (N, r) and W = U^T xc (r, D), float64, of a layer x (N, D) centred on
    its rows' mean: its top r <= d left singular vectors (from the smaller
    eigenproblem, :func:`prh.metrics.top_left_singular_vectors`), r the number
    of singular values above RANK_TOL of the largest (0 for a constant layer);
    row i of W has norm s_i."""
    xc = x.double()
    xc = xc - xc.mean(dim=0)
    u = top_left_singular_vectors(xc, min(d, *xc.shape))
    w = u.T @ xc
    s = torch.linalg.vector_norm(w, dim=1)
    r = int((s > RANK_TOL * s.max()).sum()) if bool(s.max() > 0) else 0
    return u[:, :r], w[:r]


def pwcca_terms(cache, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """U (L, N, d) and W (L, d, max D) zero-padded, and each layer's r (L,)."""
    layers_needed(cache, "pwcca")

    def build():
        parts = [principal_basis(x, d) for x in cache.centred_layers()]
        width = max(w.shape[1] for _, w in parts)
        u = torch.zeros(cache.n_layers, cache.n, d, dtype=torch.float64, device=cache.device)
        w = torch.zeros(cache.n_layers, d, width, dtype=torch.float64, device=cache.device)
        for l, (ul, wl) in enumerate(parts):
            u[l, :, :ul.shape[1]] = ul
            w[l, :wl.shape[0], :wl.shape[1]] = wl
        ranks = torch.tensor([p[0].shape[1] for p in parts], device=cache.device)
        return u, w, ranks
    return cache._cached(("pwcca", d), build)


def _sweep_pwcca(sx, sy, pca_dim, perm=None):
    ux, wx, rx = pwcca_terms(sx, pca_dim)
    uy, _, ry = pwcca_terms(sy, pca_dim)
    if perm is not None:
        uy = uy[:, perm]
    d = pca_dim
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sx.n_layers, sy.n_layers * d * (wx.shape[2] + 4 * d) * 8 * 2):
        m = torch.einsum("ind,jne->ijde", ux[sl], uy)               # (bx, Ly, d, d)
        p, corr, _ = torch.linalg.svd(m)
        # each canonical direction's weight: |its variate . each neuron|, summed
        alpha = torch.einsum("ijdk,idm->ijkm", p, wx[sl]).abs_().sum(dim=-1)
        # the min(r_x, r_y) directions with a correlation; the rest are padding
        count = torch.minimum(rx[sl, None], ry[None, :])
        alpha *= torch.arange(d, device=sx.device) < count[..., None]
        den = alpha.sum(dim=-1)
        out[sl] = torch.where(den > 0, (alpha * corr).sum(dim=-1) / den.clamp_min(1e-300),
                              torch.zeros_like(den))
    return out


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64
SWEEPS = {"pwcca": _sweep_pwcca}
