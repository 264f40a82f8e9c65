"""Approximate k nearest neighbours for large N (10^5-10^6 samples), with
their recall against exact search measured on a sample of rows.

Exact neighbour lists cost O(N^2 D): hours at N = 10^6 on a few cores. An
inverted-file index of FAISS (``IndexIVFFlat``) instead scans, for each row,
only the ``nprobe`` of its ``nlist`` k-means cells nearest to it. How many
cells reach a given recall depends on the data, so :func:`knn_approximate`
measures it: exact neighbours of a seeded sample of rows (blocked brute
force), then the smallest ``nprobe`` whose recall on that sample is at least
``recall`` with two standard errors to spare, then the search of all rows.

What a neighbour is: the rows nearest by Euclidean distance, self excluded,
nearest first. For L2-normalised rows (what :func:`prh.preprocess.prepare_layers`
gives) that is the order of cosine similarity, the order of
:func:`prh.metrics.knn_from_gram` on :func:`prh.metrics.ranking_gram`; and
a common shift of all rows (centring) changes no distance, so the centred
rows of :func:`prh.preprocess.centre_layer` give the same lists. Rows are
centred here anyway, in float32 from a float64 mean: on anisotropic layers
(rows nearly parallel) the differences between rows then keep float32
accuracy. Unnormalised rows give Euclidean neighbours (``distance:
euclidean``).

Why IVF and not HNSW (measured in docs/large-n.md): at N = 10^6, D = 64
on 2 cores IVF built and searched faster and reached recall@10 0.96 where
HNSW (M = 32, efSearch = 64) fell short at 0.946; IVF holds only the
vectors (HNSW adds 2 M links a row), and it is deterministic for a seed
(k-means on a seeded sample; each probed cell is scanned exactly), while
HNSW's graph depends on the order threads insert rows in.

FAISS is imported inside the functions: ``import prh.sweep`` stays cheap and
jobs that never search approximately never load it. FAISS and torch each
bring an OpenMP runtime; see docs/large-n.md for how they share threads.

:func:`search_lists` and :func:`lists_recall` serve the features
representation (``alignment.knn: approximate``,
:class:`prh.sweep.representation.FeatureCache`): its lists with the products
and ranking values the sweeps read, and their recall against the library's
own exact ranking.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

#: rows per k-means cell when training: FAISS warns below 39; 64 keeps
#: training at N = 10^6 under a minute on 2 cores while cells stay balanced
_TRAIN_PER_CELL = 64
#: tuning sample: recall standard error ~0.005 at 0.95, exact part cheap
_TUNE_ROWS = 1000
#: rows whose recall the features representation measures, per layer and k
RECALL_ROWS = 1000
#: bytes of gathered neighbour rows at once when their products are formed
_GATHER_BYTES = 64 * 2**20
#: candidates searched beyond the largest k (see search_lists)
_MARGIN = 4


@dataclass(frozen=True)
class SearchInfo:
    """What :func:`knn_approximate` chose and measured."""

    nlist: int             # k-means cells
    nprobe: int            # cells scanned a row
    tuned_recall: float    # recall@k on the tuning sample at that nprobe (nan if not tuned)
    fallback_rows: int     # rows whose probed cells held < k others, searched exactly
    index_bytes: int       # vectors + ids + centroids held by the index
    build_s: float         # k-means training and adding the rows
    tune_s: float          # exact sample and the tuning searches
    search_s: float        # the search of all rows (and exact fallbacks)


def _rows32(x: Any, name: str = "x") -> np.ndarray:
    """x as an (N, D) float32 numpy array (torch tensors are moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{name}: expected (N, D) rows with N >= 2, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}: expected floating rows, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"{name}: row {bad} is not finite (NaN or inf): clean or drop such rows first")
    return x


def _centred(x: np.ndarray) -> np.ndarray:
    """x minus its column mean, float32 (the mean in float64, as prh.preprocess does).

    Rows centred already (prh.preprocess.centre_layer) come back as they are:
    a mean under 1e-3 of the rows' RMS norm costs no accuracy, and at
    N = 10^6, D = 768 the copy would be 3 GiB."""
    mean = x.mean(axis=0, dtype=np.float64)
    if x.dtype == np.float32 and x.flags.c_contiguous:
        rms = math.sqrt(float(np.einsum("ij,ij->", x, x, dtype=np.float64)) / len(x))
        if math.sqrt(float(mean @ mean)) <= 1e-3 * rms:
            return x
    return np.ascontiguousarray(x.astype(np.float32, copy=False) - mean.astype(np.float32))


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k={k!r}: need an integer 1 <= k <= N - 1 = {n - 1} (N rows, self excluded)")
    return int(k)


def _sample_rows(n: int, n_rows: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, n_rows), replace=False))


def _score_blocks(xc: np.ndarray, rows: np.ndarray) -> Iterator[tuple[slice, Any]]:
    """(slice of ``rows``, torch (b, N) scores) in blocks of at most
    PRH_SWEEP_BLOCK_BYTES: 2 a.b - |b|^2, which orders row a's candidates b
    as -|a - b|^2 does (larger nearer), self set to -inf."""
    import torch

    from .blocks import layer_blocks

    xt = torch.from_numpy(xc)
    sq = (xt * xt).sum(dim=1)
    for sl in layer_blocks(len(rows), xc.shape[0] * 8):
        r = torch.from_numpy(rows[sl])
        s = (xt[r] @ xt.T).mul_(2.0).sub_(sq[None, :])
        s[torch.arange(len(r)), r] = float("-inf")
        yield sl, s


def _exact_lists(xc: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact neighbour lists (len(rows), k) of ``rows``, nearest first."""
    import torch

    out = np.empty((len(rows), k), dtype=np.int64)
    for sl, s in _score_blocks(xc, rows):
        out[sl] = torch.topk(s, k, dim=1).indices.numpy()
    return out


def _row_recalls(found: np.ndarray, scores: Any, rows_self: np.ndarray, k: int) -> np.ndarray:
    """Per row, the fraction of k slots holding a true neighbour: a distinct
    other row scoring at least the exact k-th score (ties at the k-th
    score count as found: any of them completes an exact list)."""
    import torch

    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    ids = torch.from_numpy(found[:, :k].astype(np.int64))
    valid = (ids >= 0) & (ids < scores.shape[1]) & (ids != torch.from_numpy(rows_self)[:, None])
    got = scores.gather(1, ids.clamp(0, scores.shape[1] - 1)) >= kth
    ok = (valid & got).numpy()
    # a row listed twice fills one slot only
    srt = np.sort(np.where(ok, found[:, :k], -1), axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    return (ok.sum(axis=1) - dup.sum(axis=1)) / k


def recall_at_k(x: Any, approx_idx: Any, k: int, *, rows: Any = None, n_rows: int = 1000,
                seed: int = 0, exact_fn: Callable[[Any, np.ndarray], Any] | None = None) -> float:
    """Mean recall@k of neighbour lists ``approx_idx`` (N, >= k; the first k
    columns are read) against exact search on a sample of rows.

    ``rows``: the row indices to check; by default ``n_rows`` rows drawn
    without replacement with ``seed``. ``exact_fn(x, rows)`` -> (len(rows), N)
    scores, larger nearer (self is masked here), replaces the default
    blocked brute force (-squared Euclidean distance of the centred rows);
    it is called on blocks of rows. A found neighbour counts when it scores
    at least the exact k-th: ties at the k-th score are all correct. A
    repeated entry, self or -1 counts as missed. Memory: one block of scores,
    at most PRH_SWEEP_BLOCK_BYTES."""
    import torch

    x32 = _rows32(x)
    n = x32.shape[0]
    k = _check_k(k, n)
    found = np.asarray(approx_idx.detach().cpu().numpy() if hasattr(approx_idx, "detach")
                       else approx_idx)
    if found.ndim != 2 or found.shape[0] != n or found.shape[1] < k:
        raise ValueError(f"approx_idx: expected shape ({n}, >= {k}), got {found.shape}")
    if rows is None:
        rows = _sample_rows(n, n_rows, seed)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if not len(rows) or rows.min() < 0 or rows.max() >= n:
        raise ValueError(f"rows: need at least one row index in [0, {n}), got {len(rows)} rows")
    if exact_fn is None:
        blocks = _score_blocks(_centred(x32), rows)
    else:
        from .blocks import layer_blocks

        def blocks():
            # per row: exact_fn's scores, their copy and the block before (8 bytes
            # each at float32; float64 takes twice the rows' share, still bounded)
            for sl in layer_blocks(len(rows), n * 16):
                s = torch.as_tensor(exact_fn(x, rows[sl]))
                # one copy (the mask below must not write into the caller's
                # tensor), in the scores' own precision: comparisons need no more
                s = s.clone() if s.is_floating_point() else s.to(torch.float64)
                if s.shape != (len(rows[sl]), n):
                    raise ValueError(f"exact_fn: returned shape {tuple(s.shape)}, "
                                     f"expected ({len(rows[sl])}, {n})")
                s[torch.arange(len(rows[sl])), torch.from_numpy(rows[sl])] = float("-inf")
                yield sl, s
        blocks = blocks()
    total = 0.0
    for sl, s in blocks:
        total += _row_recalls(found[rows[sl]], s, rows[sl], k).sum()
    return float(total / len(rows))


@contextmanager
def _faiss_threads(threads: int | None) -> Iterator[Any]:
    import faiss

    before = faiss.omp_get_max_threads()
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads={threads!r}: need an integer >= 1 (or None for the current setting)")
        faiss.omp_set_num_threads(int(threads))
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(before)


def default_nlist(n: int) -> int:
    """k-means cells for N rows: 4 sqrt(N) (FAISS's guidance is 4-16 sqrt(N)),
    at most N / 39 so each cell trains on enough rows; 1 cell (exact) for tiny N."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


def _search(index: Any, xc: np.ndarray, k: int, rows: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Lists of k others for ``rows`` (default all) and which rows came back
    short (their probed cells held fewer than k other rows)."""
    q = xc if rows is None else xc[rows]
    self_ids = np.arange(len(xc)) if rows is None else rows
    # one extra for self; more would only matter for rows with many exact duplicates,
    # and there the duplicates are neighbours as good as self
    _, got = index.search(q, k + 1)
    keep = (got != self_ids[:, None]) & (got >= 0)
    # the first k kept entries of each row, order preserved
    pos = np.cumsum(keep, axis=1) - 1
    keep &= pos < k
    out = np.full((len(q), k), -1, dtype=np.int64)
    r, c = np.nonzero(keep)
    out[r, pos[r, c]] = got[r, c]
    return out, (out < 0).any(axis=1)


def knn_approximate(x: Any, k: int, *, seed: int = 0, threads: int | None = None,
                    recall: float = 0.95, nlist: int | None = None, nprobe: int | None = None,
                    return_info: bool = False) -> Any:
    """Each row's k nearest other rows, nearest first, from a FAISS IVF index.

    ``x``: (N, D) rows, numpy or torch (see the module docstring for what
    nearest means); the result is int64 numpy (N, k), or a torch LongTensor
    for torch input. ``nlist``: k-means cells (default :func:`default_nlist`).
    ``nprobe``: cells scanned a row; by default the smallest power of two,
    then refined by bisection, whose recall@k on 1000 seeded rows (exact
    brute force) has its lower two-standard-error bound at least ``recall``.
    ``seed`` seeds the k-means sample and the tuning rows: the result is the
    same for the same seed and data. ``threads``: FAISS's OpenMP threads for
    this call (default: as set). ``return_info``: also return a
    :class:`SearchInfo`."""
    x32 = _rows32(x)
    n, d = x32.shape
    k = _check_k(k, n)
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall={recall!r}: need a target in (0, 1]")
    nlist = default_nlist(n) if nlist is None else int(nlist)
    if not 1 <= nlist <= n:
        raise ValueError(f"nlist={nlist}: need 1 <= nlist <= N = {n}")
    if nprobe is not None and not 1 <= int(nprobe) <= nlist:
        raise ValueError(f"nprobe={nprobe}: need 1 <= nprobe <= nlist = {nlist}")
    xc = _centred(x32)
    t0 = time.perf_counter()
    with _faiss_threads(threads) as faiss:
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
        index.cp.seed = int(seed)
        index.cp.max_points_per_centroid = _TRAIN_PER_CELL
        index.train(xc)
        index.add(xc)
        t1 = time.perf_counter()
        tuned = float("nan")
        if nprobe is None:
            nprobe, tuned = _tune_nprobe(index, xc, k, recall, seed)
        t2 = time.perf_counter()
        index.nprobe = int(nprobe)
        out, short = _search(index, xc, k)
    if short.any():
        out[short] = _exact_lists(xc, np.flatnonzero(short), k)
    t3 = time.perf_counter()
    if hasattr(x, "detach"):
        import torch

        out = torch.from_numpy(out)
    if not return_info:
        return out
    index_bytes = n * (d * 4 + 8) + nlist * d * 4
    return out, SearchInfo(nlist, int(nprobe), tuned, int(short.sum()), index_bytes,
                           t1 - t0, t2 - t1, t3 - t2)


def _tune_nprobe(index: Any, xc: np.ndarray, k: int, target: float, seed: int
                 ) -> tuple[int, float]:
    """The smallest nprobe (doubling, then bisection) whose recall@k on a
    seeded sample of rows, less two standard errors, reaches ``target``."""
    import torch

    n, nlist = xc.shape[0], index.nlist
    rows = _sample_rows(n, _TUNE_ROWS, seed)
    # exact top k + k scores of the sample, kept so each try costs only its search;
    # ties at the k-th score beyond the kept ones are (rarely) counted missed
    keep = min(2 * k, n - 1)
    top_ids = np.empty((len(rows), keep), dtype=np.int64)
    top_val = torch.empty(len(rows), keep, dtype=torch.float32)
    for sl, s in _score_blocks(xc, rows):
        v, i = torch.topk(s, keep, dim=1)
        top_ids[sl], top_val[sl] = i.numpy(), v

    def measure(p: int) -> tuple[float, float]:
        index.nprobe = p
        found, _ = _search(index, xc, k, rows)
        # scores of the found rows where they are among the kept exact ones, else -inf
        match = torch.from_numpy(found[:, :, None] == top_ids[:, None, :])
        scores = torch.where(match, top_val[:, None, :], float("-inf")).amax(dim=2)
        kth = top_val[:, k - 1:k]
        ok = (scores >= kth).double().mean(dim=1)
        m = float(ok.mean())
        se = float(ok.std()) / math.sqrt(len(rows)) if len(rows) > 1 else 0.0
        return m, m - 2 * se

    cache: dict[int, tuple[float, float]] = {}

    def good(p: int) -> bool:
        if p not in cache:
            cache[p] = measure(p)
        return cache[p][1] >= target or p >= nlist

    hi = 1
    while not good(hi):
        hi = min(2 * hi, nlist)
    lo = hi // 2  # fails (or 0)
    while hi - lo > 1 and hi - lo > hi // 8:  # within 1/8 of the cost is close enough
        mid = (lo + hi) // 2
        if good(mid):
            hi = mid
        else:
            lo = mid
    return hi, cache[hi][0]


# -- the features representation's lists -------------------------------------

def search_lists(xc: Any, shift: Any, ks, *, seed: int = 0, nlist: int | None = None,
                 nprobe: int | None = None) -> tuple[dict, SearchInfo]:
    """Approximate :func:`prh.sweep.search.search_many`: per k in ``ks`` the
    :class:`~prh.sweep.search.Neighbours` of one layer, from one IVF search
    for the largest k and a few more candidates (smaller k: prefixes).

    ``xc`` (N, D) float32 torch rows, centred and normalised (neighbours by
    Euclidean distance are then the cosine ones); ``shift`` (N,) float64,
    a = xc @ mean. The products at the listed entries are formed row by
    row, O(N k D), and the ranking values as search_many forms them
    (product + float32 shift); each list is sorted by ranking value, most
    similar first, as the exact lists are. The products may differ from the
    blocked search's in the last bit (another summation order)."""
    import torch

    from .search import Neighbours

    ks = sorted({int(k) for k in ks})
    # a few candidates beyond the largest k: FAISS's float32 distances and the
    # library's ranking values round differently, so near-ties at the k-th
    # place are settled by the ranking values, as the exact search settles them
    wanted = min(xc.shape[0] - 1, ks[-1] + _MARGIN)
    idx, info = knn_approximate(xc, wanted, seed=seed, nlist=nlist, nprobe=nprobe,
                                return_info=True)
    idx = idx.to(xc.device)
    n, k, d = idx.shape[0], idx.shape[1], xc.shape[1]
    gram = torch.empty(n, k, dtype=xc.dtype, device=xc.device)
    step = max(1, _GATHER_BYTES // (4 * k * d))
    for s in range(0, n, step):
        others = xc[idx[s:s + step]]  # (b, k, D)
        gram[s:s + step] = torch.bmm(others, xc[s:s + step, :, None])[:, :, 0]
    rank = gram + shift.float()[idx]
    rank, order = torch.sort(rank, dim=1, descending=True, stable=True)
    idx, gram = idx.gather(1, order), gram.gather(1, order)
    idx, gram, rank = idx[:, :ks[-1]], gram[:, :ks[-1]], rank[:, :ks[-1]]
    return {j: Neighbours(idx[:, :j].contiguous(), gram[:, :j].contiguous(),
                          rank[:, :j].contiguous()) for j in ks}, info


def lists_recall(xc: Any, shift: Any, lists: dict, *, n_rows: int = RECALL_ROWS,
                 seed: int = 1) -> dict[int, float]:
    """Recall@k of each k's lists (``lists``: k -> (N, k) indices) on
    ``n_rows`` rows drawn with ``seed`` (the tuning draws with the search's
    seed, 0 by default: other rows), against the library's exact ranking of
    those rows, xc_n xc^T + a^T in float32 (:func:`prh.metrics.ranking_gram`),
    ties at the k-th value counting as found."""
    import torch

    shift32 = shift.float()

    def exact(x, rows):
        r = torch.from_numpy(rows).to(x.device)
        return (x[r] @ x.T).add_(shift32[None, :]).cpu()

    rows = _sample_rows(xc.shape[0], n_rows, seed)
    return {k: recall_at_k(xc, idx.cpu(), k, rows=rows, exact_fn=exact)
            for k, idx in sorted(lists.items())}
