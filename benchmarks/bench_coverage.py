"""Measured coverage of nominal 95 % intervals per metric (issue 12), by Monte Carlo.

Run by hand: ``.venv/bin/python benchmarks/bench_coverage.py [--quick]`` (from a
worktree whose package is not the installed one: ``PYTHONPATH=. ...``).

Draws ``--reps`` independent sample sets of each size from
:func:`prh.simulation.default_population` (two models, 4 layers of width 32,
a shared 8-d latent with 10 clusters, private latents and noise), builds the
interval of each method on each set, and counts how often it covers the mean
score at that N (known from the draws plus ``--truth-reps`` more). Columns:
coverage, misses with the interval below / above the truth, Monte Carlo
standard error of the coverage, mean width, the score's sd over draws and the
intervals' mean se (se/sd near 1: widths are right). Target: coverage in
[0.92, 0.98]. Costs grow with N^2 per resample; at N = 1024 on two busy cores
expect minutes per metric.
"""

from __future__ import annotations

import argparse
import time

from prh.simulation import default_population, measure_coverage

ALL = "mutual_knn,cycle_knn,cka,unbiased_cka,cknna,svcca,lcs_knn,edit_distance_knn"


def params(metric: str) -> dict:
    if metric == "svcca":
        return {"cca_dim": 10}
    return {"topk": 10} if ("knn" in metric or metric == "cknna") else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", default="256,1024")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--truth-reps", type=int, default=100)
    ap.add_argument("--methods", default="jackknife,subsample")
    ap.add_argument("--resamples", type=int, default=None, help="groups / subsamples")
    ap.add_argument("--metrics", default=ALL)
    ap.add_argument("--quick", action="store_true", help="N=256 only, 40 reps, 4 metrics")
    args = ap.parse_args()
    if args.quick:
        args.n, args.reps, args.truth_reps = "256", 40, 20
        args.metrics = "mutual_knn,cycle_knn,cka,cknna"
    metrics = {m: params(m) for m in args.metrics.split(",")}
    print(f"{'N':>5} {'metric':>18} {'method':>10} {'coverage':>8} {'below':>6} {'above':>6} "
          f"{'mc_se':>6} {'width':>8} {'sd':>8} {'se/sd':>6} {'s':>6}")
    for n in (int(x) for x in args.n.split(",")):
        for metric, p in metrics.items():
            t0 = time.perf_counter()
            rows = measure_coverage(default_population(), ("a", "b"), {metric: p}, n=n,
                                    reps=args.reps, truth_reps=args.truth_reps,
                                    methods=tuple(args.methods.split(",")),
                                    n_resamples=args.resamples)
            dt = time.perf_counter() - t0
            for r in rows:
                print(f"{n:>5} {metric:>18} {r['method']:>10} {r['coverage']:>8.3f} "
                      f"{r['below']:>6.3f} {r['above']:>6.3f} {r['mc_se']:>6.3f} "
                      f"{r['width']:>8.4f} {r['sd']:>8.4f} {r['mean_se'] / r['sd']:>6.2f} "
                      f"{dt:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
