"""Exact k-nearest-neighbour search in blocks of rows, with the dense path's
neighbour lists, ties included.

The dense path ranks each layer's samples by one float32 matrix R
(:meth:`prh.sweep.cache.LayerCache.ranking_grams`, :func:`prh.metrics.ranking_gram`):
R = xc xc^T + 1 a^T for the cosine, minus the squared Euclidean distances
(:mod:`.distances`) for ``distance: euclidean``; its diagonal (and, in a
bootstrap resample, every position holding the same sample) set to -inf, and
``torch.topk`` of each row. Here R is formed ``block_rows`` rows at a time,
memory O(block_rows x N) instead of O(N^2), and each row goes through the
same ``topk``: the lists come out identical, ties and near-ties included,
as long as every block's product holds the same float32 bits as the rows of
the whole product.

That is what BLAS gives for products of at least a few rows: on the
project's MKL, a product of M rows of xc with xc^T holds, bit for bit, the
same values as those rows of the N x N product for M = 4, 8 and every M >=
12, while M in 1-3, 5-7, 9-11 take another code path whose roundings differ
(measured; tests/test_sweep_search.py checks it on the running machine). So
every block here has the same ``block_rows`` >= :data:`MIN_BLOCK_ROWS` rows:
the last one starts early and overlaps the one before. On CUDA the same
holds only as far as cuBLAS picks kernels that sum in the same order for
both shapes; the tests compare the two on the CPU.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from ..devices import resolve_device
from ..preprocess import centre_layer

#: no block has fewer rows: BLAS takes other code paths for products of fewer
#: than 12 rows (see the module docstring), and 16 keeps a margin
MIN_BLOCK_ROWS = 16
#: temporaries of one block of rows (PRH_SEARCH_BLOCK_BYTES, default 256 MiB)
_BLOCK_BYTES = int(os.environ.get("PRH_SEARCH_BLOCK_BYTES", 256 * 2**20))
#: bytes a block holds per entry: the float32 products and ranking (cosine),
#: and the float64 distance terms (Euclidean)
_ENTRY_BYTES = {"cosine": 9, "euclidean": 41}


class Neighbours(NamedTuple):
    """One layer's kNN lists, most similar first: ``idx`` (N, k) int64, and
    at those entries the float32 products of the centred rows ``gram`` (what
    :meth:`prh.sweep.cache.LayerCache.gram_values` reads) and the float32
    ranking values ``rank`` (what ``by_entry("gram")`` holds there)."""

    idx: torch.Tensor
    gram: torch.Tensor
    rank: torch.Tensor


def block_rows_for(n: int, distance: str = "cosine", block_rows: int | None = None) -> int:
    """Rows per block: ``block_rows`` if given, else as many as keep a block's
    temporaries under PRH_SEARCH_BLOCK_BYTES; at least MIN_BLOCK_ROWS, at
    most N (one block: the dense computation itself)."""
    if block_rows is None:
        block_rows = _BLOCK_BYTES // max(1, n * _ENTRY_BYTES[distance])
    return min(n, max(MIN_BLOCK_ROWS, int(block_rows)))


def block_starts(n: int, rows: int) -> list[int]:
    """Starts of blocks of exactly ``rows`` rows covering 0..n-1; the last one
    starts at n - rows, overlapping its predecessor, so that no product has
    fewer rows (rows <= n)."""
    starts = list(range(0, n - rows + 1, rows))
    if starts[-1] + rows < n:
        starts.append(n - rows)
    return starts


def diagonal(xc: torch.Tensor, rows: int) -> torch.Tensor:
    """(N,) float32 diagonal of xc xc^T as the whole product holds it: from
    each block's square of products with itself (rows x rows)."""
    n = xc.shape[0]
    out = torch.empty(n, dtype=xc.dtype, device=xc.device)
    for s in block_starts(n, rows):
        part = xc[s:s + rows]
        out[s:s + rows] = (part @ part.T).diagonal()
    return out


def search(xc: torch.Tensor, shift: torch.Tensor, k: int, *, block_rows: int | None = None,
           source: torch.Tensor | None = None, norms: torch.Tensor | None = None) -> Neighbours:
    """Each row's k most similar other rows of one layer, as the dense path ranks them.

    ``xc`` (N, D) float32: the layer's centred rows; ``shift`` (N,) float64:
    a = xc @ mean (:func:`prh.preprocess.centre_layer`), so that row n of R
    is xc_n xc^T + a^T (float32). With ``norms`` (N,) float64, the clamped
    rows' norms before normalisation, R is minus the squared Euclidean
    distances instead (:func:`prh.sweep.distances.euclidean_sq`, term by
    term). ``source`` (N,) names each position's original sample: positions
    holding the sample of row n are never its neighbours (bootstrap repeats).
    """
    return search_many(xc, shift, (k,), block_rows=block_rows, source=source, norms=norms)[k]


def search_many(xc: torch.Tensor, shift: torch.Tensor, ks, *, block_rows: int | None = None,
                source: torch.Tensor | None = None, norms: torch.Tensor | None = None
                ) -> dict[int, Neighbours]:
    """:func:`search` for every k in ``ks`` at once: one product per block,
    one ``topk`` per k (as the dense path takes one per k of its ranking
    matrix)."""
    n = xc.shape[0]
    ks = sorted(set(int(k) for k in ks))
    for k in ks:
        if not 1 <= k <= n - 1:
            raise ValueError(f"topk={k} needs 1 <= topk <= N - 1 = {n - 1}")
    distance = "cosine" if norms is None else "euclidean"
    rows = block_rows_for(n, distance, block_rows)
    shift32 = shift.float()
    sq = diagonal(xc, rows).double() if norms is not None else None
    out = {k: Neighbours(torch.empty(n, k, dtype=torch.int64, device=xc.device),
                         torch.empty(n, k, dtype=xc.dtype, device=xc.device),
                         torch.empty(n, k, dtype=xc.dtype, device=xc.device)) for k in ks}
    # two buffers reused block after block: allocating them anew costs as
    # much as the product (page faults of hundreds of MB a block)
    g = torch.empty(rows, n, dtype=xc.dtype, device=xc.device)
    ranked = torch.empty(rows, n, dtype=xc.dtype, device=xc.device) if norms is None else None
    for s in block_starts(n, rows):
        torch.mm(xc[s:s + rows], xc.T, out=g)
        if norms is None:
            r = torch.add(g, shift32[None, :], out=ranked)
        else:
            # as euclidean_sq and stored_sq_distances compute it, operation by operation
            d2 = (sq[s:s + rows, None] + sq[None, :] - 2.0 * g.double()).clamp_min_(0.0)
            rho = norms[s:s + rows]
            e = (rho[:, None] - norms[None, :]) ** 2 + rho[:, None] * norms[None, :] * d2
            r = e.neg_().float()
            del d2, e
        r.diagonal(offset=s).fill_(float("-inf"))
        if source is not None:
            r.masked_fill_(source[s:s + rows, None] == source[None, :], float("-inf"))
        for k, nb in out.items():
            vals, pos = torch.topk(r, k, dim=-1, largest=True, sorted=True)
            nb.idx[s:s + rows], nb.rank[s:s + rows] = pos, vals
            nb.gram[s:s + rows] = torch.gather(g, 1, pos)
    return out


def knn_exact(x: torch.Tensor, k: int, *, block_rows: int | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    """(N, k) int64 indices of each row's k most similar other rows of x (N, D),
    most similar first: ``knn_from_gram(ranking_gram(x)[0], k, inplace=True)[0]``
    of :mod:`prh.metrics`, computed in blocks of ``block_rows`` rows (memory
    O(block_rows x N)) on ``device`` (default: x's; ``auto`` takes CUDA when
    there is one), returned on x's device."""
    if x.ndim != 2:
        raise ValueError(f"x must be one (N, D) layer, got shape {tuple(x.shape)}")
    dev = x.device if device is None else resolve_device(device, accelerators=("cuda",))
    with torch.inference_mode():
        xc, a, _ = centre_layer(x.to(dev))
        return search(xc, a, k, block_rows=block_rows).idx.to(x.device)
