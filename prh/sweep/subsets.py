"""The kNN lists of a subset of the samples from the full sample's lists,
without a new O(N'^2 D) search where they already say the answer.

The statistics job's delete-a-group jackknife and the sample-size curve's
largest subsets score the features representation on subsets that keep most
samples. The dense path ranks a subset's row by the full ranking matrix's
entries at the kept columns (:meth:`prh.sweep.cache.LayerCache.resample`
gathers them), so the subset's k nearest of sample n are the first k kept
samples of n's full ranking, as long as that ranking is known far enough
and has no tie there. A full list of K' > k neighbours (the layer cache
stores one, ``alignment`` plans it: :func:`prh.config.representation.subset_topk`)
answers every row whose first k + 1 kept entries are among its K' and
strictly decreasing: the values at those entries are the full matrix's, the
same bits the dense path gathers, and no tie leaves an order to ``topk``.
Every other row (too few kept, a tie) is ranked again against the subset in
blocks of at least :data:`prh.sweep.search.MIN_BLOCK_ROWS` rows, as
:mod:`.search` ranks it (one ``topk`` of the row's float32 ranking values);
when most rows need that, the subset is searched whole.
"""

from __future__ import annotations

import torch

from .search import MIN_BLOCK_ROWS, Neighbours, block_rows_for, search_many

#: search the whole subset (not row by row) when more than this share of its
#: rows cannot be read from the full lists: contiguous blocks cost less
WHOLE_SEARCH_SHARE = 0.5
#: list entries read at once (their int64 copies and order: ~100 MB at 2^22)
_CHUNK_ENTRIES = 2**22


def widest_lists(cache, k: int) -> int | None:
    """The widest K' > k of the kNN lists ``cache`` holds, None without one."""
    have = [key[1] for key in cache._cache if len(key) == 3 and key[0] == "knn"
            and key[2] == "lists" and key[1] > k]
    return max(have) if have else None


def subset_neighbours(parent, idx: torch.Tensor, sub, k: int) -> Neighbours | None:
    """``sub``'s (L, N', k) kNN lists, ``sub`` being ``parent`` resampled at
    ``idx`` (distinct positions of ``parent``, which holds its own samples
    once: no resample of a resample), from the parent's widest lists; None
    when it holds none wider than k."""
    wide = widest_lists(parent, k)
    if wide is None:
        return None
    full = parent._cache[("knn", wide, "lists")]
    n, m = parent.n, len(idx)
    at = torch.full((n,), -1, dtype=torch.int64, device=idx.device)
    at[idx] = torch.arange(m, device=idx.device)
    out = Neighbours(torch.empty(sub.n_layers, m, k, dtype=torch.int64, device=idx.device),
                     torch.empty(sub.n_layers, m, k, dtype=full.gram.dtype, device=idx.device),
                     torch.empty(sub.n_layers, m, k, dtype=full.rank.dtype, device=idx.device))
    step = max(1, _CHUNK_ENTRIES // wide)
    ok = torch.empty(m, dtype=torch.bool, device=idx.device)
    for l in range(sub.n_layers):
        for s in range(0, m, step):
            rows, got = idx[s:s + step], slice(s, s + step)
            lists, ok[got], order = _kept_order(at, full.idx[l, rows], full.rank[l, rows], k)
            first = order[:, :k]
            out.idx[l, got] = at[torch.gather(lists, 1, first)]
            out.gram[l, got] = torch.gather(full.gram[l, rows], 1, first)
            out.rank[l, got] = torch.gather(full.rank[l, rows], 1, first)
        redo = torch.nonzero(~ok).flatten()
        if len(redo):
            got = _ranked_again(sub, l, redo, k)
            out.idx[l, redo], out.gram[l, redo], out.rank[l, redo] = got
    return out


def _kept_order(at: torch.Tensor, lists: torch.Tensor, rank: torch.Tensor, k: int):
    """(lists, ok, order): which rows' first k + 1 kept entries are known and
    strictly decreasing (``ok``), and the positions in each full list of its
    kept entries first, in list order (``order``)."""
    kept = at[lists] >= 0
    order = torch.argsort((~kept).to(torch.int8), dim=1, stable=True)
    ok = kept.sum(dim=1) > k
    head = torch.gather(rank, 1, order[:, :k + 1])
    ok &= (head[:, :-1] > head[:, 1:]).all(dim=1)
    return lists, ok, order


def _ranked_again(sub, layer: int, rows: torch.Tensor, k: int):
    """(idx, gram, rank) of ``rows`` of ``sub``'s layer, ranked against all of
    ``sub`` as :func:`prh.sweep.search.search_many` ranks them: R = xc_n xc^T
    + a^T in float32, n itself -inf, ``topk``."""
    xc, shift = sub.layers[layer], sub.mean_dots[layer]
    n = xc.shape[0]
    if len(rows) > WHOLE_SEARCH_SHARE * n:
        nb = search_many(xc, shift, (k,), block_rows=sub.block_rows)[k]
        return nb.idx[rows], nb.gram[rows], nb.rank[rows]
    step = block_rows_for(n, "cosine", sub.block_rows)
    shift32 = shift.float()
    idx = torch.empty(len(rows), k, dtype=torch.int64, device=xc.device)
    gram = torch.empty(len(rows), k, dtype=xc.dtype, device=xc.device)
    rank = torch.empty(len(rows), k, dtype=xc.dtype, device=xc.device)
    for s in range(0, len(rows), step):
        part = rows[s:s + step]
        # never fewer than MIN_BLOCK_ROWS rows in a product: BLAS rounds
        # products of a few rows differently (prh.sweep.search); padding rows
        # are ranked and dropped
        pad = max(0, MIN_BLOCK_ROWS - len(part))
        query = torch.cat([part, torch.arange(pad, device=xc.device) % n])
        g = xc[query] @ xc.T
        r = g + shift32[None, :]
        r[torch.arange(len(query), device=xc.device), query] = float("-inf")
        vals, pos = torch.topk(r, k, dim=-1, largest=True, sorted=True)
        got = slice(s, s + len(part))
        idx[got], rank[got] = pos[:len(part)], vals[:len(part)]
        gram[got] = torch.gather(g, 1, pos)[:len(part)]
    return idx, gram, rank
