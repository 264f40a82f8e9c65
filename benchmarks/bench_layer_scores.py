"""Batched layer sweep vs the per-pair algorithm, timed side by side in one run.

Run by hand (not part of the tests): ``make bench`` or
``.venv/bin/python benchmarks/bench_layer_scores.py [--quick]``.

Both algorithms start from the same clamped, normalised layers (the spec's
preprocessing runs once per model in either, as in the paper's code); its
time is printed separately, as ``prep``. For each shape and metric:
- sweep:    LayerCache (per-layer work once) + prh.alignment.sweep over all pairs;
- per-pair: prh.metrics.measure for every layer pair (two Gram matrices and
            kNN lists per pair), as the paper's reference code does;
- gram:     the Lx + Ly Gram matrices alone (plus their top-k rows for kNN
            metrics), the floor of any algorithm that needs them;
- e2e:      prh.alignment.layer_scores end to end (preprocessing included).
Ratios: speedup = per-pair / sweep against the Gram-reuse bound
2 Lx Ly / (Lx + Ly); sweep/gram; e2e/(gram + prep).
The machine is noisy, so each timing is the best of --repeats runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from prh.alignment import LayerCache, layer_scores, sweep
from prh.metrics import knn_from_gram, measure
from prh.preprocess import prepare_layers

KNN_METRICS = {"mutual_knn", "cknna"}


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="8x8 only, one repeat")
    ap.add_argument("--metrics", default="mutual_knn,cka,unbiased_cka,cknna")
    args = ap.parse_args()
    shapes = [(8, 8)] if args.quick else [(8, 8), (25, 13)]
    repeats = 1 if args.quick else args.repeats
    metrics = args.metrics.split(",")
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    print(f"N={args.n} D={args.d} topk={args.topk} torch threads={torch.get_num_threads()}")
    print(f"{'layers':>7} {'metric':>13} {'sweep s':>8} {'per-pair s':>10} {'gram s':>7} {'prep s':>7} "
          f"{'e2e s':>6} {'speedup':>8} {'bound':>6} {'/bound':>6} {'sweep/gram':>10} {'e2e/(gram+prep)':>15}")
    for lx, ly in shapes:
        latent = rng.normal(size=(args.n, 64)).astype(np.float32)
        X = np.stack([latent @ rng.normal(size=(64, args.d)).astype(np.float32)
                      + rng.normal(size=(args.n, args.d)).astype(np.float32) for _ in range(lx)], axis=1)
        Y = np.stack([latent @ rng.normal(size=(64, args.d)).astype(np.float32)
                      + rng.normal(size=(args.n, args.d)).astype(np.float32) for _ in range(ly)], axis=1)
        px = prepare_layers(X, "X", device=cpu)
        py = prepare_layers(Y, "Y", device=cpu)
        bound = 2 * lx * ly / (lx + ly)
        t_prep = best_of(lambda: (prepare_layers(X, "X", device=cpu), prepare_layers(Y, "Y", device=cpu)),
                         repeats)

        def grams(with_topk):
            for x in px + py:
                g = x @ x.T
                if with_topk:
                    knn_from_gram(g, args.topk)

        for metric in metrics:
            p = {"topk": args.topk} if metric in KNN_METRICS else {}
            t_sweep = best_of(lambda: sweep(LayerCache(px), LayerCache(py), metric, **p), repeats)
            t_e2e = best_of(lambda: layer_scores(X, Y, metric, device="cpu", **p), repeats)
            t_pair = best_of(lambda: [[measure(metric, a, b, **p) for b in py] for a in px], 1)
            t_gram = best_of(lambda: grams(metric in KNN_METRICS), repeats)
            speedup = t_pair / t_sweep
            print(f"{lx:>3}x{ly:<3} {metric:>13} {t_sweep:8.2f} {t_pair:10.2f} {t_gram:7.2f} {t_prep:7.2f} "
                  f"{t_e2e:6.2f} {speedup:8.1f} {bound:6.1f} {speedup / bound:6.2f} {t_sweep / t_gram:10.2f} "
                  f"{t_e2e / (t_gram + t_prep):15.2f}", flush=True)


if __name__ == "__main__":
    main()
