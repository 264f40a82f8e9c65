"""Ridge regression R^2 with cross-validation (ridge_r2): how well a linear
map fitted on X predicts Y on held-out samples (docs/metrics.md, section 3.13).

The out-of-fold residuals of Y predicted from X are linear in Y: for each
fold, Res_f = A_f Y with A_f = (S_V - H_f S_T) C_T, where S_V, S_T select the
fold's held-out and training rows, C_T subtracts the training mean and
H_f = K_VT (K_TT + lambda I)^-1 is the kernel-ridge hat matrix of X's
training-centred Gram matrix (the dual form of ridge with an intercept). So
the summed squared error is <R_X, G_Y> with R_X = sum_f A_f^T A_f, one N x N
matrix per layer of X computed once from its Gram matrix, and G_Y the Gram
matrix of Y (R_X 1 = 0: Y's centring does not matter). Every layer pair is
then one inner product and a permutation null a permuted one
(:mod:`.pairwise`), with Y's Gram matrices divided by their total variance
so that the product is SSE / SST itself.
"""

from __future__ import annotations

import torch

from .pairwise import permuted_products, sweep_products


def fold_bounds(n: int, folds: int) -> list[tuple[int, int]]:
    """Contiguous folds as scikit-learn's KFold(folds) without shuffling: the
    first n % folds hold one sample more."""
    sizes = [n // folds + (1 if f < n % folds else 0) for f in range(folds)]
    starts = [sum(sizes[:f]) for f in range(folds)]
    return [(s, s + size) for s, size in zip(starts, sizes)]


def residual_form(gram: torch.Tensor, penalty: float, folds: int) -> torch.Tensor:
    """R = sum_f A_f^T A_f (N, N) float64 for one layer's Gram matrix (any
    centring: only differences from training means enter)."""
    g = gram.double()
    n = g.shape[0]
    out = torch.zeros(n, n, dtype=torch.float64, device=g.device)
    everything = torch.arange(n, device=g.device)
    for s, e in fold_bounds(n, folds):
        held, train = everything[s:e], torch.cat([everything[:s], everything[e:]])
        r = g[:, train].mean(dim=1)       # <x_i, training mean> less a constant
        c = r[train].mean()
        k_tt = g[train][:, train] - r[train, None] - r[None, train] + c
        k_vt = g[held][:, train] - r[held, None] - r[None, train] + c
        k_tt.diagonal().add_(penalty)
        hat = torch.linalg.solve(k_tt, k_vt.T).T                  # (nV, nT)
        a = torch.zeros(e - s, n, dtype=torch.float64, device=g.device)
        a[:, s:e] = torch.eye(e - s, dtype=torch.float64, device=g.device)
        # rows of A_f: y_v - mean_T - sum_t H_vt (y_t - mean_T)
        a[:, train] = -hat - ((1.0 - hat.sum(dim=1)) / len(train))[:, None]
        out.addmm_(a.T, a)
    return out


def _residual_forms(stats, penalty: float, folds: int):
    def build():
        grams = stats.grams()
        out = torch.empty_like(grams)
        for l in range(stats.n_layers):
            out[l] = residual_form(grams[l], penalty, folds).float()
        return out
    return ("ridge", penalty, folds), build


def _scaled_grams(stats):
    """Gram matrices over each layer's total variance sum_n ||y_n - mean||^2
    (all zeros for a constant layer, whose scores are NaN in any sweep)."""
    def build():
        g = stats.grams().double()
        sst = g.diagonal(dim1=1, dim2=2).sum(-1) - g.sum(dim=(1, 2)) / stats.n
        scale = torch.where(sst > 0, 1.0 / sst.clamp_min(1e-300), torch.zeros_like(sst))
        return (g * scale[:, None, None]).float()
    return ("ridge_target",), build


def _sweep_ridge_r2(sx, sy, penalty, folds):
    return 1.0 - sweep_products(sx, _residual_forms(sx, penalty, folds), sy, _scaled_grams(sy))


def _permuted_ridge_r2(sx, sy, perms, penalty, folds):
    return 1.0 - permuted_products(sx, _residual_forms(sx, penalty, folds), sy, _scaled_grams(sy),
                                   perms)


#: this family's sweeps: fn(sx, sy, **params) -> (Lx, Ly) float64
SWEEPS = {"ridge_r2": _sweep_ridge_r2}
#: batched nulls: fn(sx, sy, perms, **params) -> (P, Lx, Ly) for (P, N) perms
PERMUTED = {"ridge_r2": _permuted_ridge_r2}
