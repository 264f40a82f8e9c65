"""The layer sweep: every layer of one model against every layer of another.

``layer_scores(X, Y, metric)`` returns S[i, j] = metric(X[:, i], Y[:, j]) after
the spec's clamp and normalisation; :func:`prh.scoring.best_layer_pair` gives
the model pair's alignment and where it is reached.

Speed comes from doing per-layer work once. A :class:`ModelStats` holds, for
each layer of one model, what every metric needs: the Gram matrix, its kNN
lists and masks, kernel row sums, SVCCA bases. Pairs are then combined in
batches:

- products are taken of each layer's centred rows (float32 rows minus their
  mean), with two float64 offsets that restore its inner products (see
  :func:`prh.preprocess.centre_layer`): the stored Gram matrix is then the
  centred linear kernel H K H itself, and holds the variations between
  samples to float32 accuracy even on anisotropic layers, whose samples are
  nearly parallel (mean cosine 0.999 and above, as in large LMs), where an
  uncentred float32 K rounds them away;
- kernel metrics (CKA, unbiased CKA) become one float64 matrix product of
  flattened kernels, <K_i, L_j> for all (i, j) at once; what centring is left
  (resamples are not centred on their own mean) and the unbiased
  estimator's diagonal removal are corrections from row sums, totals and
  diagonals, all on the scale of the result, so no N x N copy is made and
  nothing cancels;
- kNN metrics read one model's neighbour lists in the other's dense kNN mask:
  O(N k) lookups per pair with exact integer counts;
- CKNNA works on the sparse masked kernels (k entries a row), so the HSIC
  terms of a pair cost O(N k) instead of O(N^2);
- SVCCA takes batched singular values of the d x d products of bases.

Pairs are processed in blocks of X's layers so temporary memory stays under
``PRH_SWEEP_BLOCK_BYTES`` (default 256 MiB) whatever Lx, Ly and N are.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .devices import resolve_device
from .metrics import (CKA_EPS, cka_ratio, get_metric, knn_from_gram, rbf_from_gram,
                      resolve_params, standardize_columns, top_left_singular_vectors)
from .preprocess import mean_offsets, prepare_centred_layers, rows_dot
from .sequences import lcs_length, levenshtein

_BLOCK_BYTES = int(os.environ.get("PRH_SWEEP_BLOCK_BYTES", 256 * 2**20))
#: Permutations a CKA null scores together: each block of the fixed model's
#: kernels is read once per batch (see :func:`_permuted_hsic`).
PERMUTATION_BATCH = 16
#: Bytes of one block of the fixed side's kernel rows in a CKA null (CPU, other
#: devices): on a CPU the block stays in a core's L2 cache while a batch of
#: permutations is multiplied into it; a GPU wants fewer, larger products.
_NULL_ROW_BYTES = (2**20, 64 * 2**20)
#: A layer whose samples' spread 1 - sum(G) / (N trace G) (0 for identical
#: rows, 1 - 1/N at most) is below this is constant: its scores are NaN, since
#: ties between identical rows would otherwise give kNN metrics a perfect 1.0.
#: 1e-12 is a variation of ~1e-6 of the rows' norm, ~16 float32 ulps of the
#: stored features: below it the rows differ by rounding alone. Anisotropic
#: layers of large LMs (mean cosine 0.9999999: spread ~1e-7) stay scored.
CONSTANT_SPREAD = 1e-12


class ModelStats:
    """Per-layer quantities of one model's preprocessed features, computed on first use.

    ``layers`` are (N, D_l) float32 tensors that are already clamped and
    normalised (see :func:`prh.preprocess.prepare_layers`). Products are taken
    of centred rows xc = x - m (m: the float32 column mean), and layer l's
    Gram matrix is

        K = xc xc^T + a 1^T + 1 a^T + c,   a = mean_dots[l], c = mean_sq[l]

    (see :func:`prh.preprocess.centre_layer`). With ``offsets`` = (mean_dots
    (L, N), mean_sq (L,)) the layers are taken as centred already
    (:func:`prh.preprocess.prepare_centred_layers`, which centres in float64
    before rounding to float32, or a stats file), unless ``means`` says what
    to subtract (resamples). Uncentred float32 layers carry rounding of ~1e-7
    of |m| each, which on anisotropic layers is as large as the variations
    between samples: :meth:`from_features` centres before rounding.

    A ModelStats may also be rebuilt without its layers (from a stats file, see
    :mod:`prh.formats.stats`): then only what was stored, and what derives from the
    Gram matrices, is available.
    """

    def __init__(self, layers: list[torch.Tensor], *, n: int | None = None,
                 widths: tuple[int, ...] | None = None, device: torch.device | None = None,
                 offsets: tuple[torch.Tensor, torch.Tensor] | None = None,
                 means: list[torch.Tensor] | None = None):
        self.layers = layers
        self.n = int(layers[0].shape[0]) if layers else int(n)
        self.widths = tuple(int(x.shape[1]) for x in layers) if layers else tuple(widths)
        self.device = layers[0].device if layers else torch.device(device)
        if offsets is None and layers and means is None:
            # Centred where products are taken (grams), never stored centred:
            # a float32 mean is enough (any m near the mean serves).
            means = [x.mean(dim=0) for x in layers]
        elif offsets is None and not layers:  # nothing to restore: K is the stored Gram matrix
            offsets = (torch.zeros(len(self.widths), self.n, dtype=torch.float64, device=self.device),
                       torch.zeros(len(self.widths), dtype=torch.float64, device=self.device))
        self._means = means
        self._offsets = (None if offsets is None else
                         tuple(t.to(self.device, torch.float64) for t in offsets))
        self._cache: dict[tuple, Any] = {}
        # Bootstrap resamples repeat samples; a copy must never be its own
        # neighbour, so kNN search excludes every position holding the same sample.
        self._source: torch.Tensor | None = None

    @classmethod
    def from_features(cls, features: Any, *, name: str = "X", q: float = 0.95,
                      exact: bool = False, normalize: bool = True,
                      device: torch.device | str | None = None) -> "ModelStats":
        dev = resolve_device(device, accelerators=("cuda",))
        with torch.inference_mode():
            prepared = prepare_centred_layers(features, name, q=q, exact=exact,
                                              normalize=normalize, device=dev)
        return cls(prepared.layers, offsets=(prepared.mean_dots, prepared.mean_sq))

    @property
    def n_layers(self) -> int:
        return len(self.widths)

    def _offsets_built(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._offsets is None:
            with torch.inference_mode():
                parts = [mean_offsets(x, m) for x, m in zip(self.layers, self._means)]
                self._offsets = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
        return self._offsets

    @property
    def mean_dots(self) -> torch.Tensor:
        """(L, N) float64 a = xc @ m: see the class docstring."""
        return self._offsets_built()[0]

    @property
    def mean_sq(self) -> torch.Tensor:
        """(L,) float64 c = m . m: see the class docstring."""
        return self._offsets_built()[1]

    def centred_layers(self) -> list[torch.Tensor]:
        """The layers as centred float32 rows xc (what :attr:`layers` holds when
        they came centred)."""
        if self._means is None:
            return list(self.layers)
        return [x - m for x, m in zip(self.layers, self._means)]

    def resample(self, idx: torch.Tensor) -> "ModelStats":
        """The same model on samples ``idx`` (with or without repeats).

        Gram matrices are gathered, not recomputed, and stay centred on the
        full sample's mean (the offsets are gathered with them); kNN lists are
        searched again, skipping positions that hold the same original sample.
        """
        idx = torch.as_tensor(idx, dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            out = ModelStats([x[idx] for x in self.layers], n=len(idx), widths=self.widths,
                             device=self.device, offsets=(self.mean_dots[:, idx], self.mean_sq),
                             means=self._means)
            # One flat gather is twice as fast as two fancy-index passes.
            lin = (idx[:, None] * self.n + idx[None, :]).reshape(-1)
            gram = self.grams().reshape(self.n_layers, -1).index_select(1, lin)
            out._cache[("gram",)] = gram.view(self.n_layers, len(idx), len(idx))
        source = idx if self._source is None else self._source[idx]
        out._source = source
        return out

    def distinct_samples(self) -> int:
        return self.n if self._source is None else int(torch.unique(self._source).numel())

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            with torch.inference_mode():
                self._cache[key] = build()
        return self._cache[key]

    def grams(self) -> torch.Tensor:
        """(L, N, N) float32 Gram matrices of the centred layers, xc xc^T.

        The Gram matrices of the layers themselves are these plus the offsets
        (see the class docstring, :meth:`ranking_grams` and :meth:`gram_values`).
        """
        def build():
            out = torch.empty(self.n_layers, self.n, self.n, device=self.device)
            scratch = (None if self._means is None else
                       torch.empty(self.n * max(self.widths), device=self.device))
            for l, (x, g) in enumerate(zip(self.layers, out)):
                if scratch is not None:  # centre into one buffer, reused layer after layer
                    x = torch.sub(x, self._means[l], out=scratch[:x.numel()].view_as(x))
                torch.mm(x, x.T, out=g)
            return out
        return self._cached(("gram",), build)

    def constant_layers(self) -> list[int]:
        """Layers whose samples are (numerically) all the same point, or all
        zero; see :data:`CONSTANT_SPREAD`. Their rows and columns of every
        sweep are NaN."""
        def build():
            # spread: the share of the rows' squared norms that is variation
            # around their mean, from the centred Gram matrices and the
            # offsets (no cancellation against the mean's norm)
            g = self.grams().double()
            trace_c = torch.diagonal(g, dim1=1, dim2=2).sum(-1)
            trace = trace_c + 2 * self.mean_dots.sum(-1) + self.n * self.mean_sq
            spread = (trace_c - g.sum(dim=(1, 2)) / self.n) / trace.clamp_min(1e-300)
            return [i for i in range(self.n_layers)
                    if not bool(trace[i] > 0) or bool(spread[i] < CONSTANT_SPREAD)]
        return self._cached(("constant",), build)

    def ranking_grams(self) -> torch.Tensor:
        """A new (L, N, N) float32 tensor xc xc^T + 1 a^T: the Gram matrices less
        c + a_n in row n, which orders every row as K does (a_n and c are
        constant along it), to float32 accuracy of the variations."""
        return torch.add(self.grams(), self.mean_dots.float()[:, None, :])

    def gram_values(self, idx: torch.Tensor) -> torch.Tensor:
        """float64 K[l, n, idx[l, n, j]] for (L, N, J) column indices idx."""
        a = self.mean_dots
        rows = torch.gather(self.grams(), 2, idx).double()
        cols = torch.gather(a, 1, idx.reshape(self.n_layers, -1)).view_as(idx)
        return rows + cols + a[:, :, None] + self.mean_sq[:, None, None]

    def kernels(self, kernel: str, sigma: float) -> torch.Tensor:
        """(L, N, N) float32 kernels up to what HSIC ignores: xc xc^T for the
        linear kernel (its centred form), RBF - 1 (see :func:`prh.metrics.rbf_from_gram`)."""
        if kernel == "ip":
            return self.grams()
        return self._cached(("rbf", sigma), lambda: rbf_from_gram(self.grams(), sigma))

    def kernel_terms(self, kernel: str, sigma: float) -> dict[str, torch.Tensor]:
        """What the HSIC estimators need of each layer's kernel K (as
        :meth:`kernels` gives it: HSIC is blind to the offsets left out).

        ``flat`` (L, N*N) is K itself (float32, a view of the kernels); in
        float64: ``sq`` (L,) = <K, K>, ``diag`` (L, N), ``rows`` (L, N) row
        sums and ``total`` (L,). Centring and diagonal removal then become
        corrections to the pair products instead of N x N copies:
        <HKH, L> = <K, L> - 2/N (K1).(L1) + (1'K1)(1'L1)/N^2; for a centred
        linear kernel the row sums are ~0 (resamples: small).
        """
        def build():
            square = self.kernels(kernel, sigma)
            flat = square.reshape(self.n_layers, -1)
            if kernel == "ip" and self.layers:
                # K 1 = Xc (Xc^T 1): O(N D) in float64 instead of summing N x N in float64.
                rows = torch.stack([self._centred_row_sums(l) for l in range(self.n_layers)])
            else:
                rows = square.sum(dim=2, dtype=torch.float64)
            return {"flat": flat, "sq": _flat_squared_norms(flat),
                    "diag": square.diagonal(dim1=1, dim2=2).double(),
                    "rows": rows, "total": rows.sum(dim=1)}
        return self._cached(("kernel_terms", kernel, sigma), build)

    def _centred_row_sums(self, l: int) -> torch.Tensor:
        """xc (xc^T 1) in float64 for layer l, from its (maybe uncentred) rows."""
        x = self.layers[l]
        m = None if self._means is None else self._means[l].double()
        s = x.sum(dim=0, dtype=torch.float64)
        if m is None:
            return rows_dot(x, s)
        s -= self.n * m
        return rows_dot(x, s) - m @ s

    def _null_scales(self, kernel: str, sigma: float) -> torch.Tensor:
        """(L,) float32 powers of two that bring each layer's kernel entries to
        about 1 (its RMS entry sqrt(<K, K>) / N): the float32 products of a
        null then neither underflow on tiny layers nor overflow on huge ones,
        and scaling by a power of two rounds nothing."""
        rms = self.kernel_terms(kernel, sigma)["sq"].sqrt() / self.n
        exponent = torch.where(rms > 0, -torch.round(torch.log2(rms)), torch.zeros_like(rms))
        return torch.exp2(exponent.clamp(-120, 120)).float()

    def null_fixed_side(self, kernel: str, sigma: float, unbiased: bool
                        ) -> tuple[list[tuple[int, int, torch.Tensor]], torch.Tensor]:
        """This model's centred kernels as the fixed side of a permutation null.

        H K H (biased) or the U-centred K (unbiased, zero diagonal): one
        centred side suffices for the HSIC of a pair, <HKH, L> = trace(KHLH)
        and <U(K), L> = N(N-3) HSIC_u(K, L), and the products then carry no
        large cancelling terms, so nulls can use float32 products. Each
        layer is centred in float64 and rounded once: entries that cancel to
        ~0 (a kernel that is nearly constant off the diagonal) stay ~0, where
        float32 corrections would leave a residue ~1e-7 of the kernel in
        every entry, which the other, uncentred side does not cancel.

        Both kernels are symmetric, so only the upper triangle is kept, off
        the diagonal doubled: <C, L> = sum over m >= n of W C L, W = 2 above
        the diagonal. Returned as blocks of rows (start, stop, (L, rows *
        (N - start)) float32: the rows' entries from column start on, times W),
        each small enough to stay in cache while a batch of permutations is
        multiplied into it, and the (L,) power-of-two scales applied
        (:meth:`_null_scales`).
        """
        def build():
            t = self.kernel_terms(kernel, sigma)
            n = self.n
            if unbiased:
                rows, total = t["rows"] - t["diag"], t["total"] - t["diag"].sum(1)
                r, c = rows / (n - 2), total / ((n - 1) * (n - 2))
            else:
                r, c = t["rows"] / n, t["total"] / n**2
            scales = self._null_scales(kernel, sigma)
            step = max(1, _NULL_ROW_BYTES[self.device.type != "cpu"] // (4 * n * self.n_layers))
            blocks = [(s, min(n, s + step)) for s in range(0, n, step)]
            packed = [torch.empty(self.n_layers, e - s, n - s, device=self.device) for s, e in blocks]
            kernels = self.kernels(kernel, sigma)
            for l in range(self.n_layers):  # one N x N temporary at a time
                centred = kernels[l].double() - r[l, :, None] - r[l, None, :] + c[l]
                if unbiased:
                    centred.diagonal().zero_()
                centred = (centred * scales[l].double()).float()
                for (s, e), out in zip(blocks, packed):
                    part = out[l]
                    torch.mul(centred[s:e, s:], 2.0, out=part)
                    square = part[:, :e - s]  # rows and columns s..e: upper triangle only
                    square.copy_(torch.triu(square, 1) + torch.diag_embed(centred[s:e, s:e].diagonal()))
            return [(s, e, p.view(self.n_layers, -1)) for (s, e), p in zip(blocks, packed)], scales
        return self._cached(("null_fixed", kernel, sigma, unbiased), build)

    def null_moved_side(self, kernel: str, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """This model's kernels as the permuted side of a null: (N, N, L) float32
        entry-major (entry (n, m) of every layer in one contiguous run, so a
        permuted gather copies runs of L values, not single floats), scaled by
        the (L,) powers of two of :meth:`_null_scales`, which are returned too."""
        def build():
            scales = self._null_scales(kernel, sigma)
            out = torch.empty(self.n, self.n, self.n_layers, device=self.device)
            torch.mul(self.kernels(kernel, sigma).permute(1, 2, 0), scales, out=out)
            return out, scales
        return self._cached(("null_moved", kernel, sigma), build)

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

    def by_entry(self, what: str, k: int = 0) -> torch.Tensor:
        """(N*N, L) entry-major copies of the kNN mask ("mask") or of
        :meth:`ranking_grams` ("gram": K less c + a_n in row n): a sweep reads
        scattered entries of every layer at once, and rows of L values gather
        about 5x faster than columns."""
        def build():
            if what == "mask":
                return self.knn_mask(k).T.contiguous()
            # entry (n, m) of layer l at [n, m, l]: transposed and offset in one pass
            out = torch.empty(self.n, self.n, self.n_layers, device=self.device)
            torch.add(self.grams().permute(1, 2, 0), self.mean_dots.T.float()[None], out=out)
            return out.view(self.n * self.n, self.n_layers)
        return self._cached(("by_entry", what, k), build)

    def cknna_terms(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """mutual[l, n, a]: is n among the neighbours of its own a-th neighbour m (the
        mask entry M_mn that the transposed HSIC term needs); and each layer's
        self-similarity sim(K, K)."""
        def build():
            idx, vals = self.knn(k)
            n = self.n
            lin_t = idx * n + torch.arange(n, device=self.device)[None, :, None]
            mutual = torch.gather(self.knn_mask(k), 1, lin_t.reshape(self.n_layers, -1)).view_as(idx)
            # With itself every neighbour is shared: A = B = M_K * K.
            self_sim = _masked_hsic(idx[:, None], vals[:, None], vals[:, None], mutual[:, None], n)[:, 0]
            return mutual, self_sim
        return self._cached(("cknna", k), build)

    def svcca_basis(self, d: int) -> torch.Tensor:
        """(L, N, d) float64 top-d left singular vectors of the standardised layers."""
        if not self.layers and ("svcca", d) not in self._cache:
            have = sorted(key[1] for key in self._cache if key[0] == "svcca")
            raise ValueError(
                f"SVCCA with cca_dim={d} needs this model's features: its stats hold bases "
                f"for cca_dim in {have} only; recompute the stats with cca_dim={d}"
            )
        return self._cached(
            ("svcca", d),
            lambda: torch.stack([top_left_singular_vectors(standardize_columns(x), d)
                                 for x in self.layers]))


def _blocks(n_rows: int, bytes_per_row: int) -> Iterator[slice]:
    step = max(1, _BLOCK_BYTES // max(1, bytes_per_row))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _lookup(entries: torch.Tensor, lin: torch.Tensor) -> torch.Tensor:
    """entries (N*N, Ly) (see ModelStats.by_entry) read at linear indices lin
    (bx, N, k) -> (bx, Ly, N, k), a strided view."""
    got = entries.index_select(0, lin.reshape(-1)).view(*lin.shape, entries.shape[1])
    return got.permute(0, 3, 1, 2)


def _order(s: ModelStats, perm: torch.Tensor | None) -> torch.Tensor:
    """Which original sample sits at each position of Y after ``perm``."""
    return torch.arange(s.n, device=s.device) if perm is None else perm


def _relabelled_knn(sy: ModelStats, topk: int, perm: torch.Tensor | None) -> torch.Tensor:
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
    order = _order(sy, perm)
    lin = order[None, :, None] * sx.n + order[ix]  # Y's mask entry (n, X-neighbour of n)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * sx.n * topk * 2):
        shared = _lookup(my, lin[sl]).sum(dim=(2, 3))
        out[sl] = shared.double() / (sx.n * topk)
    return out


def _sweep_cycle_knn(sx, sy, topk, perm=None):
    # n counts when, for one of its Y-neighbours m, n is among m's X-neighbours.
    iy = _relabelled_knn(sy, topk, perm)
    mx = sx.by_entry("mask", topk)
    lin = iy * sx.n + torch.arange(sx.n, device=sx.device)[None, :, None]
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sy.n_layers, sx.n_layers * sx.n * topk * 2):
        found = _lookup(mx, lin[sl]).any(dim=3)  # (by, Lx, N)
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
    blocks = _blocks(sx.n_layers, ly * n * (topk * topk + 4 * (topk + 1) * 8))
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
        shared = _lookup(my, lin[sl]).any(dim=3)  # (bx, Ly, N)
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


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(rows, dim=1) ** 2


_PRODUCT_CHUNK = 1 << 14


def _flat_products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T in float64 for float32 (La, M) and (Lb, M), M = N*N.

    Converting column chunks that stay in cache is about 4x faster on a CPU
    than a float64 copy of whole kernels, and float64 accumulation keeps the
    HSIC corrections (which cancel most of <K, L>) accurate.
    """
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    same = a is b
    for start in range(0, a.shape[1], _PRODUCT_CHUNK):
        ca = a[:, start:start + _PRODUCT_CHUNK].double()
        cb = ca if same else b[:, start:start + _PRODUCT_CHUNK].double()
        out.addmm_(ca, cb.T)
    return out


def _flat_squared_norms(a: torch.Tensor) -> torch.Tensor:
    """Row-wise <a, a> in float64 for float32 (L, M), converted in cached chunks
    (the diagonal of _flat_products at 1/L of its cost)."""
    out = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[1], _PRODUCT_CHUNK):
        c = a[:, start:start + _PRODUCT_CHUNK].double()
        out += torch.einsum("lm,lm->l", c, c)
    return out


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Torch ops on one thread inside. A permutation null on a CPU is
    thousands of small ops per pair (cache-sized blocks for CKA, O(N k)
    lookups for kNN metrics), each too short to amortise waking a second
    thread: on the project's shared, busy 2-core machine the waits at every
    op's join made nulls 5-20x slower on two threads than on one
    (benchmarks/bench_calibration.py); pair jobs run side by side anyway."""
    before = torch.get_num_threads()
    if device.type == "cpu" and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _permuted_hsic(sx: ModelStats, sy: ModelStats, kernel: str, sigma: float,
                   perms: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """(P, Lx, Ly) float64 <C_x, P K_y P^T> for each reordering Y'[n] = Y[perm[n]]
    (C: the centred kernel, see :meth:`ModelStats.null_fixed_side`).

    The model with fewer layers is the one permuted, by the inverse
    permutation when it is X: <C_x, P K_y P^T> = <P^T K_x P, C_y>, as H and
    U-centring commute with a reordering. Its permuted kernels are never
    built whole: for each block of the fixed side's rows, the matching rows
    of the permuted side are gathered (whole rows of the entry-major copy,
    then the permuted columns within them) for a batch of permutations, and
    one float32 product of the cached block with the batch's gathered rows
    adds to float64 totals. Work and memory traffic per permutation are
    then a gather of half of one model's kernels, which stays in cache, and
    half the products; the old path gathered N x N kernels through an N^2
    index into memory and read both models' kernels whole.
    """
    swap = sx.n_layers < sy.n_layers
    fixed, moved = (sy, sx) if swap else (sx, sy)
    if swap:  # gather X by the inverse permutations
        inverse = torch.empty_like(perms)
        inverse.scatter_(1, perms, torch.arange(perms.shape[1], device=perms.device).expand_as(perms))
        perms = inverse
    blocks, scale_f = fixed.null_fixed_side(kernel, sigma, unbiased)
    entries, scale_m = moved.null_moved_side(kernel, sigma)
    n, lf, lm = fixed.n, fixed.n_layers, moved.n_layers
    out = torch.empty(len(perms), lf, lm, dtype=torch.float64, device=fixed.device)
    rows = max(e - s for s, e, _ in blocks)
    batch = min(PERMUTATION_BATCH, len(perms))
    scratch = torch.empty(rows * n * batch * lm, device=fixed.device)
    with one_cpu_thread(fixed.device):
        for b in range(0, len(perms), batch):
            group = perms[b:b + batch]
            acc = torch.zeros(lf, len(group) * lm, dtype=torch.float64, device=fixed.device)
            for s, e, fixed_rows in blocks:
                got = scratch[:(e - s) * (n - s) * len(group) * lm].view(e - s, n - s, len(group), lm)
                for j, perm in enumerate(group):
                    got[:, :, j] = entries.index_select(0, perm[s:e]).index_select(1, perm[s:])
                acc += (fixed_rows @ got.view(-1, len(group) * lm)).double()
            out[b:b + len(group)] = acc.view(lf, len(group), lm).transpose(0, 1)
    out /= scale_f.double()[:, None] * scale_m.double()[None, :]
    return out.transpose(1, 2) if swap else out


def _permuted_cka(sx, sy, perms, kernel, sigma, eps=CKA_EPS, unbiased=False):
    """CKA of X against Y reordered by each row of perms: (P, Lx, Ly). The self
    terms do not change under a reordering."""
    kl = _permuted_hsic(sx, sy, kernel, sigma, perms, unbiased)
    if unbiased:
        kl = kl / (sx.n * (sx.n - 3))
    kk = _self_hsic(sx, kernel, sigma, unbiased)
    ll = _self_hsic(sy, kernel, sigma, unbiased)
    return cka_ratio(kl, kk[:, None], ll[None, :], eps)


def _self_hsic(s: ModelStats, kernel: str, sigma: float, unbiased: bool) -> torch.Tensor:
    t = s.kernel_terms(kernel, sigma)
    n = s.n
    if not unbiased:
        return t["sq"] - (2.0 / n) * _squared_norms(t["rows"]) + t["total"] ** 2 / n**2
    rows, total = t["rows"] - t["diag"], t["total"] - t["diag"].sum(1)
    inner = t["sq"] - _squared_norms(t["diag"])
    return (inner + total**2 / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * _squared_norms(rows)) / (n * (n - 3))


def _sweep_cka(sx, sy, kernel, sigma, eps=CKA_EPS):
    n = sx.n
    tx, ty = sx.kernel_terms(kernel, sigma), sy.kernel_terms(kernel, sigma)
    # trace(K H L H) for all layer pairs, centring applied as corrections
    kl = (_flat_products(tx["flat"], ty["flat"]) - (2.0 / n) * (tx["rows"] @ ty["rows"].T)
          + tx["total"][:, None] * ty["total"][None, :] / n**2)
    kk, ll = _self_hsic(sx, kernel, sigma, False), _self_hsic(sy, kernel, sigma, False)
    return cka_ratio(kl, kk[:, None], ll[None, :], eps)


def _sweep_unbiased_cka(sx, sy, kernel, sigma, eps=CKA_EPS):
    n = sx.n
    tx, ty = sx.kernel_terms(kernel, sigma), sy.kernel_terms(kernel, sigma)
    # K~ (zero diagonal) from K's terms: <K~, L~> = <K, L> - diag(K).diag(L).
    rows_x, rows_y = tx["rows"] - tx["diag"], ty["rows"] - ty["diag"]
    total_x, total_y = tx["total"] - tx["diag"].sum(1), ty["total"] - ty["diag"].sum(1)
    kl = (_flat_products(tx["flat"], ty["flat"]) - tx["diag"] @ ty["diag"].T
          + total_x[:, None] * total_y[None, :] / ((n - 1) * (n - 2))
          - 2.0 / (n - 2) * (rows_x @ rows_y.T)) / (n * (n - 3))
    kk, ll = _self_hsic(sx, kernel, sigma, True), _self_hsic(sy, kernel, sigma, True)
    return cka_ratio(kl, kk[:, None], ll[None, :], eps)


def _masked_hsic(cols, a_vals, b_vals, mutual, n):
    """HSIC_u(A, B) for masked kernels given sparsely, batched over (bx, by) pairs.

    A = M * K and B = M * L with M = M_K * M_L have at most k entries per row n,
    at columns cols[..., n, a] where a_vals and b_vals hold K and L (zero where
    the column is not in both kNN lists). ``mutual`` marks entries whose mask
    is set in both directions (M_nm M_mn), the only ones that survive in the
    transposed term sum(A * B^T) (K and L are symmetric). The diagonal is never
    in a kNN list, so A and B already have the zero diagonal HSIC_u wants.
    Returns (bx, by) float64.
    """
    bx, by, _, k = a_vals.shape
    t_transpose = (a_vals * b_vals * mutual).sum(dim=(-2, -1))
    sum_a = a_vals.sum(dim=(-2, -1))
    sum_b = b_vals.sum(dim=(-2, -1))
    # sum(A B) = sum_m (column m of A summed) * (row m of B summed)
    col_sum_a = torch.zeros(bx, by, n, dtype=torch.float64, device=a_vals.device)
    col_sum_a.scatter_add_(2, cols.expand(bx, by, n, k).reshape(bx, by, n * k),
                           a_vals.reshape(bx, by, n * k))
    t_product = (col_sum_a * b_vals.sum(dim=-1)).sum(dim=-1)
    value = t_transpose + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * t_product / (n - 2)
    return value / (n * (n - 3))


def _sparse_masked_hsic(ix, vx, lin, lin_t, mutual_x, mask_y, gram_y, shift, n):
    """:func:`_masked_hsic` of X layers (bx) against every Y layer from the
    shared entries only: (n, a) with X's a-th neighbour m of n also among Y's
    neighbours of n. Returns (bx, Ly) float64."""
    bx, ly = ix.shape[0], mask_y.shape[1]
    found = mask_y.index_select(0, lin.reshape(-1)).view(bx, n, ix.shape[2], ly)
    i, row, a, j = found.nonzero(as_tuple=True)
    e_lin = lin[i, row, a]
    av = vx[i, row, a].double()
    bv = gram_y[e_lin, j].double() + shift[j, row]                # L_nm (see by_entry)
    both = mutual_x[i, row, a] & mask_y[lin_t[i, row, a], j]     # M_nm M_mn
    pair = i * ly + j
    size = bx * ly
    zeros = torch.zeros(size, dtype=torch.float64, device=ix.device)
    t_transpose = zeros.clone().index_add_(0, pair, av * bv * both)
    sum_a = zeros.clone().index_add_(0, pair, av)
    sum_b = zeros.clone().index_add_(0, pair, bv)
    # sum(A B) = sum_m (column m of A summed) * (row m of B summed)
    col_a = torch.zeros(size * n, dtype=torch.float64, device=ix.device)
    col_a.index_add_(0, pair * n + ix[i, row, a], av)
    row_b = torch.zeros(size * n, dtype=torch.float64, device=ix.device)
    row_b.index_add_(0, pair * n + row, bv)
    t_product = (col_a * row_b).view(size, n).sum(dim=1)
    value = t_transpose + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * t_product / (n - 2)
    return (value / (n * (n - 3))).view(bx, ly)


def _sweep_cknna(sx, sy, topk, perm=None):
    n = sx.n
    ix, vx = sx.knn(topk)
    mutual_x, self_x = sx.cknna_terms(topk)
    mask_y = sy.by_entry("mask", topk)
    _, self_y = sy.cknna_terms(topk)  # a reordering of samples leaves sim(L, L) as it is
    gram_y = sy.by_entry("gram")    # L less c + a_n in row n, float32
    order = _order(sy, perm)
    shift_y = (sy.mean_dots[:, order] + sy.mean_sq[:, None])[None, :, :, None]  # c + a_n
    lin = order[None, :, None] * n + order[ix]    # Y's entry (n, m), m in X's list of n
    lin_t = order[ix] * n + order[None, :, None]  # the transposed entry (m, n)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    if perm is not None:
        # Under a permutation few of X's neighbour entries are Y's too (about
        # k/N of them), so only those are gathered and summed: the dense
        # path below spends most of a null's time multiplying zeros.
        shift = sy.mean_dots[:, order] + sy.mean_sq[:, None]      # (Ly, N): c + a_n
        for sl in _blocks(sx.n_layers, sy.n_layers * n * topk * 2):
            kl = _sparse_masked_hsic(ix[sl], vx[sl], lin[sl], lin_t[sl], mutual_x[sl], mask_y,
                                     gram_y, shift, n)
            out[sl] = cka_ratio(kl, self_x[sl, None], self_y[None, :])
        return out
    for sl in _blocks(sx.n_layers, sy.n_layers * n * topk * 40):
        shared = _lookup(mask_y, lin[sl])                       # m in Y's list of n too
        a_vals = vx[sl, None] * shared
        b_vals = _lookup(gram_y, lin[sl]).double()              # L_nm at those entries
        b_vals += shift_y
        b_vals *= shared
        mutual = mutual_x[sl, None] & _lookup(mask_y, lin_t[sl])
        kl = _masked_hsic(ix[sl, None], a_vals, b_vals, mutual, n)
        out[sl] = cka_ratio(kl, self_x[sl, None], self_y[None, :])
    return out


def _sweep_svcca(sx, sy, cca_dim, perm=None):
    ux, uy = sx.svcca_basis(cca_dim), sy.svcca_basis(cca_dim)
    if perm is not None:
        uy = uy[:, perm]
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * cca_dim * cca_dim * 8 * 4):
        cross = torch.einsum("ind,jne->ijde", ux[sl], uy)
        out[sl] = torch.linalg.svdvals(cross).mean(dim=-1)
    return out


_SWEEPS: dict[str, Callable[..., torch.Tensor]] = {
    "mutual_knn": _sweep_mutual_knn,
    "cycle_knn": _sweep_cycle_knn,
    "lcs_knn": _sweep_lcs_knn,
    "edit_distance_knn": _sweep_edit_distance_knn,
    "cka": _sweep_cka,
    "unbiased_cka": _sweep_unbiased_cka,
    "cknna": _sweep_cknna,
    "svcca": _sweep_svcca,
}


def _check_pair(sx: ModelStats, sy: ModelStats, metric: str, params: dict) -> dict:
    get_metric(metric)
    if sx.n != sy.n:
        raise ValueError(
            f"X and Y must have the same number of samples: X has {sx.n}, Y has {sy.n}"
        )
    if sx.device != sy.device:
        raise ValueError(f"X is on {sx.device} but Y is on {sy.device}; use one device")
    return resolve_params(metric, params, n=sx.n, dims=sx.widths + sy.widths)


def sweep(sx: ModelStats, sy: ModelStats, metric: str, **params: Any) -> np.ndarray:
    """Layer x layer scores of two prepared models; reuses (and fills) their caches.

    Use this when one model meets many others, or is scored with several
    metrics: each model's per-layer work is then done once in all.
    """
    p = _check_pair(sx, sy, metric, params)
    with torch.inference_mode():
        scores = _SWEEPS[metric](sx, sy, **p)
    return _mask_constant(sx, sy, scores.cpu().numpy())


def _mask_constant(sx: ModelStats, sy: ModelStats, scores: np.ndarray) -> np.ndarray:
    """NaN in the rows of X's and the columns of Y's constant layers (last two axes)."""
    cx, cy = sx.constant_layers(), sy.constant_layers()
    if cx or cy:
        scores = np.array(scores, dtype=np.float64)
        scores[..., cx, :] = np.nan
        scores[..., :, cy] = np.nan
    return scores


_PERMUTED: dict[str, Callable[..., torch.Tensor]] = {
    "cka": partial(_permuted_cka, unbiased=False),
    "unbiased_cka": partial(_permuted_cka, unbiased=True),
}


def _permuted(sx: ModelStats, sy: ModelStats, metric: str, perms: torch.Tensor,
              params: dict) -> torch.Tensor:
    if metric in _PERMUTED:
        return _PERMUTED[metric](sx, sy, perms, **params)
    return torch.stack([_SWEEPS[metric](sx, sy, perm=perm, **params) for perm in perms])


def permuted_sweep(sx: ModelStats, sy: ModelStats, metric: str, perm: torch.Tensor,
                   params: dict) -> np.ndarray:
    """Layer x layer matrices with Y's samples reordered by ``perm``: one (N,)
    permutation gives (Lx, Ly), a (P, N) batch (P, Lx, Ly); ``params`` must
    already be resolved (see :func:`prh.metrics.resolve_params`). CKA nulls
    cost least per permutation in batches of :data:`PERMUTATION_BATCH`."""
    with torch.inference_mode():
        out = _permuted(sx, sy, metric, perm.reshape(-1, sx.n), params)
        return _mask_constant(sx, sy, out.reshape(*perm.shape[:-1], *out.shape[1:]).cpu().numpy())


def permuted_sweeps(sx: ModelStats, sy: ModelStats, metric: str, perms: torch.Tensor,
                    **params: Any) -> np.ndarray:
    """Layer x layer scores with Y's samples reordered by each row of ``perms`` (P, N).

    Returns (P, Lx, Ly). Nothing per layer is recomputed: a reordering only
    relabels Y's kNN lists and permutes its kernels, so this is the engine of
    permutation nulls.
    """
    p = _check_pair(sx, sy, metric, params)
    perms = torch.as_tensor(perms, dtype=torch.int64, device=sx.device)
    if perms.ndim != 2 or perms.shape[1] != sx.n:
        raise ValueError(f"perms must have shape (P, {sx.n}), got {tuple(perms.shape)}")
    return permuted_sweep(sx, sy, metric, perms, p)


def layer_scores(X: Any, Y: Any, metric: str, *, q: float = 0.95, exact: bool = False,
                 normalize: bool = True, device: torch.device | str | None = None,
                 **params: Any) -> np.ndarray:
    """S[i, j] = metric(X[:, i], Y[:, j]) for every layer pair, as an (Lx, Ly) float64 array.

    X and Y are raw per-layer features of one model each: an N x L x D array
    (numpy or torch), or a list of per-layer N x D_l arrays when layer widths
    differ. Each model is clamped at quantile ``q`` (``exact`` selects the
    exact-quantile mode; q=1 disables the clamp) and, with ``normalize``, each
    layer's rows are L2-normalised, as ``docs/metrics.md`` prescribes.
    ``params`` are the metric's parameters (topk, kernel, sigma, cca_dim).
    """
    get_metric(metric)
    dev = resolve_device(device, accelerators=("cuda",))
    sx = ModelStats.from_features(X, name="X", q=q, exact=exact, normalize=normalize, device=dev)
    sy = ModelStats.from_features(Y, name="Y", q=q, exact=exact, normalize=normalize, device=dev)
    return sweep(sx, sy, metric, **params)

