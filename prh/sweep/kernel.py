"""Kernel metrics (cka, unbiased_cka, cknna): each layer's kernel and its
HSIC terms, the sweeps, and the CKA permutation null.

- CKA and unbiased CKA become one float64 matrix product of flattened
  kernels, <K_i, L_j> for all (i, j) at once; what centring is left
  (resamples are not centred on their own mean) and the unbiased
  estimator's diagonal removal are corrections from row sums, totals and
  diagonals, all on the scale of the result, so no N x N copy is made and
  nothing cancels. Their nulls multiply one centred side, kept in
  cache-sized blocks, into batches of the other side's permuted kernels
  (:func:`_permuted_hsic`).
- CKNNA works on the sparse masked kernels (k entries a row, from the kNN
  lists of :mod:`prh.sweep.knn`), so the HSIC terms of a pair cost O(N k)
  instead of O(N^2); a permutation relabels Y's lists (``perm``).
"""

from __future__ import annotations

from functools import partial

import torch

from ..metrics import CKA_EPS, cka_ratio, rbf_from_gram
from ..preprocess import rows_dot
from .blocks import layer_blocks, lookup, one_cpu_thread, sample_order

#: Permutations a CKA null scores together: each block of the fixed model's
#: kernels is read once per batch (see :func:`_permuted_hsic`).
PERMUTATION_BATCH = 16
#: Bytes of one block of the fixed side's kernel rows in a CKA null (CPU, other
#: devices): on a CPU the block stays in a core's L2 cache while a batch of
#: permutations is multiplied into it; a GPU wants fewer, larger products.
_NULL_ROW_BYTES = (2**20, 64 * 2**20)


class KernelTerms:
    """The kernel terms of :class:`prh.sweep.cache.LayerCache` (a mixin: it
    reads the cache's Gram matrices and kNN lists and stores its results there)."""

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


def _permuted_hsic(sx, sy, kernel: str, sigma: float,
                   perms: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """(P, Lx, Ly) float64 <C_x, P K_y P^T> for each reordering Y'[n] = Y[perm[n]]
    (C: the centred kernel, see :meth:`KernelTerms.null_fixed_side`).

    The model with fewer layers is the one permuted, by the inverse
    permutation when it is X: <C_x, P K_y P^T> = <P^T K_x P, C_y>, as H and
    U-centring commute with a reordering. Its permuted kernels are never
    built whole: for each block of the fixed side's rows, the matching rows
    of the permuted side are gathered (whole rows of the entry-major copy,
    then the permuted columns within them) for a batch of permutations, and
    one float32 product of the cached block with the batch's gathered rows
    adds to float64 totals. Work and memory traffic per permutation are
    then a gather of half of one model's kernels, which stays in cache, and
    half the products, where gathering whole N x N kernels through an N^2
    index goes through memory and reads both models' kernels whole.
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


def _self_hsic(s, kernel: str, sigma: float, unbiased: bool) -> torch.Tensor:
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
    order = sample_order(sy, perm)
    shift_y = (sy.mean_dots[:, order] + sy.mean_sq[:, None])[None, :, :, None]  # c + a_n
    lin = order[None, :, None] * n + order[ix]    # Y's entry (n, m), m in X's list of n
    lin_t = order[ix] * n + order[None, :, None]  # the transposed entry (m, n)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    if perm is not None:
        # Under a permutation few of X's neighbour entries are Y's too (about
        # k/N of them), so only those are gathered and summed: the dense
        # path below spends most of a null's time multiplying zeros.
        shift = sy.mean_dots[:, order] + sy.mean_sq[:, None]      # (Ly, N): c + a_n
        for sl in layer_blocks(sx.n_layers, sy.n_layers * n * topk * 2):
            kl = _sparse_masked_hsic(ix[sl], vx[sl], lin[sl], lin_t[sl], mutual_x[sl], mask_y,
                                     gram_y, shift, n)
            out[sl] = cka_ratio(kl, self_x[sl, None], self_y[None, :])
        return out
    for sl in layer_blocks(sx.n_layers, sy.n_layers * n * topk * 40):
        shared = lookup(mask_y, lin[sl])                       # m in Y's list of n too
        a_vals = vx[sl, None] * shared
        b_vals = lookup(gram_y, lin[sl]).double()              # L_nm at those entries
        b_vals += shift_y
        b_vals *= shared
        mutual = mutual_x[sl, None] & lookup(mask_y, lin_t[sl])
        kl = _masked_hsic(ix[sl, None], a_vals, b_vals, mutual, n)
        out[sl] = cka_ratio(kl, self_x[sl, None], self_y[None, :])
    return out


#: this family's sweeps: fn(sx, sy, **params) -> (Lx, Ly) float64; cknna also
#: takes ``perm`` (Y's samples reordered), CKA's nulls are :data:`PERMUTED`
SWEEPS = {
    "cka": _sweep_cka,
    "unbiased_cka": _sweep_unbiased_cka,
    "cknna": _sweep_cknna,
}

#: batched nulls: fn(sx, sy, perms, **params) -> (P, Lx, Ly) for (P, N) perms
PERMUTED = {
    "cka": partial(_permuted_cka, unbiased=False),
    "unbiased_cka": partial(_permuted_cka, unbiased=True),
}
