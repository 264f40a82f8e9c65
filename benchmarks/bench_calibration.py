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

The measures beyond the paper's eight (issue 23) are timed the same way,
with one more column: their per-layer work, the sweep from fresh models less
the same sweep once every per-layer term is cached (sweep/layers: the goal
is at most 1.5x). ``--shapes zoo`` gives the two models the default zoo's
largest shapes: 31 layers of width 576 (SmolLM2-135M) against EfficientNet-
Lite2's 23 layers (widths 16 to 352 and its 1280-wide head), N = 1024;
``--null-k`` times fewer permutations than ``--k`` and scales the null to K
(for Procrustes, whose permutations each cost a sweep's pair work).
Measured (docs/metrics.md, section 6, has the table):
``PYTHONPATH=. .venv/bin/python benchmarks/bench_calibration.py --threads 1
--metrics <new measures>`` and the same with ``--shapes zoo --null-k 10``.

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

from prh.alignment import LayerCache, permuted_sweeps, sweep
from prh.calibration import MIN_RESAMPLES, permutation_null, replicate_scores, resample_indices
from prh.metric_info import get_metric
from prh.preprocess import prepare_centred_layers

ALL = "mutual_knn,cycle_knn,cka,unbiased_cka,cknna,svcca,lcs_knn,edit_distance_knn"
NEW = ("jaccard_knn,procrustes,procrustes_angular,rsa_pearson,rsa_spearman,pwcca,ridge_r2,rv")
#: the default zoo's largest pair: SmolLM2-135M's 31 layers against EfficientNet-Lite2's 23
ZOO = ([576] * 31, [32, 16] + [24] * 3 + [48] * 3 + [88] * 4 + [120] * 4 + [208] * 5 + [352, 1280])


def timed(fn, repeat=1):
    """Fastest of ``repeat`` runs (the others' load on a shared machine only adds time)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def fresh(prepared) -> LayerCache:
    """A model's layer cache with nothing computed yet, from its prepared layers (as
    :meth:`LayerCache.from_features` builds them, without the preprocessing)."""
    cache = LayerCache(prepared.layers, offsets=(prepared.mean_dots, prepared.mean_sq))
    cache._cache[("row_norms",)] = prepared.row_norms
    return cache


def params_for(metric: str, kernel: str | None, distance: str) -> dict:
    p = {"topk": 10} if ("knn" in metric or metric == "cknna") else {}
    if kernel:
        p["kernel"] = kernel
    if "distance" in get_metric(metric).defaults:
        p["distance"] = distance
    return p


def pair_work(sx, sy, metric, p) -> float:
    """The sweep once every per-layer term is cached: its pair work alone."""
    for s in (sx, sy):
        s._cache.pop(("procrustes_pair",), None)  # the last pair's, not per-layer work
    t0 = time.perf_counter()
    sweep(sx, sy, metric, **p)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--shapes", choices=["square", "zoo"], default="square",
                    help="square: --layers x --d both; zoo: the default zoo's largest pair")
    ap.add_argument("--k", type=int, default=200, help="permutations")
    ap.add_argument("--null-k", type=int, default=None,
                    help="permutations timed (default: --k); the null is scaled to --k")
    ap.add_argument("--resamples", type=int, default=0,
                    help="jackknife resamples to time per metric (0: skip)")
    ap.add_argument("--metrics", default=ALL, help=f"comma-separated; 'new': {NEW}")
    ap.add_argument("--kernels", default="ip,rbf", help="kernels of cka and unbiased_cka")
    ap.add_argument("--distance", default="cosine", help="of the kNN and RSA measures")
    ap.add_argument("--repeat", type=int, default=3, help="sweeps and Gram matrices: fastest of R")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="N=512, K=50")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n, args.k = 512, 50
    if args.metrics == "new":
        args.metrics = NEW
    timed_k = args.null_k or args.k
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    latent = rng.normal(size=(args.n, 32)).astype(np.float32)
    widths = ZOO if args.shapes == "zoo" else ([args.d] * args.layers,) * 2

    def model(ws):
        return [latent @ rng.normal(size=(32, w)).astype(np.float32)
                + rng.normal(size=(args.n, w)).astype(np.float32) for w in ws]

    px, py = (prepare_centred_layers(model(ws), name, device=cpu) for ws, name in zip(widths, "XY"))
    print(f"N={args.n} layers={len(widths[0])}x{len(widths[1])} widths {sorted(set(widths[0]))} x "
          f"{sorted(set(widths[1]))} K={args.k} (timed {timed_k}) threads={torch.get_num_threads()}")
    t_gram, _ = timed(lambda: (fresh(px).grams(), fresh(py).grams()), args.repeat)
    t_cka, _ = timed(lambda: sweep(fresh(px), fresh(py), "cka"), args.repeat)
    print(f"bare Gram matrices {t_gram:.2f} s, cka sweep {t_cka:.2f} s: "
          f"sweep/gram {t_cka / t_gram:.2f}x")
    print(f"{'metric':>18} {'param':>9} {'sweep s':>8} {'layers s':>8} {'sweep/layers':>12} "
          f"{'null s':>8} {'null/sweep':>10} {'resample s':>10}")
    for metric in args.metrics.split(","):
        kernels = args.kernels.split(",") if "cka" in metric and metric != "cknna" else [None]
        for kernel in kernels:
            p = params_for(metric, kernel, args.distance)
            t_sweep, _ = timed(lambda: sweep(fresh(px), fresh(py), metric, **p), args.repeat)
            sx, sy = fresh(px), fresh(py)
            sweep(sx, sy, metric, **p)  # per-layer work in place, as in a workflow pair job
            t_pairs = min(pair_work(sx, sy, metric, p) for _ in range(args.repeat))
            t_layers = max(t_sweep - t_pairs, 1e-9)
            if timed_k >= MIN_RESAMPLES:
                t_null, _ = timed(lambda: permutation_null(sx, sy, metric, n_permutations=timed_k, **p))
            else:  # fewer than a null takes: the permuted sweeps alone
                perms = np.stack([rng.permutation(args.n) for _ in range(timed_k)])
                t_null, _ = timed(lambda: permuted_sweeps(sx, sy, metric, perms, **p))
            t_null *= args.k / timed_k
            boot = "-"
            if args.resamples:
                sets = resample_indices(args.n, "jackknife", max(2, args.resamples))
                t_boot, _ = timed(lambda: replicate_scores({"x": sx, "y": sy}, [("x", "y")],
                                                           {metric: p}, sets))
                boot = f"{t_boot / len(sets):.3f}"
            label = kernel or p.get("distance", "-")
            print(f"{metric:>18} {label:>9} {t_sweep:8.2f} {t_layers:8.2f} "
                  f"{t_sweep / t_layers:12.2f} {t_null:8.2f} {t_null / t_sweep:10.1f} {boot:>10}",
                  flush=True)


if __name__ == "__main__":
    main()
