"""Per-job start-up overhead of each workflow step, side by side in one run.

Run by hand: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_startup.py
[--before DIR] [--repeats 5]``.

Every workflow job is a fresh Python process that imports its step and runs
it, so what a step imports is paid once per job (hundreds of pair jobs in
the paper's config). Each row here is one such process, timed from outside
(wall clock, ``subprocess.run``): it imports ``prh.jobio.logged`` and the
step as the rule's script does, and runs the step on tiny inputs (32
samples, one or two small layers), so almost all of its time is start-up.
``python -c pass``, ``import numpy`` and ``import torch`` are the baselines,
and the imports of the preamble Snakemake puts before every rule's script
(paid by every job, whatever its step).

``--before DIR`` times the same jobs with another checkout's prh (e.g. a
``git worktree`` of the commit before a change), interleaved with this
checkout's in every round so that both see the same machine load, and
reports the ratio of the medians. The inputs are built once, by this
checkout, and read by both.

The last columns name the heavy libraries each job loaded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEAVY = ("torch", "scipy", "transformers", "timm", "matplotlib", "h5py", "PIL", "pandas",
         "sklearn", "tqdm")
N = 32
METRICS = {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 5}, "cka": {}}

# The child: what a rule's script does (scripts/*.py), then which heavy
# libraries it loaded, on stdout's last line.
CHILD = """\
import json, sys
spec = json.load(open(sys.argv[1]))
from prh.jobio import logged
import importlib
try:
    step = importlib.import_module(spec["module"])
except ModuleNotFoundError:  # a --before checkout from before the step's rename
    step = importlib.import_module(spec["older"] or spec["module"])
with logged(spec["log"]):
    getattr(step, spec["func"])(*spec["args"], **spec["kwargs"])
import prh
print(json.dumps([prh.__file__] + [m for m in {heavy!r} if m in sys.modules]))
""".format(heavy=HEAVY)

# steps renamed since: their module in older checkouts (--before)
OLDER = {"prh.steps.layer_cache": "prh.steps.model_stats"}

BASELINES = {
    "python -c pass": "pass",
    "import numpy": "import numpy",
    "import torch": "import torch",
    # what Snakemake's preamble to every `script:` imports, before the script runs
    "snakemake script preamble": "import pickle; from snakemake.logging import logger; "
                                 "from snakemake.iocontainers import Snakemake; "
                                 "from snakemake.shell import shell",
}


def _folder_dataset(d: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(N):
        name = f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / name)
        rows.append({"image": name, "caption": f"a red apple number {i}"})
    with open(d / "captions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "caption"])
        w.writeheader()
        w.writerows(rows)
    return d / "captions.csv"


def build_inputs(work: Path) -> dict[str, dict]:
    """Run the pipeline once (in this process, with this checkout) and return
    each step's job spec: module, function and arguments."""
    from prh.datasets import load_manifest
    from prh.steps import aggregate, embed, layer_cache, pair_scores, prepare_dataset

    data = work / "data"
    data.mkdir()
    captions = _folder_dataset(data)
    r = work / "inputs"
    r.mkdir()
    dataset = {"source": "folder", "n_samples": N, "path": str(captions)}
    prepare_dataset.run(dataset, r / "manifest.json")
    ids = load_manifest(r / "manifest.json").ids
    rng = np.random.default_rng(1)
    np.savez(data / "a.npz", sample_ids=np.array(ids),
             l0=rng.standard_normal((N, 16)).astype(np.float32),
             l1=rng.standard_normal((N, 16)).astype(np.float32))
    np.savez(data / "b.npz", sample_ids=np.array(ids),
             l0=rng.standard_normal((N, 12)).astype(np.float32))
    models = {"a": {"source": f"file:{data / 'a.npz'}", "modality": "vision",
                    "storage_dtype": "float32"},
              "b": {"source": f"file:{data / 'b.npz'}", "modality": "language",
                    "storage_dtype": "float32"}}
    feats = {m: str(r / f"{m}.features.h5") for m in models}
    caches = {m: str(r / f"{m}.cache.h5") for m in models}
    cache_kw = dict(q=0.95, exact=True, normalize=True, topk=[5], cca_dims=[], layers=False,
                    device="cpu")
    for m, spec in models.items():
        embed.run(spec, r / "manifest.json", feats[m], name=m)
        layer_cache.run(feats[m], caches[m], manifest=r / "manifest.json", model=[m], **cache_kw)
    cal = {"n_permutations": 20, "alpha": 0.05, "aggregates": ["max"], "seed": 0,
           "metrics": list(METRICS)}
    pair = str(r / "a__b.pair.h5")
    pair_kw = dict(metrics=METRICS, model_x="a", model_y="b", device="cpu")
    pair_scores.run(caches["a"], caches["b"], pair, calibration=cal, **pair_kw)
    agg_kw = dict(dataset="bench", models=["a", "b"], metrics=list(METRICS))
    alignment = str(r / "alignment.h5")
    aggregate.run([pair], out_h5=alignment, out_tsv=r / "alignment.tsv", **agg_kw)

    def out(name: str) -> str:
        return str(work / "out" / name)

    glove = {"source": "glove_6b_50d", "modality": "language", "batch_size": 32,
             "device": "cpu", "dtype": "float32", "storage_dtype": "float32", "pool": "mean"}
    manifest = str(r / "manifest.json")
    spec = {
        "prepare_dataset": ("prepare_dataset", "run", [dataset, out("manifest.json")], {}),
        "embed (file: source)": ("embed", "run", [models["b"], manifest, out("b.h5")],
                                 {"name": "b"}),
        "embed (glove_6b_50d)": ("embed", "run", [glove, manifest, out("glove.h5")],
                                 {"name": "glove"}),
        "layer_cache": ("layer_cache", "run", [feats["a"], out("a.cache.h5")],
                        {**cache_kw, "manifest": manifest, "model": ["a"]}),
        "pair_scores": ("pair_scores", "run", [caches["a"], caches["b"], out("pair.h5")],
                        {**pair_kw, "calibration": None}),
        "pair_scores (K=20 null)": ("pair_scores", "run", [caches["a"], caches["b"], out("pair.h5")],
                                    {**pair_kw, "calibration": cal}),
        "aggregate": ("aggregate", "run", [[pair]],
                      {**agg_kw, "out_h5": out("al.h5"), "out_tsv": out("al.tsv"),
                       "out_aggregates_tsv": out("agg.tsv"), "pairs": [["a", "b"]]}),
        "sample_size_curve": ("sample_size_curve", "run", [caches, [["a", "b"]], out("ss.tsv")],
                              {"dataset": "bench", "sizes": [16, 32],
                               "metrics": {"mutual_knn": {"topk": 5}}, "n_permutations": 20,
                               "alpha": 0.05, "seed": 0, "device": "cpu"}),
        "plots (heatmaps)": ("plots", "heatmaps",
                             [alignment, {"h": {"metric": "mutual_knn", "calibrated": False}},
                              {"h": [out("h.png")]}],
                             {"modalities": {"a": "vision", "b": "language"}, "features": feats,
                              "dpi": 50}),
        "scorecard": ("scorecard", "run", ["a", [pair]],
                      {"dataset": "bench", "features": feats, "metrics": list(METRICS),
                       "modalities": {"a": "vision", "b": "language"}, "alpha": 0.05,
                       "out_tsv": out("sc.tsv"), "out_png": out("sc.png"), "dpi": 50}),
    }
    jobs = {}
    for i, (name, (module, func, args, kwargs)) in enumerate(spec.items()):
        path = work / f"job{i}.json"
        path.write_text(json.dumps({"module": f"prh.steps.{module}", "func": func,
                                    "older": OLDER.get(f"prh.steps.{module}"),
                                    "args": [str(a) if isinstance(a, Path) else a for a in args],
                                    "kwargs": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in kwargs.items()},
                                    "log": out(f"job{i}.log")}))
        jobs[name] = path
    return jobs


def run_once(argv: list[str], root: Path) -> tuple[float, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    res = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"{' '.join(argv[:3])} failed in {root}:\n{res.stderr[-2000:]}")
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "[]"
    found = json.loads(last) if last.startswith("[") else []
    if found and not Path(found[0]).is_relative_to(root):
        raise SystemExit(f"the job imported {found[0]}, not the prh of {root}")
    return dt, found[1:]


def print_importtime(argv: list[str], root: Path, depth: int = 3, min_s: float = 0.02) -> None:
    """The job's import tree (python -X importtime), to ``depth`` levels and
    only the imports that took at least ``min_s`` including their own imports."""
    res = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=root, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(root)})
    tree = []
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line[len("import time:"):].split("|")
            if cumulative.strip().isdigit():
                level = (len(name) - len(name.lstrip()) - 1) // 2
                tree.append((level, int(cumulative) / 1e6, name.strip()))
    # importtime prints a module after its own imports: reverse for top-down
    for level, secs, name in reversed(tree):
        if level < depth and secs >= min_s:
            print(f"{secs:7.3f} s  {'  ' * level}{name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="another checkout to time side by side")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", help="comma-separated row names to time (default: all)")
    ap.add_argument("--importtime", metavar="ROW",
                    help="instead of timing, list the slowest top-level imports of one row's job "
                         "(python -X importtime, cumulative microseconds)")
    args = ap.parse_args()
    after = Path(__file__).resolve().parents[1]
    roots = {"after": after}
    if args.before:
        roots = {"before": args.before.resolve(), "after": after}
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        work = Path(tmp)
        (work / "out").mkdir()
        rows: dict[str, list[str]] = {k: [sys.executable, "-c", v] for k, v in BASELINES.items()}
        child = work / "child.py"
        child.write_text(CHILD)
        rows.update({k: [sys.executable, str(child), str(p)]
                     for k, p in build_inputs(work).items()})
        if args.importtime:
            print_importtime(rows[args.importtime], after)
            return
        if args.only:
            keep = set(args.only.split(","))
            rows = {k: v for k, v in rows.items() if k in keep}
        times = {(r, v): [] for r in rows for v in roots}
        loaded: dict[tuple[str, str], list[str]] = {}
        for rep in range(args.repeats):
            for r, argv in rows.items():
                # alternate which checkout goes first, so neither always gets the warmer cache
                for v in (list(roots) if rep % 2 == 0 else list(roots)[::-1]):
                    dt, mods = run_once(argv, roots[v])
                    times[(r, v)].append(dt)
                    loaded[(r, v)] = mods
            print(f"round {rep + 1}/{args.repeats} done", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median of {args.repeats} fresh processes, wall seconds; {sys.executable}")
    if args.before:
        print(f"before: {roots['before']}\nafter:  {roots['after']}\n")
        print("| job | before (s) | after (s) | after/before | heavy imports before | heavy imports after |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            b, a = med[(r, "before")], med[(r, "after")]
            print(f"| {r} | {b:.2f} | {a:.2f} | {a / b:.2f} | "
                  f"{', '.join(loaded[(r, 'before')]) or '-'} | "
                  f"{', '.join(loaded[(r, 'after')]) or '-'} |")
    else:
        print("| job | seconds | heavy imports |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r} | {med[(r, 'after')]:.2f} | {', '.join(loaded[(r, 'after')]) or '-'} |")


if __name__ == "__main__":
    main()
