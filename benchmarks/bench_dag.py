"""How the workflow's DAG scales with the number of models: ``snakemake -n``
(dry run) time and peak memory at M models, with one job per model pair and
with pair blocks (``alignment.pair_block``), side by side in one run.

Run by hand (not part of the tests)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dag.py            # M = 100, 200, 1000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_dag.py --models 100 --blocks 1 25

Each run copies the workflow into a temporary folder and writes a config of
M synthetic ``file:`` models (alternately vision and language, each with its
own features file: a dry run needs only that the files exist, so they are
empty) with the default config's metrics, calibration and figures, and
``alignment.pairs: all``. Time is wall time, memory the peak resident set
of the snakemake process (``/usr/bin/time -v``).

``--run M --blocks B`` instead runs the workflow for real on M tiny
synthetic models (emoji, ``--n-samples``, two cheap metrics): it prepares
the manifest, writes each model's features (a shared latent plus
model-specific noise, so that scores vary), and runs to the aggregate.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from workflow_helpers import BIN, copy_workflow, write_config  # noqa: E402  (shared with the tests)


def model_name(i: int) -> str:
    return f"m{i:04d}"


def zoo(m: int) -> dict[str, dict]:
    return {model_name(i): {"source": f"file:feats/{model_name(i)}.npz",
                            "modality": ("vision", "language")[i % 2]} for i in range(m)}


def dry_run_config(m: int, block: int) -> dict:
    """The default config (config.yaml) with M synthetic models and all pairs."""
    with open(REPO / "config.yaml") as fh:
        cfg = yaml.safe_load(fh)
    cfg["models"] = zoo(m)
    cfg.setdefault("alignment", {}).update(pairs="all", pair_block=block)
    # cross_modal layer figures of M/2 x M/2 pairs exceed prh.config.MAX_LAYER_FIGURE_PAIRS
    cfg.setdefault("plots", {})["layer_pairs"] = "none"
    # auto comparisons of M/2 x M/2 models grow as M^3 (prh.config.MAX_AUTO_COMPARISONS)
    cfg.setdefault("calibration", {})["comparisons"] = "none"
    return cfg


def snakemake(wd: Path, *args: str, limit: float | None = None,
              mem_gb: float | None = None) -> tuple[float, float, str, str | None]:
    """(seconds, peak MB, output, why it was stopped or None) of one snakemake
    call in ``wd``, stopped after ``limit`` seconds or at ``mem_gb`` GB of
    address space (the peak is then the peak until then: wait4 reports the
    largest resident set of the process tree). Snakemake ignores SIGINT while
    it builds the DAG, hence the KILL 10 s later."""
    import resource

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    stop = ["timeout", "-s", "INT", "-k", "10", str(int(limit))] if limit else []
    cmd = ["/usr/bin/time", "-v", *stop, str(BIN / "snakemake"), *args]

    def cap():
        if mem_gb:
            size = int(mem_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=wd, env=env, text=True, capture_output=True, preexec_fn=cap)
    seconds = time.perf_counter() - t0
    out = res.stdout + res.stderr
    why = None
    if res.returncode != 0:
        if limit and seconds >= limit:
            why = "time"
        elif ("MemoryError" in out or "Cannot allocate memory" in out
              # at the address-space cap CPython can also fail as a bare SystemError
              or (mem_gb and "SystemError" in out)):
            why = "memory"
        else:
            raise SystemExit(f"snakemake {' '.join(args)} failed in {wd}:\n{out[-4000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    return seconds, int(peak.group(1)) / 1024 if peak else float("nan"), out, why


def job_counts(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[A-Za-z_]\w*", parts[0]):
            continue  # the job stats table's rows only
        if parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            counts["total"] = int(parts[1])
    return counts


def bench_dry_runs(models: list[int], blocks: list[int], root: Path, limit: float,
                   mem_gb: float) -> list[dict]:
    wd = copy_workflow(root / "wf")
    (wd / "feats").mkdir()
    rows = []
    for m in models:
        for i in range(m):
            (wd / "feats" / f"{model_name(i)}.npz").touch()
        for b in blocks:
            write_config(wd, dry_run_config(m, b))
            seconds, mb, out, why = snakemake(wd, "-n", "--quiet", "rules", limit=limit,
                                              mem_gb=mem_gb)
            counts = job_counts(out)
            pair_jobs = counts.get("pair_scores", 0) + counts.get("pair_block", 0)
            row = {"M": m, "pair_block": b, "pairs": m * (m - 1) // 2,
                   "pair_jobs": "?" if why else pair_jobs,
                   "jobs": "?" if why else counts.get("total", 0),
                   "seconds": f"{seconds:.1f}" + (f" (stopped: {why} limit)" if why else ""),
                   "peak_mb": (">= " if why else "") + f"{mb:.0f}"}
            rows.append(row)
            print(f"M={m:5d} pair_block={b:3d}: {row['pair_jobs']} pair jobs, "
                  f"{row['jobs']} jobs, {row['seconds']} s, {row['peak_mb']} MB", flush=True)
    return rows


def run_config(m: int, block: int, n: int) -> dict:
    """M tiny synthetic models on n emoji, two cheap metrics, no calibration."""
    return {"datasets": {"emoji": {"source": "emoji", "n_samples": n}},
            "models": zoo(m),
            "alignment": {"threads": 1, "pair_block": block},
            "metrics": {"mutual_knn": {"topk": 5}, "cka": {}},
            "plots": {"layer_pairs": "none", "formats": ["png"]}}


def write_features(wd: Path, m: int, seed: int = 0) -> None:
    """Each model: two layers of a shared latent seen through its own random
    map, plus noise whose level varies across models."""
    import json

    import numpy as np

    ids = [s["id"] for s in json.loads((wd / "results/emoji/manifest.json").read_text())["samples"]]
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((len(ids), 8))
    for i in range(m):
        noise = 0.2 + 2.0 * i / m
        layers = {f"layer{k}": (latent @ rng.standard_normal((8, 16))
                                + noise * rng.standard_normal((len(ids), 16))).astype(np.float32)
                  for k in range(2)}
        np.savez(wd / "feats" / f"{model_name(i)}.npz", sample_ids=np.array(ids), **layers)


def bench_run(m: int, block: int, n: int, root: Path) -> None:
    wd = copy_workflow(root / "run", run_config(m, block, n))
    (wd / "feats").mkdir()
    for i in range(m):
        (wd / "feats" / f"{model_name(i)}.npz").touch()
    snakemake(wd, "results/emoji/manifest.json")
    write_features(wd, m)
    seconds, mb, out, _ = snakemake(wd)
    counts = job_counts(out)
    print(f"end to end, M={m}, pair_block={block}, n_samples={n}: {seconds:.0f} s, "
          f"{counts.get('total', '?')} jobs ({counts}), snakemake peak {mb:.0f} MB")
    tsv = (wd / "results/emoji/alignment.tsv").read_text().splitlines()
    print(f"alignment.tsv: {len(tsv) - 1} rows (want {m * (m - 1) // 2 * 2})")


def print_table(rows: list[dict]) -> None:
    print("\n| M | pair_block | pairs | pair jobs | all jobs | dry run (s) | peak memory (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['M']} | {r['pair_block']} | {r['pairs']} | {r['pair_jobs']} | {r['jobs']} "
              f"| {r['seconds']} | {r['peak_mb']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, nargs="+", default=[100, 200, 1000])
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 50],
                    help="alignment.pair_block values to compare (1: one job per pair)")
    ap.add_argument("--limit", type=float, default=300,
                    help="stop a dry run after this many seconds (M=1000 without blocks "
                         "plans 500,000 pair jobs)")
    ap.add_argument("--mem-gb", type=float, default=6,
                    help="stop a dry run at this much address space (GB)")
    ap.add_argument("--run", type=int, metavar="M",
                    help="run the workflow for real on M synthetic models (first --blocks value)")
    ap.add_argument("--n-samples", type=int, default=32, help="samples of a --run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workflow copy")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_dag_"))
    try:
        if args.run:
            bench_run(args.run, args.blocks[0], args.n_samples, root)
        else:
            print_table(bench_dry_runs(args.models, args.blocks, root, args.limit, args.mem_gb))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
