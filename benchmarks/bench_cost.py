"""Fit and check the jobs' cost model (prh/config/cost.py, constants in
prh/config/cost.yaml) on this machine.

Run by hand from the checkout root, on as quiet a machine as you can get
(the load average is printed with every result):

    PYTHONPATH=. .venv/bin/python benchmarks/bench_cost.py fit [--write]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_cost.py check --shape 25x12:1024:1024x192 --threads 1 --json m.json
    PYTHONPATH=. .venv/bin/python benchmarks/bench_cost.py table m.json

Every job runs as the workflow runs it, in a fresh Python process through
the steps' public API (``prh.steps.layer_cache.run``, ``pair_scores.run``,
``statistics.run``) on synthetic features of the given shape (N samples,
Lx x Ly layers of widths Dx, Dy; all eight metrics with the paper's
parameters, the paper's four aggregates). Times are CPU seconds of the
process (on a shared machine wall time measures the other jobs' load as
much as this one's work); memory is the process's peak resident set. Use
one thread: on a busy machine torch's threads spin while they wait for each
other, and two threads' CPU time was 2.7-7.6x one thread's.

``fit`` runs each job on small shapes, and a "parts" process that times
each term of the model apart (layer cache loads; per metric the first sweep
of a fresh layer cache, the sweep again, the null per permutation, a resample and
its first sweep), on one thread. Each term is a non-negative least-squares
fit (on relative errors) of coefficients times their work counts
(prh/config/cost.py says which count: L N^2 D for Gram matrices, (Lx + Ly)
N^2 for per-layer terms, Lx Ly N k for a kNN sweep, ...); the residuals of
every fit are printed. ``--write`` stores the constants in
prh/config/cost.yaml. ``--metrics new`` measures and fits the measures beyond
the paper's (``NEW``: their layer cache jobs and parts only) and keeps every other
constant as cost.yaml has it; ``check --metrics new`` runs their jobs.

``check`` runs the layer cache, pair (K permutations) and statistics jobs of one
shape not used in the fit and stores the measurements (``--json``);
``table`` prints the model's estimates beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prh.config import cost  # noqa: E402  (torch-free)

METRICS = {"mutual_knn": {"topk": 10}, "cycle_knn": {"topk": 10}, "lcs_knn": {"topk": 10},
           "edit_distance_knn": {"topk": 10}, "cka": {"kernel": "ip"},
           "unbiased_cka": {"kernel": "ip"}, "cknna": {"topk": 10}, "svcca": {"cca_dim": 10}}
#: the measures beyond the paper's (issue 23), fitted apart with ``--metrics new``
NEW = {"jaccard_knn": {"topk": 10}, "procrustes": {}, "procrustes_angular": {},
       "rsa_pearson": {"distance": "cosine"}, "rsa_spearman": {"distance": "cosine"},
       "pwcca": {"pca_dim": 10}, "ridge_r2": {"penalty": 1.0}, "rv": {}}
SETS = {"paper": METRICS, "new": NEW}
AGGREGATES = ["max", "mean", "row_max_mean", "matching"]
# (N, Lx, Ly, Dx, Dy): small shapes whose terms vary apart (Lx + Ly against
# Lx Ly, N, D below and above N; many layer pairs against few layers of the
# smaller model, which CKA's nulls permute)
FIT_SHAPES = [(256, 4, 2, 256, 128), (512, 6, 3, 512, 256), (512, 3, 7, 128, 768),
              (1024, 4, 4, 1024, 384), (1024, 8, 2, 768, 256), (1024, 2, 6, 256, 2048),
              (768, 10, 5, 640, 192), (512, 12, 8, 256, 512), (1024, 10, 6, 512, 640),
              (512, 48, 6, 64, 96), (1024, 30, 3, 128, 128)]


def load_average() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


# -- synthetic data ---------------------------------------------------------------


def write_features(path: Path, n: int, layers: int, width: int, latent: np.ndarray,
                   seed: int) -> None:
    """Features that share a latent structure across models (their kNN lists
    overlap, as aligned models' do), written in row batches."""
    from prh.formats.features import FeatureWriter

    rng = np.random.default_rng(seed)
    proj = [rng.normal(size=(latent.shape[1], width)).astype(np.float32) for _ in range(layers)]
    ids = [f"s{i}" for i in range(n)]
    with FeatureWriter(path, sample_ids=ids, attrs={"model": path.stem}) as w:
        for start in range(0, n, 128):
            z = latent[start:start + 128]
            w.write(start, [z @ p + rng.normal(size=(len(z), width)).astype(np.float32)
                            for p in proj])


def make_shape(folder: Path, n: int, lx: int, ly: int, dx: int, dy: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    latent = np.random.default_rng(0).normal(size=(n, 32)).astype(np.float32)
    out = {}
    for name, layers, width, seed in (("x", lx, dx, 1), ("y", ly, dy, 2)):
        path = folder / f"{name}.h5"
        if not path.exists():
            write_features(path, n, layers, width, latent, seed)
        out[name] = path
    return out


# -- one job in a fresh process ---------------------------------------------------


def run_job(spec: dict) -> dict:
    """Run ``spec`` in a fresh process: its CPU seconds (all threads), wall
    seconds and peak resident MB, with what the process reported."""
    cmd = [sys.executable, __file__, "_job", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"job {spec['job']} failed ({proc.returncode})")
    reported = json.loads(out.strip().splitlines()[-1])
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall,
            "mb": usage.ru_maxrss / 1024, **reported}


def _job(spec: dict) -> dict:
    """The child's side of run_job: the step, timed from after its imports."""
    t0 = time.process_time()
    from prh.jobio import set_threads

    metrics = SETS[spec.get("metrics", "paper")]
    set_threads(spec["threads"])
    kind = spec["job"]
    if kind == "layer_cache":
        from prh.steps import layer_cache as step
    elif kind == "pair":
        from prh.steps import pair_scores as step
    elif kind == "statistics":
        from prh.steps import statistics as step
    else:
        step = None
    import torch  # noqa: F401  (every alignment job imports it)
    if kind != "layer_cache":
        # scipy, which the step imports at its first "matching" aggregate: start-up too
        from prh.scoring import aggregate

        aggregate(np.zeros((2, 2)), "matching")
    imports = time.process_time() - t0
    t1, w1 = time.process_time(), time.perf_counter()
    parts = {}
    if kind == "layer_cache":
        step.run(spec["features"], spec["out"], q=0.95, exact=False, normalize=True,
                 topk=[10], cca_dims=[10], layers=True, device="cpu")
    elif kind == "pair":
        cal = {"n_permutations": spec["k"], "alpha": 0.05, "aggregates": AGGREGATES,
               "seed": 0, "blocks": None, "metrics": list(metrics)} if spec["k"] else None
        step.run(spec["x"], spec["y"], spec["out"], metrics=metrics, model_x="x",
                 model_y="y", device="cpu", calibration=cal)
    elif kind == "statistics":
        folder = Path(spec["out"])
        step.run({"x": spec["x"], "y": spec["y"]}, dataset="bench",
                 out_intervals=folder / "intervals.tsv",
                 out_comparisons=folder / "comparisons.tsv", out_trend=folder / "trend.tsv",
                 metrics=metrics, pairs=[["x", "y"]], comparisons=[], trend=False,
                 aggregates=AGGREGATES, method="auto", level=0.95, seed=0, blocks=None,
                 modalities={}, competence={})
    else:
        parts = _parts(spec, metrics)
    return {"imports": imports, "step_cpu": time.process_time() - t1,
            "step_wall": time.perf_counter() - w1, "parts": parts}


def _parts(spec: dict, metrics: dict) -> dict:
    """CPU seconds of each term of the model, apart (one thread): per model
    and metric on freshly loaded layer caches, as a pair job meets them."""
    import torch

    from prh.formats.layer_cache import load_layer_cache
    from prh.inference.permutation import null_distributions
    from prh.inference.resampling import resample_indices
    from prh.inference.pairs import in_order, scored_orders
    from prh.metric_info import interval_scheme
    from prh.sweep.dispatch import sweep

    def cpu(fn):
        t = time.process_time()
        fn()
        return time.process_time() - t

    def masks(*models):
        for s in models:
            s.knn_mask(10), s.by_entry("mask", 10)

    out = {"load_x": cpu(lambda: load_layer_cache(spec["x"])),
           "load_y": cpu(lambda: load_layer_cache(spec["y"]))}
    sx, sy = load_layer_cache(spec["x"]), load_layer_cache(spec["y"])
    out["mask"] = cpu(lambda: masks(sx, sy))
    for metric, params in metrics.items():
        sx, sy = load_layer_cache(spec["x"]), load_layer_cache(spec["y"])
        knn = "topk" in params
        if knn:
            masks(sx, sy)  # shared by the kNN metrics: a term of its own
        todo = scored_orders(sx, {metric: params}, True)

        def sweeps(a, b):
            for order, m, p in todo:
                sweep(*in_order(a, b, order), m, **p)
        first = cpu(lambda: sweeps(sx, sy))
        sx._cache.pop(("procrustes_pair",), None)  # the last pair's scores, not per-layer work
        again = cpu(lambda: sweeps(sx, sy))
        null = cpu(lambda: null_distributions(sx, sy, {metric: params}, n_permutations=spec["k"],
                                              aggregates=AGGREGATES, both_orders=True))
        meth, count = interval_scheme(metric)
        idx = torch.from_numpy(resample_indices(sx.n, meth, count)[0])
        held = {}
        gather = cpu(lambda: held.update(x=sx.resample(idx), y=sy.resample(idx)))
        rx, ry = held["x"], held["y"]
        search = cpu(lambda: (rx.knn(10), ry.knn(10))) if knn else 0.0
        r_mask = cpu(lambda: masks(rx, ry)) if knn else 0.0
        r_first = cpu(lambda: sweeps(rx, ry))
        out[metric] = {"first": first, "again": again, "null": null, "gather": gather,
                       "search": search, "resample_mask": r_mask, "resample_first": r_first,
                       "subset": len(idx)}
    return out


# -- fit --------------------------------------------------------------------------


def fit_shape(folder: Path, shape, k: int, which: str = "paper") -> dict:
    """One shape's measurements: its layer cache jobs and parts, and with the
    paper's metrics (the whole model is fitted) its pair and statistics jobs."""
    n, lx, ly, dx, dy = shape
    feats = make_shape(folder, n, lx, ly, dx, dy)
    st = {m: folder / f"{m}.cache.h5" for m in ("x", "y")}
    res = {"shape": shape, "layer_cache": {}}
    for m in ("x", "y"):
        res["layer_cache"][m] = run_job({"job": "layer_cache", "threads": 1,
                                         "features": str(feats[m]), "out": str(st[m])})
    common = {"threads": 1, "x": str(st["x"]), "y": str(st["y"]), "k": k, "metrics": which}
    if which == "paper":
        res["pair"] = run_job({"job": "pair", "out": str(folder / "pair.h5"), **common})
        res["statistics"] = run_job({"job": "statistics", "out": str(folder), **common})
    res["parts"] = run_job({"job": "parts", "out": "", **common})["parts"]
    res["load"] = load_average()
    return res


def lsq(rows: list[list[float]], y: list[float], names: list[str]) -> dict[str, float]:
    """Non-negative least squares on relative errors (each row divided by its
    measurement): every shape counts alike, small or large."""
    from scipy.optimize import nnls

    a = np.asarray(rows, dtype=float)
    b = np.asarray(y, dtype=float)
    w = 1.0 / np.maximum(b, 1e-9)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-300)
    coef, _ = nnls(a * w[:, None] / scale, b * w)
    return dict(zip(names, (coef / scale).tolist()))


def make_term(lines: list[str]):
    """fit(what, names, rows, y, shapes): one term's coefficients, its
    residuals appended to ``lines``."""
    def term(what, names, rows, y, shapes):
        coef = lsq(rows, y, names)
        for row, meas, shape in zip(rows, y, shapes):
            est = sum(coef[n] * v for n, v in zip(names, row))
            lines.append(f"{what:>24} {shape_name(shape):>26} measured {meas:9.4f} s "
                         f"fit {est:9.4f} s  fit/measured {est / max(meas, 1e-9):5.2f}")
        return coef
    return term


def fit(results: list[dict], k: int) -> tuple[dict, list[str]]:
    """The constants of prh/config/cost.yaml, and lines of residuals."""
    lines = []
    c: dict = {"metrics": {}}

    term = make_term(lines)

    shapes = [r["shape"] for r in results]
    # start-up: a job's CPU before its step (interpreter, imports, torch)
    starts = [r["pair"]["cpu"] - r["pair"]["step_cpu"] for r in results]
    c["start_s"] = float(np.median(starts))
    lines.append(f"{'start-up':>24} median {c['start_s']:.2f} s of {np.round(starts, 2).tolist()}")
    rows, y, sh = [], [], []
    for r in results:
        n, lx, ly, dx, dy = r["shape"]
        for layers, d, m in ((lx, dx, "x"), (ly, dy, "y")):
            rows.append(cost.layer_cache_counts(n, layers, d) + [1])
            y.append(r["layer_cache"][m]["step_cpu"])
            sh.append((n, layers, 0, d, 0))
    c["layer_cache"] = term("layer cache job", ["gram", "svcca", "knn", "read", "file"], rows, y, sh)
    rows, y, sh = [], [], []
    for r in results:
        n, lx, ly, dx, dy = r["shape"]
        rows += [[lx * n * n, lx * n * dx, 1], [ly * n * n, ly * n * dy, 1]]
        y += [r["parts"]["load_x"], r["parts"]["load_y"]]
        sh += [(n, lx, 0, dx, 0), (n, ly, 0, dy, 0)]
    c["load"] = term("layer cache read", ["gram", "layers", "file"], rows, y, sh)
    lxy = [[(r["shape"][1] + r["shape"][2]) * r["shape"][0] ** 2] for r in results]
    c["mask"] = term("kNN masks", ["mask"], lxy, [r["parts"]["mask"] for r in results],
                     shapes)["mask"]
    rows, y, gy, grows = [], [], [], []
    for r in results:
        n, lx, ly, dx, dy = r["shape"]
        p = r["parts"]["mutual_knn"]
        m = p["subset"]
        rows.append([(lx + ly) * m * m])
        y.append(p["search"])
        g = r["parts"]["cka"]
        grows.append([(lx + ly) * g["subset"] ** 2, g["subset"] * (lx * dx + ly * dy)])
        gy.append(g["gather"])
    c["knn_search"] = term("resample kNN search", ["search"], rows, y, shapes)["search"]
    c["resample"] = term("resample gathers", ["gram", "layers"], grows, gy, shapes)
    c["metrics"] = fit_metrics(results, k, METRICS, term)
    # memory: each job's peak beyond the arrays it holds (the model's bytes)
    full = [cost.spec(m, k, p) for m, p in METRICS.items()]
    schemes = {m: interval_scheme_of(m) for m in METRICS}
    base = {"layer_cache": [], "pair": [], "statistics": []}
    for r in results:
        n, lx, ly, dx, dy = r["shape"]
        for layers, d, m in ((lx, dx, "x"), (ly, dy, "y")):
            base["layer_cache"].append(r["layer_cache"][m]["mb"]
                                       - cost.layer_cache_bytes(n, layers, d) / cost.MB)
        base["pair"].append(r["pair"]["mb"] - cost.block_temp_mb(n, lx, ly, full)
                            - cost.pair_bytes(n, lx, ly, full, (dx, dy)) / cost.MB)
        models = {"x": (lx, dx), "y": (ly, dy)}
        base["statistics"].append(
            r["statistics"]["mb"] - cost.block_temp_mb(n, lx, ly, full)
            - cost.statistics_bytes(n, models, METRICS, schemes) / cost.MB)
    c["base_mb"] = {job: float(np.median(v)) for job, v in base.items()}
    for job, v in base.items():
        lines.append(f"{'base MB, ' + job:>24} median {c['base_mb'][job]:.0f} of "
                     f"{np.round(v).astype(int).tolist()}")
    # each job's own fixed work (checks, writing its file), what its step
    # takes beyond the terms above: the median of the rest
    c["fixed_s"] = {"pair": 0.0, "statistics": 0.0}
    rest = {"pair": [], "statistics": []}
    saved = cost.constants
    cost.constants = lambda: c
    cost.pair_work_s.cache_clear()
    try:
        for r in results:
            n, lx, ly, dx, dy = r["shape"]
            models = {"x": (lx, dx), "y": (ly, dy)}
            rest["pair"].append(r["pair"]["step_cpu"]
                                - (cost.pair_s(n, lx, ly, full, (dx, dy)) - c["start_s"]))
            rest["statistics"].append(
                r["statistics"]["step_cpu"] - (cost.statistics_s(n, models, [("x", "y")], METRICS,
                                                                 schemes) - c["start_s"]))
    finally:
        cost.constants = saved
        cost.pair_work_s.cache_clear()
    for job, v in rest.items():
        c["fixed_s"][job] = max(0.0, float(np.median(v)))
        lines.append(f"{'fixed s, ' + job + ' job':>24} median {c['fixed_s'][job]:.2f} of "
                     f"{np.round(v, 2).tolist()}")
    return c, lines


def fit_metrics(results: list[dict], k: int, metrics: dict, term) -> dict:
    """Each metric's constants (its sweep, per-layer, null and resample terms)
    from the shapes' parts; ``term`` fits one term and logs its residuals."""
    out = {}
    shapes = [r["shape"] for r in results]
    for metric, params in metrics.items():
        o = cost.metric_orders(metric)
        sw, sy_, la, ly_, nu, ny = [], [], [], [], [], []
        for r in results:
            n, lx, ly, dx, dy = r["shape"]
            p = r["parts"][metric]
            w = cost.sweep_count(metric, n, lx, ly, params, (dx, dy))
            sw.append([o * w, o])
            sy_.append(p["again"])
            la.append([(lx + ly) * n * n])
            ly_.append(max(p["first"] - p["again"], 0.0))
            nu.append([o * w, o * min(lx, ly) * n * n, o])
            ny.append(p["null"] / k)
        swept = term(f"{metric} sweep", ["pair", "call"], sw, sy_, shapes)
        mc = {"sweep": swept["pair"], "sweep_call": swept["call"],
              "layer": term(f"{metric} per layer", ["layer"], la, ly_, shapes)["layer"]}
        null = term(f"{metric} null, 1 perm.", ["pair", "moved", "call"], nu, ny, shapes)
        mc["null_pair"], mc["null_moved"], mc["null_call"] = null["pair"], null["moved"], null["call"]
        # a resample's first sweep less the sweep itself: the resample's own terms
        rs, ry = [], []
        for r in results:
            n, lx, ly, dx, dy = r["shape"]
            p = r["parts"][metric]
            m = p["subset"]
            rs.append([(lx + ly) * m * m, lx * m * dx * min(m, dx) + ly * m * dy * min(m, dy)])
            sweep = o * (mc["sweep"] * cost.sweep_count(metric, m, lx, ly, params, (dx, dy))
                         + mc["sweep_call"])
            ry.append(max(p["resample_first"] - sweep, 0.0))
        res = term(f"{metric} resample terms", ["layer", "svcca"], rs, ry, shapes)
        mc["resample_layer"], mc["resample_svcca"] = res["layer"], res["svcca"]
        out[metric] = mc
    return out


def fit_new(results: list[dict], k: int) -> tuple[dict, list[str]]:
    """The constants with the measures beyond the paper's (``NEW``) fitted
    from their parts, every other constant kept as cost.yaml has it."""
    lines: list[str] = []
    c = json.loads(json.dumps(cost.constants()))

    term = make_term(lines)
    c["metrics"].update(fit_metrics(results, k, NEW, term))
    return c, lines


def interval_scheme_of(metric: str) -> tuple[str, int]:
    from prh.metric_info import interval_scheme

    return interval_scheme(metric)


KFIT = 32


def shape_name(shape) -> str:
    n, lx, ly, dx, dy = shape
    return f"{lx}x{ly} N={n} D={dx}x{dy}"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_job":
        print(json.dumps(_job(json.loads(sys.argv[2]))))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--k", type=int, default=KFIT)
    f.add_argument("--write", action="store_true", help="store the constants in cost.yaml")
    f.add_argument("--dir", default=None, help="keep the synthetic files here")
    f.add_argument("--json", default=None, help="also write the raw measurements here")
    f.add_argument("--from-json", default=None,
                   help="start from these measurements (with --shapes: add those, else measure nothing)")
    f.add_argument("--shapes", nargs="*", default=None,
                   help="LxxLy:N:DxxDy each, instead of the built-in fit shapes")
    f.add_argument("--metrics", choices=list(SETS), default="paper",
                   help="paper: fit every constant; new: only the new measures' (NEW)")
    c = sub.add_parser("check")
    c.add_argument("--shape", required=True, help="LxxLy:N:DxxDy, e.g. 25x12:1024:1024x192")
    c.add_argument("--k", type=int, default=200)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--dir", default=None)
    c.add_argument("--jobs", default="layer_cache,pair,statistics")
    c.add_argument("--json", default=None, help="store the measurements here (for table)")
    c.add_argument("--metrics", choices=list(SETS), default="paper")
    t = sub.add_parser("table")
    t.add_argument("json", nargs="+", help="measurements of check --json")
    args = ap.parse_args()
    if args.cmd == "table":
        table(args.json)
        return
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench_cost_"))
    if args.cmd == "fit":
        results = json.loads(Path(args.from_json).read_text()) if args.from_json else []
        shapes = FIT_SHAPES if not args.from_json else []
        if args.shapes is not None:
            shapes = [parse_shape(t) for t in args.shapes]
        for shape in shapes:
            r = fit_shape(folder / shape_name(shape).replace(" ", "_"), shape, args.k,
                          args.metrics)
            results.append(r)
            print(f"measured {shape_name(shape)} ({r['load']})", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
        constants, lines = (fit if args.metrics == "paper" else fit_new)(results, args.k)
        print("\n".join(lines))
        if args.write:
            loads = [float(r["load"].split()[2]) for r in results]
            note = (f"benchmarks/bench_cost.py fit on {len(results)} shapes, CPU seconds on one "
                    f"thread,\n# 1-minute load averages {min(loads):.1f}-{max(loads):.1f} on 2 "
                    "shared cores")
            if args.metrics == "new":  # the other constants' note kept
                head = [ln[2:] for ln in cost.CONSTANTS_PATH.read_text().splitlines()[1:]
                        if ln.startswith("# ") and not ln.startswith("# CPU seconds per unit")]
                head = " ".join(head).split("; the measures beyond")[0].rstrip(".")
                note = "\n# ".join(textwrap.wrap(
                    f"{head}; the measures beyond the paper's (fit --metrics new): "
                    + note.replace("\n# ", " "), 76))
            cost.write_constants(constants, note=note)
            print(f"wrote {cost.CONSTANTS_PATH}")
        return
    check(args, folder)


def estimates(shape, k: int, which: str = "paper") -> dict[str, tuple[float, float]]:
    """job -> (seconds, MB) the model estimates for a check's jobs."""
    n, lx, ly, dx, dy = shape
    metrics = SETS[which]
    specs = tuple(cost.spec(m, k, p) for m, p in metrics.items())
    models = {"x": (lx, dx), "y": (ly, dy)}
    schemes = {m: interval_scheme_of(m) for m in metrics}
    return {"layer_cache_x": (cost.layer_cache_s(n, lx, dx), cost.layer_cache_mb(n, lx, dx)),
            "layer_cache_y": (cost.layer_cache_s(n, ly, dy), cost.layer_cache_mb(n, ly, dy)),
            "pair": (cost.pair_s(n, lx, ly, specs, (dx, dy)),
                     cost.pair_mb(n, lx, ly, specs, (dx, dy))),
            "statistics": (cost.statistics_s(n, models, [("x", "y")], metrics, schemes),
                           cost.statistics_mb(n, models, metrics, schemes, [("x", "y")]))}


def table(paths) -> None:
    """A markdown table of the model's estimates against check measurements."""
    print("| shape (N, layers, widths) | job | K | estimate (CPU s) | measured (CPU s) | "
          "est./meas. | wall (s) | estimate (MB) | measured (peak MB) | est./meas. | "
          "load average (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        got = json.loads(Path(path).read_text())
        shape = tuple(got["shape"])
        which = got.get("metrics", "paper")
        est = estimates(shape, got["k"], which)
        n, lx, ly, dx, dy = shape
        for job, m in got["jobs"].items():
            s, mb = est[job]
            layers = {"layer_cache_x": f"{lx}", "layer_cache_y": f"{ly}"}.get(job, f"{lx} x {ly}")
            widths = {"layer_cache_x": f"{dx}", "layer_cache_y": f"{dy}"}.get(job, f"{dx} x {dy}")
            k = got["k"] if job == "pair" else "-"
            job_name = job.removesuffix("_x").removesuffix("_y") + ("" if which == "paper" else f" ({which})")
            print(f"| {n}, {layers}, {widths} | {job_name} | {k} | {s:.0f} | "
                  f"{m['cpu']:.0f} | {s / m['cpu']:.2f} | {m['wall']:.0f} | {mb:.0f} | "
                  f"{m['mb']:.0f} | {mb / m['mb']:.2f} | {m['load'].split()[2]} |")


def parse_shape(text: str) -> tuple[int, int, int, int, int]:
    """"LxxLy:N:DxxDy" -> (N, Lx, Ly, Dx, Dy)."""
    lxy, n, dxy = text.split(":")
    lx, ly = map(int, lxy.split("x"))
    dx, dy = map(int, dxy.split("x"))
    return int(n), lx, ly, dx, dy


def check(args, folder: Path) -> None:
    """Measure one shape's jobs and store them (``--json``) for ``table``."""
    shape = parse_shape(args.shape)
    feats = make_shape(folder, *shape)
    st = {m: folder / f"{m}.cache.h5" for m in ("x", "y")}
    jobs = args.jobs.split(",")
    out = {"shape": shape, "k": args.k, "threads": args.threads, "jobs": {},
           "metrics": args.metrics}
    print(f"{shape_name(shape)} K={args.k} threads={args.threads} ({load_average()})", flush=True)

    def record(what, got):
        got["load"] = load_average()
        out["jobs"][what] = got
        print(f"{what}: {got['cpu']:.1f} CPU s, {got['wall']:.1f} wall s, {got['mb']:.0f} MB "
              f"({got['load']})", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
    for m in ("x", "y"):
        if "layer_cache" in jobs or not st[m].exists():
            record(f"layer_cache_{m}", run_job({"job": "layer_cache", "threads": args.threads,
                                                "features": str(feats[m]), "out": str(st[m])}))
    common = {"threads": args.threads, "x": str(st["x"]), "y": str(st["y"]), "k": args.k,
              "metrics": args.metrics}
    if "pair" in jobs:
        record("pair", run_job({"job": "pair", "out": str(folder / "pair.h5"), **common}))
    if "statistics" in jobs:
        record("statistics", run_job({"job": "statistics", "out": str(folder), **common}))


if __name__ == "__main__":
    main()
