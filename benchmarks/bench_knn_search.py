"""Approximate kNN (FAISS IVF, prh.sweep.approximate) against exact blocked
search in torch, side by side in one run, on a Gaussian mixture.

Run by hand (not part of the tests), from the checkout root:
``PYTHONPATH=. .venv/bin/python benchmarks/bench_knn_search.py --n 1e5 1e6 --d 64``.

For each N: the rows are drawn (``--clusters`` centres from N(0, I), each row
a centre plus ``--spread`` N(0, I) noise), L2-normalised, as the library's
prepared layers are. Printed: the index's cells (nlist) and the tuned nprobe,
its build (k-means + add), tuning and search times, recall@k on
``--recall-rows`` rows drawn with another seed than the tuning sample's, the
index size and the process's peak memory. Where N <= ``--exact-max-n`` the
exact search of every row (blocks of rows against all rows, torch topk) is
timed as well and the recall over all N rows is printed; ``--index hnsw``
times FAISS's HNSW graph (M=32, efConstruction=40, efSearch=64) for the
choice of index in docs/knn-search.md. Times are wall seconds on whatever
the machine is doing: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def mixture(n: int, d: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)]
    x += spread * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, nargs="+", default=[1e5])
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--spread", type=float, default=0.6)
    ap.add_argument("--recall-rows", type=int, default=1000)
    ap.add_argument("--exact-max-n", type=float, default=1e5)
    ap.add_argument("--index", nargs="+", choices=["ivf", "hnsw"], default=["ivf"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--centred", action="store_true",
                    help="pass the rows centred, as the sweep stores them (no copy inside)")
    args = ap.parse_args()

    import torch

    from prh.sweep.approximate import _centred, _exact_lists, knn_approximate, recall_at_k

    torch.set_num_threads(args.threads)
    for n in map(int, args.n):
        x = mixture(n, args.d, args.clusters, args.spread, args.seed)
        if args.centred:
            x -= x.mean(axis=0, dtype=np.float64).astype(np.float32)
        print(f"N={n} D={args.d} k={args.k} threads={args.threads} clusters={args.clusters} "
              f"spread={args.spread} load={os.getloadavg()[0]:.1f}", flush=True)
        if "ivf" in args.index:
            idx, info = knn_approximate(x, args.k, seed=args.seed, threads=args.threads,
                                        return_info=True)
            t = time.perf_counter()
            rec = recall_at_k(x, idx, args.k, n_rows=args.recall_rows, seed=args.seed + 1)
            t_rec = time.perf_counter() - t
            total = info.build_s + info.tune_s + info.search_s
            print(f"  ivf   nlist={info.nlist} nprobe={info.nprobe} build={info.build_s:.1f}s "
                  f"tune={info.tune_s:.1f}s search={info.search_s:.1f}s total={total:.1f}s "
                  f"recall@{args.k}={rec:.4f} (tuning sample {info.tuned_recall:.4f}; "
                  f"measuring {args.recall_rows} rows took {t_rec:.1f}s) "
                  f"index={info.index_bytes / 2**20:.0f} MiB fallback_rows={info.fallback_rows} "
              f"peak={peak_gib():.2f} GiB load={os.getloadavg()[0]:.1f}", flush=True)
        if "hnsw" in args.index:
            import faiss

            faiss.omp_set_num_threads(args.threads)
            xc = _centred(x)
            t = time.perf_counter()
            index = faiss.IndexHNSWFlat(args.d, 32)
            index.hnsw.efConstruction = 40
            index.add(xc)
            t_build = time.perf_counter() - t
            index.hnsw.efSearch = 64
            t = time.perf_counter()
            got = index.search(xc, args.k + 1)[1]
            t_search = time.perf_counter() - t
            lists = np.array([[j for j in row if j != i][:args.k] for i, row in enumerate(got)])
            rec_h = recall_at_k(x, lists, args.k, n_rows=args.recall_rows, seed=args.seed + 1)
            graph = index.hnsw.neighbors.size() * 4
            print(f"  hnsw  M=32 efC=40 efSearch=64 build={t_build:.1f}s search={t_search:.1f}s "
                  f"total={t_build + t_search:.1f}s recall@{args.k}={rec_h:.4f} "
                  f"index={(n * args.d * 4 + graph) / 2**20:.0f} MiB "
                  f"peak={peak_gib():.2f} GiB load={os.getloadavg()[0]:.1f}", flush=True)
            del index, xc
        if n <= args.exact_max_n and "ivf" in args.index:
            t = time.perf_counter()
            exact = _exact_lists(_centred(x), np.arange(n), args.k)
            t_exact = time.perf_counter() - t
            full = recall_at_k(x, idx, args.k, rows=np.arange(n))
            same = float((np.sort(exact, 1) == np.sort(idx, 1)).all(1).mean())
            print(f"  exact torch blocks: {t_exact:.1f}s; ivf recall@{args.k} over all {n} rows "
                  f"{full:.4f}, identical lists {same:.3f} load={os.getloadavg()[0]:.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
