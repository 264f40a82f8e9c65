"""Cost of a K-permutation null relative to the plain layer sweep, side by side in one run.

Run by hand from the checkout root:
``PYTHONPATH=. .venv/bin/python benchmarks/bench_calibration.py [--quick] [--resamples R]``.

First the bare Gram matrices of both models and the plain CKA sweep from
scratch (grams + kernel terms + all layer pairs): their ratio is the
sweep's overhead over the Gram matrices. Then for each metric: the plain
sweep from fresh models, the K-permutation null reusing that per-layer
work (as a workflow pair job does), null/sweep and, with ``--resamples``,
the seconds per resample of the statistics job (a jackknife index set: the
models resampled, the pair re-scored; :func:`prh.calibration.replicate_scores`). Target: every null under 5x its sweep.

Measured on the project's shared 2-core machine (N=1024, D=768, 8x8
layers, K=200, ``--threads 1``, whose timings are the least disturbed by
the other jobs on the machine): null/sweep is 3.6x for cka and
unbiased_cka with the ip kernel, 2.1-2.2x with rbf (were 27x and 37x; see
:func:`prh.sweep.kernel._permuted_hsic`), 0.8x mutual_knn, 1.0x cycle_knn,
1.0x cknna (was 4.2x: its null now sums only the entries both kNN lists
share, about k/N of them), 0.1x svcca, 1.7-1.9x lcs_knn and 1.9-2.0x edit_distance_knn
(were 5.5x and 6.6x in a side-by-side run); the plain CKA sweep costs
1.47x the bare Gram matrices. On the default two threads every null was
under 3.5x, but the sweeps' times were inflated by the other jobs' load
(sweep/gram 2.4x).

lcs_knn and edit_distance_knn redo, per permutation, a k x k dynamic
programme (LCS, Levenshtein) on X's neighbour list against Y's relabelled
list, and nothing carries over between permutations. But under a random
permutation most lists share no sample (k^2 / N ~ 0.1 expected matches a
row at k=10, N=1024; 9% of rows here), and such rows score LCS 0 and edit
distance k without a table: the null finds the sharing rows by O(N k)
mask lookups (as mutual_knn does) and runs the programme on those only
(:func:`prh.sweep.knn._sweep_sequence`). The plain sweep, where over 90%
of rows share samples, runs it on every row as before.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from prh.alignment import ModelStats, sweep
from prh.calibration import permutation_null, replicate_scores, resample_indices
from prh.preprocess import prepare_layers

ALL = "mutual_knn,cycle_knn,cka,unbiased_cka,cknna,svcca,lcs_knn,edit_distance_knn"


def timed(fn, repeat=1):
    """Fastest of ``repeat`` runs (the others' load on a shared machine only adds time)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--k", type=int, default=200, help="permutations")
    ap.add_argument("--resamples", type=int, default=0,
                    help="jackknife resamples to time per metric (0: skip)")
    ap.add_argument("--metrics", default=ALL)
    ap.add_argument("--kernels", default="ip,rbf", help="kernels of cka and unbiased_cka")
    ap.add_argument("--repeat", type=int, default=3, help="sweeps and Gram matrices: fastest of R")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="N=512, K=50")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
    t_gram, _ = timed(lambda: (ModelStats(px).grams(), ModelStats(py).grams()), args.repeat)
    t_cka, _ = timed(lambda: sweep(ModelStats(px), ModelStats(py), "cka"), args.repeat)
    print(f"bare Gram matrices {t_gram:.2f} s, cka sweep {t_cka:.2f} s: "
          f"sweep/gram {t_cka / t_gram:.2f}x")
    print(f"{'metric':>18} {'kernel':>6} {'sweep s':>8} {'null s':>8} {'null/sweep':>10} "
          f"{'resample s':>10}")
    for metric in args.metrics.split(","):
        kernels = args.kernels.split(",") if "cka" in metric and metric != "cknna" else [None]
        for kernel in kernels:
            p = ({"topk": 10} if ("knn" in metric or metric == "cknna") else
                 {"kernel": kernel} if kernel else {})
            t_sweep, _ = timed(lambda: sweep(ModelStats(px), ModelStats(py), metric, **p), args.repeat)
            sx, sy = ModelStats(px), ModelStats(py)
            sweep(sx, sy, metric, **p)  # per-layer work in place, as in a workflow pair job
            t_null, _ = timed(lambda: permutation_null(sx, sy, metric, n_permutations=args.k, **p))
            boot = "-"
            if args.resamples:
                sets = resample_indices(args.n, "jackknife", max(2, args.resamples))
                t_boot, _ = timed(lambda: replicate_scores({"x": sx, "y": sy}, [("x", "y")],
                                                           {metric: p}, sets))
                boot = f"{t_boot / len(sets):.3f}"
            print(f"{metric:>18} {kernel or '-':>6} {t_sweep:8.2f} {t_null:8.2f} "
                  f"{t_null / t_sweep:10.1f} {boot:>10}", flush=True)


if __name__ == "__main__":
    main()
