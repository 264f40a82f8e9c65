"""Linear CKA, unbiased CKA and RV in feature space, CKNNA on kNN lists, and
the sweeps of the features representation (:class:`.representation.FeatureCache`).

With K = Xc Xc^T and L = Yc Yc^T (the layers' centred rows), every term of
the dense sweeps of :mod:`.kernel` has a form in the rows:

- <K, L> = ||Xc^T Yc||_F^2, the cross-covariance (D_x x D_y) in float64,
  O(N D_x D_y) instead of O(N^2); <K, K> = ||Xc^T Xc||_F^2;
- K 1 = Xc (Xc^T 1) and 1^T K 1: the row sums and total that centre the
  biased estimator (~0: the rows are centred already, but the dense path
  applies them, so this one does);
- diag(K): the rows' squared norms, which the unbiased estimator removes.

So trace(K H L H) = <K, L> - 2/N (K1).(L1) + (1'K1)(1'L1)/N^2 and N(N-3)
HSIC_u = <K, L> - diag(K).diag(L) + (1'K~1)(1'L~1)/((N-1)(N-2)) - 2/(N-2)
(K~1).(L~1), with K~ = K less its diagonal, as :mod:`.kernel` writes them,
and CKA is :func:`prh.metrics.cka_ratio` of them with the same eps. A
permutation of Y's samples permutes the rows of Yc, its row sums and
diagonal; the self terms do not change. The dense path sums float32 Gram
entries; these sums take the float32 rows exactly in float64, so the two
agree to float32 rounding of the Gram entries (~1e-7 of a score).

CKNNA, the kNN metrics, jaccard_knn, SVCCA, PWCCA and Procrustes run their
dense sweeps on the features representation (it answers their reads from
kNN lists and layers). RBF kernels, RSA and ridge_r2 need N x N matrices:
:func:`refuse_n_by_n`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from ..metric_info import get_metric
from ..metrics import CKA_EPS, cka_ratio
from . import kernel
from .blocks import layer_blocks

#: bytes of float64 rows converted at once for a cross-covariance
_CHUNK_BYTES = 32 * 2**20


def refuse_n_by_n(metric: str, params: dict[str, Any]) -> None:
    """A one-line ValueError for a metric (with these parameters) that needs
    N x N matrices (:meth:`prh.metric_info.MetricInfo.needs_n_by_n`)."""
    why = get_metric(metric).needs_n_by_n(**params)
    if why:
        raise ValueError(f"{metric} needs N x N {why}, which the features representation "
                         "does not hold: drop the metric or use the dense representation")


def cross_sq(sx, sy, perm: torch.Tensor | None = None) -> torch.Tensor:
    """(Lx, Ly) float64 ||Xc_i^T Yc_j[perm]||_F^2 for every layer pair: one
    float64 cross-covariance of a block of X's layers against all of Y's,
    accumulated over chunks of rows."""
    ys = sy.layers
    dy = sum(sy.widths)
    y_at = [0]
    for w in sy.widths:
        y_at.append(y_at[-1] + w)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sx.n_layers, 8 * max(sx.widths) * dy):
        xs = sx.layers[sl]
        x_at = [0]
        for x in xs:
            x_at.append(x_at[-1] + x.shape[1])
        cov = torch.zeros(x_at[-1], dy, dtype=torch.float64, device=sx.device)
        step = max(1, _CHUNK_BYTES // (8 * (x_at[-1] + dy)))
        for s in range(0, sx.n, step):
            rows = slice(s, s + step) if perm is None else perm[s:s + step]
            cx = torch.cat([x[s:s + step] for x in xs], dim=1).double()
            cy = torch.cat([y[rows] for y in ys], dim=1).double()
            cov.addmm_(cx.T, cy)
        cov.square_()
        for i in range(len(xs)):
            band = cov[x_at[i]:x_at[i + 1]].sum(dim=0)
            out[sl.start + i] = torch.stack([band[y_at[j]:y_at[j + 1]].sum()
                                             for j in range(sy.n_layers)])
    return out


def _pair_cross_sq(sx, sy) -> torch.Tensor:
    """:func:`cross_sq` of the pair, kept on X's cache with Y itself (so that it
    cannot stand for another model): cka, unbiased_cka and rv of one pair
    then cost one cross-covariance."""
    last = sx._cache.get(("cross_sq",))
    if last is not None and last[0] is sy:
        return last[1]
    out = cross_sq(sx, sy)
    sx._cache[("cross_sq",)] = (sy, out)
    return out


def hsic_pairs(sx, sy, unbiased: bool, perm: torch.Tensor | None = None) -> torch.Tensor:
    """(Lx, Ly) float64 trace(K H L H) (biased) or HSIC_u(K, L) (unbiased) of
    every layer pair, Y's samples reordered by ``perm``: :mod:`.kernel`'s
    sweeps with <K, L> in feature space."""
    n = sx.n
    tx, ty = sx.kernel_terms("ip", 1.0), sy.kernel_terms("ip", 1.0)
    rows_y, diag_y = ty["rows"], ty["diag"]
    if perm is not None:
        rows_y, diag_y = rows_y[:, perm], diag_y[:, perm]
    inner = cross_sq(sx, sy, perm) if perm is not None else _pair_cross_sq(sx, sy)
    if not unbiased:
        return (inner - (2.0 / n) * (tx["rows"] @ rows_y.T)
                + tx["total"][:, None] * ty["total"][None, :] / n**2)
    rows_x, rows_y = tx["rows"] - tx["diag"], rows_y - diag_y
    total_x, total_y = tx["total"] - tx["diag"].sum(1), ty["total"] - ty["diag"].sum(1)
    return (inner - tx["diag"] @ diag_y.T
            + total_x[:, None] * total_y[None, :] / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (rows_x @ rows_y.T)) / (n * (n - 3))


def _cka(sx, sy, kernel_name: str, sigma: float, eps: float, unbiased: bool,
         perm: torch.Tensor | None = None) -> torch.Tensor:
    if kernel_name != "ip":
        refuse_n_by_n("unbiased_cka" if unbiased else "cka", {"kernel": kernel_name})
    kl = hsic_pairs(sx, sy, unbiased, perm)
    kk = kernel._self_hsic(sx, "ip", sigma, unbiased)
    ll = kernel._self_hsic(sy, "ip", sigma, unbiased)
    return cka_ratio(kl, kk[:, None], ll[None, :], eps)


def _sweep_cka(sx, sy, kernel, sigma, eps=CKA_EPS):
    return _cka(sx, sy, kernel, sigma, eps, False)


def _sweep_unbiased_cka(sx, sy, kernel, sigma, eps=CKA_EPS):
    return _cka(sx, sy, kernel, sigma, eps, True)


def _permuted_cka(sx, sy, perms, kernel, sigma, eps=CKA_EPS, unbiased=False):
    """(P, Lx, Ly): one feature-space sweep per permutation (the self terms once)."""
    return torch.stack([_cka(sx, sy, kernel, sigma, eps, unbiased, perm) for perm in perms])


class _AtTopk:
    """A FeatureCache whose ``by_entry("gram")`` reads the ranking values of
    its k-lists: the dense CKNNA sweep asks for the ranking matrix without a
    k (it holds every entry), and reads it only on the k-lists."""

    def __init__(self, cache, k: int):
        self._cache_of, self._k = cache, k

    def __getattr__(self, name: str):
        return getattr(self._cache_of, name)

    def by_entry(self, what: str, k: int = 0):
        return self._cache_of.by_entry(what, k or self._k)


def _sweep_cknna(sx, sy, topk, perm=None):
    return kernel.SWEEPS["cknna"](sx, _AtTopk(sy, topk), topk, perm=perm)


#: rv: linear CKA without the eps (docs/metrics.md, section 3.14), as in :mod:`.dispatch`
_RV = {"kernel": "ip", "sigma": 1.0, "eps": 0.0}

#: the features representation's own sweeps: fn(sx, sy, **params) -> (Lx, Ly)
SWEEPS = {"cka": _sweep_cka, "unbiased_cka": _sweep_unbiased_cka, "cknna": _sweep_cknna,
          "rv": partial(_sweep_cka, **_RV)}
#: and batched nulls: fn(sx, sy, perms, **params) -> (P, Lx, Ly)
PERMUTED = {"cka": partial(_permuted_cka, unbiased=False),
            "unbiased_cka": partial(_permuted_cka, unbiased=True),
            "rv": partial(_permuted_cka, unbiased=False, **_RV)}
