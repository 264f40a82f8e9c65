"""Running the Snakemake workflow in a copy of the repository.

Shared by the workflow tests (through the ``workflow_copy`` and ``tiny_run``
fixtures of ``conftest.py``) and ``benchmarks/bench_dag.py``, which imports it
by path; it imports nothing from ``prh`` so that the copy, not this checkout,
is what runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from snakemake_fork import ForkedSnakemake

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOW_FILES = ["Snakefile", "rules", "scripts", "envs", "config", "profiles", "prh", "report"]

# The tiny run: emoji, 48 samples, three cheap models, three metrics, a small
# calibration; every workflow stage runs on it in a few minutes.
TINY = {
    "datasets": {"emoji": {"source": "emoji", "n_samples": 48}},
    "models": {
        "efficientnet_lite0": {"source": "efficientnet_lite0", "modality": "vision"},
        "minilm_l6": {"source": "minilm_l6", "modality": "language"},
        "glove_6b_50d": {"source": "glove_6b_50d", "modality": "language"},
    },
    "embedding": {"batch_size": 16, "threads": 1},
    "alignment": {"threads": 1},
    "metrics": {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 5}, "cka": {}},
    "calibration": {"n_permutations": 20, "aggregates": ["max", "mean"],
                    "sample_sizes": [24, 48], "sample_size_metrics": ["mutual_knn"],
                    "sample_size_permutations": 20},
}


def copy_workflow(dest: Path, config: dict | None = None) -> Path:
    """The workflow's files copied into ``dest`` with ``config`` (default: the
    tiny run's) as its config.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    write_config(dest, config if config is not None else TINY)
    return dest


def copy_run(run: Path, dest: Path) -> Path:
    """A finished run copied to ``dest``, times and links kept: it plans
    nothing there (test_relocatable.py), so a test can change the copy."""
    shutil.copytree(run, dest, symlinks=True, copy_function=shutil.copy2)
    return dest


def write_config(wd: Path, config: dict, name: str = "config.yaml") -> Path:
    path = wd / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


_SNAKEMAKE = ForkedSnakemake(BIN / "python")
atexit.register(_SNAKEMAKE.close)


def smk(wd: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """``snakemake *args`` in ``wd``, offline; forked from a process that
    imported Snakemake once (:mod:`snakemake_fork`), as the command runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    res = _SNAKEMAKE.run(list(args), wd, env, timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def pending(wd: Path, *args: str) -> set[str]:
    """Output files Snakemake would (re)create, from its --summary plan column."""
    res = smk(wd, "--summary", *args)
    lines = [ln.split("\t") for ln in res.stdout.splitlines() if "\t" in ln]
    header, rows = lines[0], lines[1:]
    assert header[0] == "output_file" and header[-1] == "plan", header
    return {r[0] for r in rows if r[-1] == "update pending"}


def planned_outputs(res: subprocess.CompletedProcess) -> set[str]:
    """First output file of every job a dry run lists."""
    out = set()
    for line in (res.stdout + res.stderr).splitlines():
        s = line.strip()
        if s.startswith("output: "):
            out.add(s[len("output: "):].split(", ")[0])
    return out
