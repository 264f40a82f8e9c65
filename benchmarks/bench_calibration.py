"""Cost of a K-permutation null relative to the plain layer sweep, side by side in one run.

Run by hand: ``.venv/bin/python benchmarks/bench_calibration.py [--quick]``.

For each metric: the plain sweep (per-layer work + all layer pairs, from
prepared layers), then the permutation null with K permutations reusing that
per-layer work, and their ratio (target: under 10x for kNN metrics and CKA at
K=200). Also the bootstrap (B replicates) for comparison.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from prh.alignment import ModelStats, sweep
from prh.calibration import bootstrap, permutation_null
from prh.preprocess import prepare_layers


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--k", type=int, default=200, help="permutations")
    ap.add_argument("--boot", type=int, default=20, help="bootstrap replicates to time")
    ap.add_argument("--metrics", default="mutual_knn,cycle_knn,cka,unbiased_cka,cknna,svcca,lcs_knn")
    ap.add_argument("--quick", action="store_true", help="N=512, K=50")
    args = ap.parse_args()
    if args.quick:
        args.n, args.k = 512, 50
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    latent = rng.normal(size=(args.n, 32)).astype(np.float32)

    def model():
        return np.stack([latent @ rng.normal(size=(32, args.d)).astype(np.float32)
                         + rng.normal(size=(args.n, args.d)).astype(np.float32)
                         for _ in range(args.layers)], axis=1)

    px, py = prepare_layers(model(), "X", device=cpu), prepare_layers(model(), "Y", device=cpu)
    print(f"N={args.n} D={args.d} layers={args.layers}x{args.layers} K={args.k} "
          f"threads={torch.get_num_threads()}")
    print(f"{'metric':>18} {'sweep s':>8} {'null s':>8} {'null/sweep':>10} {'per perm/sweep':>14} "
          f"{'boot s/rep':>10}")
    for metric in args.metrics.split(","):
        p = {"topk": 10} if ("knn" in metric or metric == "cknna") else {}
        t_sweep, _ = timed(lambda: sweep(ModelStats(px), ModelStats(py), metric, **p))
        sx, sy = ModelStats(px), ModelStats(py)
        sweep(sx, sy, metric, **p)  # per-layer work in place, as in a workflow pair job
        t_null, _ = timed(lambda: permutation_null(sx, sy, metric, n_permutations=args.k, **p))
        t_boot, _ = timed(lambda: bootstrap(sx, sy, metric, n_boot=max(20, args.boot), **p))
        print(f"{metric:>18} {t_sweep:8.2f} {t_null:8.2f} {t_null / t_sweep:10.1f} "
              f"{t_null / args.k / t_sweep:14.3f} {t_boot / max(20, args.boot):10.3f}", flush=True)


if __name__ == "__main__":
    main()
