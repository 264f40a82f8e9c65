"""Ridge regression R^2, leave-one-out (ridge_r2): how well a linear map
fitted on X predicts Y on a sample it was not fitted on (docs/metrics.md,
section 3.13).

Ridge regression with an unpenalised intercept is a linear smoother: its
fitted values are S Y with S = 11^T / N + K_c (K_c + lambda I)^-1 (K_c the
centred Gram matrix of X, the dual form), and leaving sample i out changes
its prediction so that its residual is [(I - S) Y]_i / (1 - S_ii). With
M = (K_c + lambda I)^-1, I - S = lambda M - 11^T / N, so the leave-one-out
residuals are P Y with P = diag(1 / d) (lambda M - 11^T / N), d its
diagonal, and their summed squares are <R_X, G_Y> with R_X = P^T P: one
N x N matrix per layer of X, from one N x N inverse, and G_Y the Gram matrix
of Y (R_X 1 = 0: Y's centring does not matter). Every layer pair is then one
inner product and a permutation null a permuted one (:mod:`.pairwise`),
with Y's Gram matrices divided by their total variance so that the product
is SSE / SST itself. Leaving one out, unlike K folds, does not depend on the
order of the samples.
"""

from __future__ import annotations

import torch

from .pairwise import permuted_products, sweep_products


def residual_form(gram: torch.Tensor, penalty: float) -> torch.Tensor:
    """R = P^T P (N, N) float64 for one layer's Gram matrix (any centring)."""
    g = gram.double()
    n = g.shape[0]
    centred = g - g.mean(dim=0) - g.mean(dim=1, keepdim=True) + g.mean()
    centred.diagonal().add_(penalty)
    p = penalty * torch.cholesky_inverse(torch.linalg.cholesky(centred)) - 1.0 / n
    p /= p.diagonal().clone()[:, None]
    return p.T @ p


def _residual_forms(cache, penalty: float):
    def build():
        grams = cache.grams()
        out = torch.empty_like(grams)
        for l in range(cache.n_layers):
            out[l] = residual_form(grams[l], penalty).float()
        return out
    return ("ridge", penalty), build


def _scaled_grams(cache):
    """Gram matrices over each layer's total variance sum_n ||y_n - mean||^2
    (all zeros for a constant layer, whose scores are NaN in any sweep)."""
    def build():
        g = cache.grams().double()
        sst = g.diagonal(dim1=1, dim2=2).sum(-1) - g.sum(dim=(1, 2)) / cache.n
        scale = torch.where(sst > 0, 1.0 / sst.clamp_min(1e-300), torch.zeros_like(sst))
        return (g * scale[:, None, None]).float()
    return ("ridge_target",), build


def _sweep_ridge_r2(sx, sy, penalty):
    return 1.0 - sweep_products(sx, _residual_forms(sx, penalty), sy, _scaled_grams(sy))


def _permuted_ridge_r2(sx, sy, perms, penalty):
    return 1.0 - permuted_products(sx, _residual_forms(sx, penalty), sy, _scaled_grams(sy), perms)


#: this family's sweeps: fn(sx, sy, **params) -> (Lx, Ly) float64
SWEEPS = {"ridge_r2": _sweep_ridge_r2}
#: batched nulls: fn(sx, sy, perms, **params) -> (P, Lx, Ly) for (P, N) perms
PERMUTED = {"ridge_r2": _permuted_ridge_r2}
