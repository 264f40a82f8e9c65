"""The whole workflow at large N: two ``file:`` models on an ``ids`` dataset,
each one D-wide layer, scored, calibrated, resampled and drawn by a real
Snakemake run, every job's wall time and peak memory read from its
``benchmark:`` file, the scores checked against a float64 reference.

Run by hand (not part of the tests), from the checkout root:

``PYTHONPATH=. .venv/bin/python benchmarks/bench_large_n_workflow.py all --n 100000``

and at 10^6 with approximate neighbours (whose recall@10 the layer caches'
logs give; the float64 exact neighbours would take hours there):

``... bench_large_n_workflow.py all --n 1000000 --knn approximate --no-knn-reference``

Subcommands (each takes ``--n``, ``--dir``; ``all`` runs the four in turn):

- ``data``: ``<dir>/<n>/ids.txt`` and two models' features ``x.npy`` and
  ``y.npy`` (N x D float32, ``x.ids.txt`` and ``y.ids.txt`` beside them): a
  shared 8-dimensional latent through two random maps plus Student-t noise,
  so that the layers are correlated and have outliers for the clamp;
- ``run``: ``<dir>/<n>/large_n.yaml`` (the config below) and Snakemake on it
  in ``<dir>/<n>/run`` (the checkout's Snakefile, ``--cores 2``), timed as a
  whole by ``/usr/bin/time -v`` (wall time, the peak of its largest process);
- ``table``: one row per job from ``run/logs/<dataset>/**/*.benchmark.tsv``
  (Snakemake's wall seconds, peak RSS and CPU time of each job) beside the
  cost model's estimate (:meth:`prh.config.Config.layer_cache_cost`, ...);
- ``reference``: the scores of ``alignment.tsv`` against an independent
  float64 reading: the features clamped and normalised in numpy float64 as
  docs/metrics.md defines it, linear and unbiased CKA from the float64
  cross-covariances, mutual kNN from exact float64 cosine neighbours (in
  blocks of rows).

The config: metrics mutual_knn, cknna, cka and unbiased_cka (topk 10), every
one calibrated with K = 50 permutations, the statistics job on (its default
schemes: 5-group jackknife for the kNN metrics and CKNNA, 20 groups for the
CKAs), the sample-size curve at 10^3, 10^4, ... up to N with 50 permutations
each, ``alignment.representation: features`` and two threads per job.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASET = "large"
METRICS = {"mutual_knn": {"topk": 10}, "cknna": {"topk": 10}, "cka": {}, "unbiased_cka": {}}


def case_dir(args) -> Path:
    return Path(args.dir) / str(args.n)


def make_data(args) -> None:
    out = case_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    ids = "".join(f"s{i:07d}\n" for i in range(args.n))
    (out / "ids.txt").write_text(ids)
    rng = np.random.default_rng(args.seed)
    latent = rng.standard_normal((args.n, 8))
    for name in ("x", "y"):
        feats = (latent @ rng.standard_normal((8, args.d))
                 + 2.0 * rng.standard_t(4, size=(args.n, args.d))).astype(np.float32)
        np.save(out / f"{name}.npy", feats)
        (out / f"{name}.ids.txt").write_text(ids)
    print(f"data: {out} ({args.n} x {args.d}, two models)")


def config(args) -> dict:
    out = case_dir(args).resolve()
    sizes = [s for s in (1000, 10000, 100000, 1000000) if s < args.n] + [args.n]
    return {
        "datasets": {DATASET: {"source": "ids", "path": str(out / "ids.txt")}},
        "models": {
            "model_x": {"source": f"file:{out / 'x.npy'}", "modality": "vision",
                        "n_layers": 1, "width": args.d},
            "model_y": {"source": f"file:{out / 'y.npy'}", "modality": "language",
                        "n_layers": 1, "width": args.d},
        },
        "alignment": {"threads": args.threads, "representation": args.representation,
                      "knn": args.knn},
        "metrics": METRICS,
        "calibration": {"enabled": True, "n_permutations": args.k,
                        "metrics": list(METRICS), "sample_sizes": sizes,
                        "sample_size_metrics": list(METRICS),
                        "sample_size_permutations": args.k},
    }


def run_workflow(args) -> None:
    import yaml

    out = case_dir(args)
    cfg = out / "large_n.yaml"
    cfg.write_text(yaml.safe_dump(config(args), sort_keys=False))
    wd = out / "run"
    wd.mkdir(exist_ok=True)
    cmd = ["/usr/bin/time", "-v", str(Path(sys.executable).parent / "snakemake"),
           "-s", str(REPO / "Snakefile"), "-d", str(wd), "--configfile", str(cfg),
           "--replace-workflow-config", "--cores", str(args.cores), "--rerun-incomplete"]
    print(" ".join(cmd), flush=True)
    load = os.getloadavg()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - t0
    (out / "snakemake.log").write_text(res.stdout + res.stderr)
    peak = [ln for ln in res.stderr.splitlines() if "Maximum resident" in ln]
    summary = {"n": args.n, "wall_s": wall, "rc": res.returncode,
               "load_before": load, "load_after": os.getloadavg(),
               "max_rss_kb": int(peak[0].split()[-1]) if peak else None}
    (out / "run.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    if res.returncode:
        print(res.stderr[-6000:], file=sys.stderr)
        sys.exit(res.returncode)


def _estimates(args) -> dict[str, tuple[float, float]]:
    """The cost model's (seconds, MB) per job name of the benchmark table."""
    import yaml

    from prh.config import Config

    c = Config(yaml.safe_load((case_dir(args) / "large_n.yaml").read_text()))
    out = {}
    for m in c.models:
        e = c.layer_cache_cost(DATASET, m)
        out[f"layer_cache/{m}"] = (e["seconds"], e["mb"])
    for x, y in c.pairs():
        e = c.pair_cost(DATASET, x, y)
        out[f"pairs/{x}__{y}"] = (e["seconds"], e["mb"])
    e = c.statistics_cost(DATASET)
    out["statistics"] = (e["seconds"], e["mb"])
    e = c.sample_size_cost(DATASET)
    out["sample_size"] = (e["seconds"], e["mb"])
    return out


def table(args) -> None:
    wd = case_dir(args) / "run"
    bench = wd / "logs" / DATASET
    est = _estimates(args)
    rows = []
    for path in sorted(bench.rglob("*.benchmark.tsv")):
        name = path.relative_to(bench).as_posix()[:-len(".benchmark.tsv")]
        with open(path) as f:
            r = next(csv.DictReader(f, delimiter="\t"))
        s, mb = est.get(name, (float("nan"), float("nan")))
        rows.append((name, float(r["s"]), float(r["max_rss"]), float(r["cpu_time"]), s, mb))
    print(f"| job | wall s | CPU s | peak RSS MB | estimate s | estimate MB |")
    print("|---|---|---|---|---|---|")
    for name, wall, rss, cpu, s, mb in rows:
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {rss:.0f} | {s:.0f} | {mb:.0f} |")
    run = case_dir(args) / "run.json"
    if run.exists():
        r = json.loads(run.read_text())
        print(f"whole run: {r['wall_s']:.0f} s wall, largest process {r['max_rss_kb'] / 1024:.0f} MB, "
              f"load {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after")


# -- the float64 reference ------------------------------------------------------------


def prepared(path: Path, q: float = 0.95) -> np.ndarray:
    """docs/metrics.md's preprocessing in float64: |x| clamped at the mean
    over samples of each sample's q-quantile of |x| (one layer: one
    threshold), then each row scaled to unit norm."""
    x = np.load(path).astype(np.float64)
    t = np.quantile(np.abs(x), q, axis=1).mean()
    np.clip(x, -t, t, out=x)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


#: the 10^-6 of CKA's denominator (docs/metrics.md, sections 3.5 and 3.6): part
#: of the metric's definition, and not negligible for the unbiased estimator,
#: whose HSIC is divided by N(N - 3) (0.03 here: eps moves the score by 2e-5)
EPS = 1e-6


def cka64(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(linear CKA, unbiased linear CKA) from D x D cross-covariances."""
    n = x.shape[0]
    xc, yc = x - x.mean(0), y - y.mean(0)

    def hsic(a, b):
        return float(np.sum((a.T @ b) ** 2))

    biased = hsic(xc, yc) / (np.sqrt(hsic(xc, xc) * hsic(yc, yc)) + EPS)

    def hsic_u(a, b):
        # K~ = A A^T less its diagonal; N(N-3) HSIC_u = tr(K~ L~) + 1'K~1 1'L~1/((N-1)(N-2))
        #                                                - 2/(N-2) (K~1).(L~1)
        da, db = np.sum(a * a, 1), np.sum(b * b, 1)
        ra, rb = a @ a.sum(0) - da, b @ b.sum(0) - db
        tr = hsic(a, b) - da @ db
        return (tr + ra.sum() * rb.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ra @ rb) / (
            n * (n - 3))

    unbiased = hsic_u(xc, yc) / (np.sqrt(hsic_u(xc, xc) * hsic_u(yc, yc)) + EPS)
    return float(biased), float(unbiased)


def knn64(x: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """(N, k) indices of each row's k largest cosines with the other rows (unit rows)."""
    n = x.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block):
        g = x[s:s + block] @ x.T
        g[np.arange(g.shape[0]), np.arange(s, s + g.shape[0])] = -np.inf
        part = np.argpartition(-g, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(g, part, 1), axis=1)
        out[s:s + block] = np.take_along_axis(part, order, 1)
    return out


def reference(args) -> None:
    out = case_dir(args)
    x, y = prepared(out / "x.npy"), prepared(out / "y.npy")
    t0 = time.perf_counter()
    cka, ucka = cka64(x, y)
    ref = {"cka": cka, "unbiased_cka": ucka}
    if not args.no_knn_reference:
        k = METRICS["mutual_knn"]["topk"]
        kx, ky = knn64(x, k), knn64(y, k)
        ref["mutual_knn"] = float(np.mean([len(np.intersect1d(a, b, assume_unique=True))
                                           for a, b in zip(kx, ky)])) / k
    with open(out / "run" / "results" / DATASET / "alignment.tsv") as f:
        got = {r["metric"]: float(r["score"]) for r in csv.DictReader(f, delimiter="\t")
               if r.get("aggregate", "max") == "max"}
    print(f"reference in {time.perf_counter() - t0:.0f} s")
    for m, v in ref.items():
        print(f"{m}: workflow {got.get(m, float('nan')):.8f}, float64 {v:.8f}, "
              f"|diff| {abs(got.get(m, float('nan')) - v):.2e}")
    (out / "reference.json").write_text(json.dumps({"reference": ref, "workflow": got}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["data", "run", "table", "reference", "all"])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=50, help="permutations of every null")
    ap.add_argument("--dir", default="/tmp/largen")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="alignment.threads")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--representation", default="features")
    ap.add_argument("--knn", default="exact", choices=["exact", "approximate"],
                    help="alignment.knn (approximate: FAISS lists, recall@k in the layer caches' logs)")
    ap.add_argument("--no-knn-reference", action="store_true",
                    help="skip the float64 exact neighbours (O(N^2 D): hours at N = 10^6)")
    args = ap.parse_args()
    steps = {"data": make_data, "run": run_workflow, "table": table, "reference": reference}
    for name in (steps if args.what == "all" else [args.what]):
        steps[name](args)


if __name__ == "__main__":
    main()
