"""Time and peak memory of the two representations at large N, side by side in one run.

Run by hand (not part of the tests):
``PYTHONPATH=. .venv/bin/python benchmarks/bench_large_n.py``
(``--cases features:10000,features:100000,dense:10000`` is the default).

Each case runs in a fresh process (so that its peak RSS is its own) on two
random models of one D-wide layer each that share a latent, and reports:

- build: the per-model cache of both models from raw features
  (preprocessing, the exact kNN search for topk, and what CKA reads:
  ``LayerCache.from_features`` + grams for dense, ``FeatureCache.from_features``
  + the blocked search for features);
- sweep: one pair sweep of every metric in --metrics (default mutual_knn,
  cknna, cka, unbiased_cka, k = 10), each model's per-metric terms included;
- peak RSS of the process (resource.getrusage), its RSS once torch and prh
  are imported (``imports``: the floor of every case), and the size of one model's
  layer cache (features: written with the kNN lists for topk; dense: the Gram
  matrix's N^2 float32 plus the rest, computed, not written, above 20000).

The first case's scores are printed beside every other's difference from
them, so dense and features are compared on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _rss_mb() -> float:
    """This process's resident memory now (Linux), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_case(kind: str, n: int, d: int, topk: int, metrics: list[str], threads: int) -> dict:
    import torch

    from prh.formats.layer_cache import save_layer_cache
    from prh.sweep.cache import LayerCache
    from prh.sweep.dispatch import sweep
    from prh.sweep.representation import FeatureCache

    torch.set_num_threads(threads)
    base = _rss_mb()
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 8))
    feats = [(latent @ rng.normal(size=(8, d)) + rng.standard_t(4, size=(n, d)))
             .astype(np.float32)[:, None, :] for _ in range(2)]
    t0 = time.perf_counter()
    if kind == "dense":
        caches = [LayerCache.from_features(f, device="cpu") for f in feats]
        for c in caches:
            c.knn(topk)
    else:
        caches = [FeatureCache.from_features(f, device="cpu") for f in feats]
        for c in caches:
            c.neighbours(topk)
    build = time.perf_counter() - t0
    del feats
    scores, times = {}, {}
    for m in metrics:
        p = {"topk": topk} if m in ("mutual_knn", "cknna", "cycle_knn", "jaccard_knn") else {}
        t = time.perf_counter()
        scores[m] = float(sweep(*caches, m, **p)[0, 0])
        times[m] = time.perf_counter() - t
    size = None
    if kind == "features" or n <= 20000:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.h5")
            save_layer_cache(caches[0], path, topk=[topk])
            size = os.path.getsize(path)
    else:
        size = 4 * n * n + 8 * n * 3 + 4 * n * topk
    return {"kind": kind, "n": n, "build_s": build, "sweep_s": sum(times.values()),
            "times": times, "scores": scores, "file_bytes": size,
            "base_rss_mb": base, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="features:10000,features:100000,dense:10000")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--metrics", default="mutual_knn,cknna,cka,unbiased_cka")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # one case, in the child process
    args = ap.parse_args()
    metrics = args.metrics.split(",")
    if args.case:
        kind, n = args.case.split(":")
        print(json.dumps(one_case(kind, int(n), args.d, args.topk, metrics, args.threads)))
        return
    print(f"D={args.d} topk={args.topk} threads={args.threads} one layer per model; "
          f"metrics: {', '.join(metrics)}")
    print(f"{'case':>16} {'build s':>8} {'sweep s':>8} {'peak RSS MB':>11} {'imports MB':>10} "
          f"{'file MB':>8}  "
          + "  ".join(f"{m} s" for m in metrics))
    first = None
    for case in args.cases.split(","):
        out = subprocess.run([sys.executable, __file__, "--case", case, "--d", str(args.d),
                              "--topk", str(args.topk), "--metrics", args.metrics,
                              "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case:>16} {r['build_s']:8.2f} {r['sweep_s']:8.2f} {r['peak_rss_mb']:11.0f} "
              f"{r['base_rss_mb']:10.0f} {r['file_bytes'] / 2**20:8.1f}  "
              + "  ".join(f"{r['times'][m]:.2f}" for m in metrics), flush=True)
        if first is None:
            first = r
            print("  scores: " + ", ".join(f"{m} {v:.6f}" for m, v in r["scores"].items()))
        elif first["n"] == r["n"]:
            diff = {m: abs(r["scores"][m] - first["scores"][m]) for m in metrics}
            print(f"  |score - {first['kind']}:{first['n']}|: "
                  + ", ".join(f"{m} {v:.1e}" for m, v in diff.items()))


if __name__ == "__main__":
    main()
