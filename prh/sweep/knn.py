"""kNN metrics (mutual_knn, cycle_knn, lcs_knn, edit_distance_knn): each
layer's neighbour lists and dense kNN mask, and the sweeps that read one
model's lists in the other's mask: O(N k) lookups per layer pair with exact
integer counts. A permutation only relabels Y's lists, so the same sweeps
(``perm``) are the permuted ones."""

from __future__ import annotations

import torch

from ..metrics import knn_from_gram
from ..sequences import lcs_length, levenshtein
from .blocks import layer_blocks, lookup, sample_order


class KnnTerms:
    """The kNN terms of :class:`prh.sweep.cache.LayerCache` (a mixin: it reads
    the cache's Gram matrices and stores its results there)."""

    def knn(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, N, k) neighbour indices (most similar first) and their float64 similarities."""
        if k > self.distinct_samples() - 1:
            raise ValueError(
                f"topk={k} is too large for a resample with {self.distinct_samples()} distinct "
                f"samples (of {self.n}): use a smaller topk or more samples"
            )

        def build():
            ranked = self.ranking_grams()
            if self._source is not None:
                same = self._source[:, None] == self._source[None, :]
                ranked.masked_fill_(same, float("-inf"))
            idx = knn_from_gram(ranked, k, inplace=True)[0]
            return idx, self.gram_values(idx)
        return self._cached(("knn", k), build)

    def knn_mask(self, k: int) -> torch.Tensor:
        """(L, N*N) bool, flattened: entry n*N + m says m is among n's k neighbours."""
        def build():
            idx = self.knn(k)[0]
            rows = torch.arange(self.n, device=self.device)[None, :, None] * self.n
            mask = torch.zeros(self.n_layers, self.n * self.n, dtype=torch.bool, device=self.device)
            return mask.scatter_(1, (rows + idx).reshape(self.n_layers, -1), True)
        return self._cached(("knn_mask", k), build)


def _relabelled_knn(sy, topk: int, perm: torch.Tensor | None) -> torch.Tensor:
    """Y's kNN lists after reordering its samples: Y'[n] = Y[perm[n]].

    The neighbours of n are those of perm[n], renamed to their new positions.
    """
    iy = sy.knn(topk)[0]
    if perm is None:
        return iy
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return inverse[iy[:, perm]]


def _sweep_mutual_knn(sx, sy, topk, perm=None):
    ix = sx.knn(topk)[0]
    my = sy.by_entry("mask", topk)
    order = sample_order(sy, perm)
    lin = order[None, :, None] * sx.n + order[ix]  # Y's mask entry (n, X-neighbour of n)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sx.n_layers, sy.n_layers * sx.n * topk * 2):
        shared = lookup(my, lin[sl]).sum(dim=(2, 3))
        out[sl] = shared.double() / (sx.n * topk)
    return out


def _sweep_cycle_knn(sx, sy, topk, perm=None):
    # n counts when, for one of its Y-neighbours m, n is among m's X-neighbours.
    iy = _relabelled_knn(sy, topk, perm)
    mx = sx.by_entry("mask", topk)
    lin = iy * sx.n + torch.arange(sx.n, device=sx.device)[None, :, None]
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sy.n_layers, sx.n_layers * sx.n * topk * 2):
        found = lookup(mx, lin[sl]).any(dim=3)  # (by, Lx, N)
        out[:, sl] = found.double().mean(dim=2).T
    return out


#: Above this fraction of rows sharing a sample, a block of a null runs the
#: sequence programme on every row: gathering the sharing ones saves too little
#: (the two cost the same near 0.8, N=1024, k=10).
_SHARED_DENSE = 0.75


def _sweep_sequence(sx, sy, topk, fn, perm, disjoint):
    """Mean over samples of fn(X's list of n, Y's relabelled list of n) for
    every layer pair; ``disjoint`` is fn of two lists with no sample in common.

    Under a permutation most rows share no sample (about k^2 / N a row), so
    Y's kNN mask (the lookups of mutual_knn) first finds the rows that do,
    and only those run the programme; integer sums keep the result exactly
    the dense one.
    """
    ix, iy = sx.knn(topk)[0], sy.knn(topk)[0]
    ly, n = sy.n_layers, sx.n
    total = torch.empty(sx.n_layers, ly, dtype=torch.int64, device=sx.device)
    blocks = layer_blocks(sx.n_layers, ly * n * (topk * topk + 4 * (topk + 1) * 8))
    if perm is None:
        # Aligned models share most neighbours (over 90% of rows in
        # benchmarks/bench_calibration.py): finding the rows would only add its cost.
        for sl in blocks:
            total[sl] = fn(ix[sl, None], iy[None]).sum(dim=2)
        return total.double() / n
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n, device=perm.device)
    my = sy.by_entry("mask", topk)
    lin = perm[None, :, None] * n + perm[ix]  # Y's mask entry (perm[n], perm[X-neighbour of n])
    relabelled = None
    for sl in blocks:
        shared = lookup(my, lin[sl]).any(dim=3)  # (bx, Ly, N)
        li, lj, rows = shared.nonzero(as_tuple=True)
        if len(rows) > _SHARED_DENSE * shared.numel():
            if relabelled is None:
                relabelled = _relabelled_knn(sy, topk, perm)
            total[sl] = fn(ix[sl, None], relabelled[None]).sum(dim=2)
            continue
        part = torch.full((shared.shape[0] * ly,), disjoint * n, dtype=torch.int64, device=sx.device)
        if len(rows):
            # Y's list of n is perm[n]'s, renamed to new positions (_relabelled_knn), for these rows only.
            got = fn(ix[sl][li, rows], inverse[iy[lj, perm[rows]]]) - disjoint
            part.index_add_(0, li * ly + lj, got)
        total[sl] = part.view(-1, ly)
    return total.double() / n


def _sweep_lcs_knn(sx, sy, topk, perm=None):
    return _sweep_sequence(sx, sy, topk, lcs_length, perm, disjoint=0)


def _sweep_edit_distance_knn(sx, sy, topk, perm=None):
    # Two length-k lists with no sample in common are k substitutions apart.
    return 1.0 - _sweep_sequence(sx, sy, topk, levenshtein, perm, disjoint=topk) / topk


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64,
#: with ``perm`` Y's samples reordered (see :mod:`prh.sweep.dispatch`)
SWEEPS = {
    "mutual_knn": _sweep_mutual_knn,
    "cycle_knn": _sweep_cycle_knn,
    "lcs_knn": _sweep_lcs_knn,
    "edit_distance_knn": _sweep_edit_distance_knn,
}
