"""Scores that are inner products of one N x N matrix per layer of each model,
<F_i, M_j> = sum_nm F_i[n, m] M_j[n, m]: RSA (both matrices standardised
dissimilarities, :mod:`.rsa`) and ridge regression (X's out-of-fold
residual form against Y's Gram matrix, :mod:`.regression`).

A sweep is one float64 product of the flattened matrices
(:func:`flat_products`). Reordering Y's samples by a permutation P turns
M_j into P M_j P^T, so a null multiplies the fixed side, cut into blocks of
rows that stay in cache, into the matching rows of the other side's
matrices gathered for a batch of permutations (:func:`permuted_products`),
as the CKA null does (:func:`prh.sweep.kernel._permuted_hsic`): per
permutation, a gather of one model's matrices and one product, nothing
recomputed.
"""

from __future__ import annotations

from typing import Callable

import torch

from .blocks import one_cpu_thread
from .kernel import PERMUTATION_BATCH

_PRODUCT_CHUNK = 1 << 14
#: Bytes of one block of the fixed side's rows in a null (CPU, other devices):
#: on a CPU the block stays in a core's L2 cache while a batch of
#: permutations is multiplied into it; a GPU wants fewer, larger products.
_NULL_ROW_BYTES = (2**20, 64 * 2**20)

#: what a family hands over: the cache key of its (L, N, N) float32 matrices
#: and a function that builds them
Matrices = tuple[tuple, Callable[[], torch.Tensor]]


def flat_products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T in float64 for float32 (La, M) and (Lb, M), converted in
    column chunks that stay in cache (float64 sums of N^2 terms)."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[1], _PRODUCT_CHUNK):
        ca = a[:, start:start + _PRODUCT_CHUNK].double()
        cb = b[:, start:start + _PRODUCT_CHUNK].double()
        out.addmm_(ca, cb.T)
    return out


def matrices(cache, what: Matrices) -> torch.Tensor:
    key, build = what
    return cache._cached(key, build)


def sweep_products(sx, what_x: Matrices, sy, what_y: Matrices) -> torch.Tensor:
    """(Lx, Ly) float64 <F_i, M_j> of every layer pair."""
    fx, my = matrices(sx, what_x), matrices(sy, what_y)
    return flat_products(fx.reshape(fx.shape[0], -1), my.reshape(my.shape[0], -1))


def _fixed_blocks(cache, what: Matrices) -> list[tuple[int, int, torch.Tensor]]:
    """The (symmetric) matrices' upper triangles as blocks of rows: (start,
    stop, (L, rows * (N - start)) float32), the entries of rows start..stop
    from column start on, off the diagonal doubled: <F, M> = sum over m >= n
    of W F M with W = 2 above the diagonal, for symmetric F and M."""
    def build():
        mats = matrices(cache, what)
        n, layers = cache.n, mats.shape[0]
        step = max(1, _NULL_ROW_BYTES[cache.device.type != "cpu"] // (4 * n * layers))
        out = []
        for s in range(0, n, step):
            e = min(n, s + step)
            part = mats[:, s:e, s:] * 2.0
            square = mats[:, s:e, s:e]
            part[:, :, :e - s] = torch.triu(part[:, :, :e - s], 1) + torch.diag_embed(
                square.diagonal(dim1=1, dim2=2))
            out.append((s, e, part.reshape(layers, -1)))
        return out
    return cache._cached(("pairwise_fixed", what[0]), build)


def _entry_major(cache, what: Matrices) -> torch.Tensor:
    """(N, N, L) float32: entry (n, m) of every layer in one contiguous run, so
    a permuted gather copies runs of L values."""
    return cache._cached(("pairwise_moved", what[0]),
                         lambda: matrices(cache, what).permute(1, 2, 0).contiguous())


def permuted_products(sx, what_x: Matrices, sy, what_y: Matrices,
                      perms: torch.Tensor) -> torch.Tensor:
    """(P, Lx, Ly) float64 <F_i, P M_j P^T> for each reordering Y'[n] = Y[perm[n]].

    The model with fewer layers is the one gathered, by the inverse
    permutation when it is X: <F, P M P^T> = <P^T F P, M>.
    """
    swap = sx.n_layers < sy.n_layers
    if swap:
        inverse = torch.empty_like(perms)
        inverse.scatter_(1, perms, torch.arange(perms.shape[1], device=perms.device).expand_as(perms))
        perms = inverse
        fixed, moved = _fixed_blocks(sy, what_y), _entry_major(sx, what_x)
    else:
        fixed, moved = _fixed_blocks(sx, what_x), _entry_major(sy, what_y)
    n, lf, lm = sx.n, fixed[0][2].shape[0], moved.shape[2]
    out = torch.empty(len(perms), lf, lm, dtype=torch.float64, device=sx.device)
    rows = max(e - s for s, e, _ in fixed)
    batch = min(PERMUTATION_BATCH, len(perms))
    scratch = torch.empty(rows * n * batch * lm, device=sx.device)
    with one_cpu_thread(sx.device):
        for b in range(0, len(perms), batch):
            group = perms[b:b + batch]
            acc = torch.zeros(lf, len(group) * lm, dtype=torch.float64, device=sx.device)
            for s, e, block in fixed:
                got = scratch[:(e - s) * (n - s) * len(group) * lm].view(e - s, n - s, len(group), lm)
                for j, perm in enumerate(group):
                    got[:, :, j] = moved.index_select(0, perm[s:e]).index_select(1, perm[s:])
                acc += (block @ got.view(-1, len(group) * lm)).double()
            out[b:b + len(group)] = acc.view(lf, len(group), lm).transpose(0, 1)
    return out.transpose(1, 2) if swap else out
