"""The layer sweep: every layer of one model against every layer of another.

``layer_scores(X, Y, metric)`` returns S[i, j] = metric(X[:, i], Y[:, j]) after
the spec's clamp and normalisation; ``best_layer_pair(S)`` gives the model
pair's alignment and where it is reached.

Speed comes from doing per-layer work once. A :class:`ModelStats` holds, for
each layer of one model, what every metric needs: the Gram matrix, its kNN
lists, centred or zero-diagonal kernels, SVCCA bases. Pairs are then combined
in batches:

- kernel metrics (CKA, unbiased CKA) become one matrix product of flattened
  kernels: HSIC(K_i, L_j) = <H K_i H, L_j>_F for all (i, j) at once;
- kNN metrics compare the k-long neighbour lists of all pairs in one
  vectorised pass (exact integer counts);
- CKNNA works on the sparse mutual-kNN masks (k entries a row), so the HSIC
  terms of a pair cost O(N k^2) instead of O(N^2);
- SVCCA takes batched singular values of the d x d products of bases.

Pairs are processed in blocks of X's layers so temporary memory stays under
``PRH_SWEEP_BLOCK_BYTES`` (default 256 MiB) whatever Lx, Ly and N are.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .checks import resolve_device
from .metrics import (center, cka_ratio, get_metric, knn_from_gram, rbf_from_gram,
                      resolve_params, standardize_columns, top_left_singular_vectors)
from .preprocess import prepare_layers
from .sequences import lcs_length, levenshtein

_BLOCK_BYTES = int(os.environ.get("PRH_SWEEP_BLOCK_BYTES", 256 * 2**20))


class ModelStats:
    """Per-layer quantities of one model's preprocessed features, computed on first use.

    ``layers`` are (N, D_l) float32 tensors that are already clamped and
    normalised (see :func:`prh.preprocess.prepare_layers`).
    """

    def __init__(self, layers: list[torch.Tensor]):
        self.layers = layers
        self.n = int(layers[0].shape[0])
        self.device = layers[0].device
        self._cache: dict[tuple, Any] = {}

    @classmethod
    def from_features(cls, features: Any, *, name: str = "X", q: float = 0.95,
                      exact: bool = False, normalize: bool = True,
                      device: torch.device | str | None = None) -> "ModelStats":
        dev = resolve_device(device)
        with torch.inference_mode():
            return cls(prepare_layers(features, name, q=q, exact=exact,
                                      normalize=normalize, device=dev))

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(x.shape[1]) for x in self.layers)

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            with torch.inference_mode():
                self._cache[key] = build()
        return self._cache[key]

    def grams(self) -> torch.Tensor:
        """(L, N, N) float32 inner-product Gram matrices."""
        return self._cached(("gram",), lambda: torch.stack([x @ x.T for x in self.layers]))

    def knn(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, N, k) neighbour indices (most similar first) and their float64 similarities."""
        def build():
            idx, vals = knn_from_gram(self.grams(), k)
            return idx, vals.double()
        return self._cached(("knn", k), build)

    def kernels(self, kernel: str, sigma: float) -> torch.Tensor:
        if kernel == "ip":
            return self.grams()
        return self._cached(("rbf", sigma), lambda: rbf_from_gram(self.grams(), sigma))

    def centered(self, kernel: str, sigma: float) -> torch.Tensor:
        """(L, N*N) float64 flattened H K H, for biased HSIC."""
        return self._cached(
            ("centered", kernel, sigma),
            lambda: torch.stack([center(k.double()).reshape(-1)
                                 for k in self.kernels(kernel, sigma)]))

    def zero_diagonal(self, kernel: str, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flattened K~ (L, N*N), its sums (L,) and row sums (L, N): the unbiased HSIC terms."""
        def build():
            flats, sums, rows = [], [], []
            for k in self.kernels(kernel, sigma):
                kt = k.double().clone()
                kt.fill_diagonal_(0.0)
                rows.append(kt.sum(dim=1))
                sums.append(rows[-1].sum())
                flats.append(kt.reshape(-1))
            return torch.stack(flats), torch.stack(sums), torch.stack(rows)
        return self._cached(("zero_diag", kernel, sigma), build)

    def cknna_terms(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """kNN indices and similarities, mutual flags and each layer's self-similarity.

        mutual[l, n, a] says whether n is among the neighbours of its own a-th
        neighbour: the mask entry M_mn that the transposed HSIC term needs.
        """
        def build():
            idx, vals = self.knn(k)
            rows = torch.arange(self.n, device=self.device)[None, :, None, None]
            mutual = (idx[torch.arange(self.n_layers, device=self.device)[:, None, None], idx]
                      == rows).any(dim=-1)
            self_sim = torch.stack([
                _cknna_hsic(idx[l:l + 1], vals[l:l + 1], mutual[l:l + 1],
                            idx[l:l + 1], vals[l:l + 1], mutual[l:l + 1], self.n)[0, 0]
                for l in range(self.n_layers)])
            return idx, vals, mutual, self_sim
        return self._cached(("cknna", k), build)

    def svcca_basis(self, d: int) -> torch.Tensor:
        """(L, N, d) float64 top-d left singular vectors of the standardised layers."""
        return self._cached(
            ("svcca", d),
            lambda: torch.stack([top_left_singular_vectors(standardize_columns(x), d)
                                 for x in self.layers]))


def _blocks(n_rows: int, bytes_per_row: int) -> Iterator[slice]:
    step = max(1, _BLOCK_BYTES // max(1, bytes_per_row))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _knn_lists(sx: ModelStats, sy: ModelStats, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return sx.knn(k)[0], sy.knn(k)[0]


def _sweep_mutual_knn(sx, sy, topk):
    ix, iy = _knn_lists(sx, sy, topk)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * sx.n * topk * topk):
        shared = (ix[sl, None, :, :, None] == iy[None, :, :, None, :]).sum(dim=(2, 3, 4))
        out[sl] = shared.double() / (sx.n * topk)
    return out


def _sweep_cycle_knn(sx, sy, topk):
    ix, iy = _knn_lists(sx, sy, topk)
    self_idx = torch.arange(sx.n, device=sx.device)[None, None, :, None, None]
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * sx.n * topk * topk * 9):
        back = ix[sl][:, iy]  # (bx, Ly, N, k, k): X's neighbours of n's Y-neighbours
        out[sl] = (back == self_idx).flatten(3).any(dim=3).double().mean(dim=2)
    return out


def _sweep_sequence(sx, sy, topk, fn):
    ix, iy = _knn_lists(sx, sy, topk)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * sx.n * (topk * topk + 4 * (topk + 1) * 8)):
        out[sl] = fn(ix[sl, None], iy[None]).double().mean(dim=2)
    return out


def _sweep_lcs_knn(sx, sy, topk):
    return _sweep_sequence(sx, sy, topk, lcs_length)


def _sweep_edit_distance_knn(sx, sy, topk):
    return 1.0 - _sweep_sequence(sx, sy, topk, levenshtein) / topk


def _sweep_cka(sx, sy, kernel, sigma):
    cx, cy = sx.centered(kernel, sigma), sy.centered(kernel, sigma)
    kl = cx @ cy.T
    kk = (cx * cx).sum(dim=1)
    ll = (cy * cy).sum(dim=1)
    return cka_ratio(kl, kk[:, None], ll[None, :])


def _unbiased_hsic(flat_x, sum_x, rows_x, flat_y, sum_y, rows_y, n):
    value = (flat_x @ flat_y.T
             + sum_x[:, None] * sum_y[None, :] / ((n - 1) * (n - 2))
             - 2.0 * (rows_x @ rows_y.T) / (n - 2))
    return value / (n * (n - 3))


def _sweep_unbiased_cka(sx, sy, kernel, sigma):
    fx, s_x, rx = sx.zero_diagonal(kernel, sigma)
    fy, s_y, ry = sy.zero_diagonal(kernel, sigma)
    n = sx.n
    kl = _unbiased_hsic(fx, s_x, rx, fy, s_y, ry, n)
    kk = ((fx * fx).sum(1) + s_x**2 / ((n - 1) * (n - 2))
          - 2.0 * (rx * rx).sum(1) / (n - 2)) / (n * (n - 3))
    ll = ((fy * fy).sum(1) + s_y**2 / ((n - 1) * (n - 2))
          - 2.0 * (ry * ry).sum(1) / (n - 2)) / (n * (n - 3))
    return cka_ratio(kl, kk[:, None], ll[None, :])


def _cknna_hsic(ix, vx, mx, iy, vy, my, n):
    """HSIC_u(M * K, M * L) for every pair of a block, from sparse kNN masks.

    With M = M_K * M_L the masked kernels A = M*K and B = M*L have at most k
    entries per row, at the columns shared by both kNN lists. The unbiased
    HSIC's terms then are: sum(A * B^T) over entries whose mask is mutual
    (M_nm M_mn), sum(A) sum(B), and sum(A B) = column sums of A . row sums of B.
    Returns (bx, Ly) float64.
    """
    bx, ly, k = ix.shape[0], iy.shape[0], ix.shape[2]
    eq = ix[:, None, :, :, None] == iy[None, :, :, None, :]  # (bx, Ly, N, ka, kb)
    matched = eq.any(dim=-1)
    a_vals = vx[:, None] * matched  # A's entries at X's list positions, 0 if unmatched
    b_vals = (eq * vy[None, :, :, None, :]).sum(dim=-1)  # L at the same columns
    mutual = mx[:, None] & (eq & my[None, :, :, None, :]).any(dim=-1)
    t_transpose = (a_vals * b_vals * mutual).sum(dim=(-2, -1))
    sum_a = a_vals.sum(dim=(-2, -1))
    sum_b = b_vals.sum(dim=(-2, -1))
    cols = ix[:, None].expand(bx, ly, n, k).reshape(bx, ly, n * k)
    col_sum_a = torch.zeros(bx, ly, n, dtype=torch.float64, device=ix.device)
    col_sum_a.scatter_add_(2, cols, a_vals.reshape(bx, ly, n * k))
    t_product = (col_sum_a * b_vals.sum(dim=-1)).sum(dim=-1)
    value = (t_transpose + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * t_product / (n - 2))
    return value / (n * (n - 3))


def _sweep_cknna(sx, sy, topk):
    ix, vx, mx, self_x = sx.cknna_terms(topk)
    iy, vy, my, self_y = sy.cknna_terms(topk)
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in _blocks(sx.n_layers, sy.n_layers * sx.n * topk * topk * 24):
        kl = _cknna_hsic(ix[sl], vx[sl], mx[sl], iy, vy, my, sx.n)
        out[sl] = cka_ratio(kl, self_x[sl, None], self_y[None, :])
    return out


def _sweep_svcca(sx, sy, cca_dim):
    ux, uy = sx.svcca_basis(cca_dim), sy.svcca_basis(cca_dim)
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


def sweep(sx: ModelStats, sy: ModelStats, metric: str, **params: Any) -> np.ndarray:
    """Layer x layer scores of two prepared models; reuses (and fills) their caches.

    Use this when one model meets many others, or is scored with several
    metrics: each model's per-layer work is then done once in all.
    """
    get_metric(metric)
    if sx.n != sy.n:
        raise ValueError(
            f"X and Y must have the same number of samples: X has {sx.n}, Y has {sy.n}"
        )
    if sx.device != sy.device:
        raise ValueError(f"X is on {sx.device} but Y is on {sy.device}; use one device")
    p = resolve_params(metric, params, n=sx.n, dims=sx.widths + sy.widths)
    with torch.inference_mode():
        scores = _SWEEPS[metric](sx, sy, **p)
    return scores.cpu().numpy()


def layer_scores(X: Any, Y: Any, metric: str, *, q: float = 0.95, exact: bool = False,
                 normalize: bool = True, device: torch.device | str | None = None,
                 **params: Any) -> np.ndarray:
    """S[i, j] = metric(X[:, i], Y[:, j]) for every layer pair, as an (Lx, Ly) float64 array.

    X and Y are raw per-layer features of one model each: an N x L x D array
    (numpy or torch), or a list of per-layer N x D_l arrays when layer widths
    differ. Each model is clamped at quantile ``q`` (``exact`` selects the
    exact-quantile mode; q=1 disables the clamp) and, with ``normalize``, each
    layer's rows are L2-normalised, as ``shared/spec/metrics.md`` prescribes.
    ``params`` are the metric's parameters (topk, kernel, sigma, cca_dim).
    """
    get_metric(metric)
    dev = resolve_device(device)
    sx = ModelStats.from_features(X, name="X", q=q, exact=exact, normalize=normalize, device=dev)
    sy = ModelStats.from_features(Y, name="Y", q=q, exact=exact, normalize=normalize, device=dev)
    return sweep(sx, sy, metric, **params)


def best_layer_pair(S: Any) -> tuple[float, tuple[int, int]]:
    """The largest score of a layer x layer matrix and its (i, j); ties go to the
    first in row-major order. NaN entries are ignored."""
    s = np.asarray(S, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"S must be a non-empty 2-D matrix of scores, got shape {s.shape}")
    if np.isnan(s).all():
        raise ValueError("S holds only NaN scores; there is no best layer pair")
    flat = int(np.nanargmax(s))
    i, j = divmod(flat, s.shape[1])
    return float(s[i, j]), (i, j)
