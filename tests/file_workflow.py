"""A workflow copy whose models are all ``file:`` features on a folder dataset
(or, :func:`ids_workflow`, on an ``ids`` dataset: the ids alone), both inside
the copy and named by relative paths: a real Snakemake run with calibration,
the sample-size curve and the statistics, no model weights, no download, no
torch model loaded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from workflow_helpers import copy_workflow

DATASET = "toy"
D = f"results/{DATASET}"
IDS = [f"s{i:02d}" for i in range(24)]
MODELS = {"vis_a": "vision", "lang_b": "language", "lang_c": "language"}
CONFIG = {
    "datasets": {DATASET: {"source": "folder", "path": "data/captions.csv", "n_samples": len(IDS)}},
    "models": {m: {"source": f"file:feats/{m}.npz", "modality": mod} for m, mod in MODELS.items()},
    "alignment": {"threads": 1},
    "metrics": {"mutual_knn": {"topk": 5}, "cka": {}},
    "calibration": {"n_permutations": 20, "sample_sizes": [12, 24],
                    "sample_size_metrics": ["mutual_knn"], "sample_size_permutations": 20},
}
# what one model's features reach, besides its own features and layer cache
TABLES = [f"{D}/{n}" for n in ("alignment.h5", "alignment.tsv", "aggregates.tsv", "sample_size.tsv")] + [
    f"{D}/statistics/{t}.tsv" for t in ("intervals", "comparisons", "trend")]


def write_features(wd: Path, model: str, ids=IDS, seed: int = 0) -> Path:
    """Two layers that share a signal across models, so that scores are not
    degenerate; ``seed`` changes the values, ``ids`` their order's labels."""
    rng = np.random.default_rng([seed, list(MODELS).index(model)])
    base = np.random.default_rng(7).standard_normal((len(IDS), 6))
    path = wd / "feats" / f"{model}.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(path, sample_ids=np.array(ids),
             l0=(base + rng.standard_normal(base.shape)).astype(np.float32),
             l1=(base @ rng.standard_normal((6, 4)) + rng.standard_normal((len(IDS), 4))
                 ).astype(np.float32))
    return path


def file_workflow(dest: Path) -> Path:
    wd = copy_workflow(dest, CONFIG)
    data = wd / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = ["id,image,caption"]
    for sid in IDS:
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(data / f"{sid}.png")
        rows.append(f"{sid},{sid}.png,picture {sid}")
    (data / "captions.csv").write_text("\n".join(rows) + "\n")
    for m in MODELS:
        write_features(wd, m)
    return wd


def ids_workflow(dest: Path) -> Path:
    """The same models on ``data/ids.txt``, an ids dataset whose n_samples
    the config counts: no images, no captions."""
    config = {**CONFIG, "datasets": {DATASET: {"source": "ids", "path": "data/ids.txt"}}}
    wd = copy_workflow(dest, config)
    (wd / "data").mkdir()
    (wd / "data" / "ids.txt").write_text("\n".join(IDS) + "\n")
    for m in MODELS:
        write_features(wd, m)
    return wd


def snapshot(wd: Path) -> dict[str, tuple[str, int]]:
    """Every file under results/: relative path -> (sha256, mtime in ns)."""
    out = {}
    for root, _, files in os.walk(wd / "results"):
        for name in files:
            p = Path(root) / name
            out[p.relative_to(wd).as_posix()] = (hashlib.sha256(p.read_bytes()).hexdigest(),
                                                p.stat().st_mtime_ns)
    return out
