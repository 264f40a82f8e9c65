"""Synthetic workflow outputs for the plot tests, written with h5py directly
(layouts of prh/pairs.py and prh/storage.py), so the plots are tested without
running the alignment stage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np

SYMMETRIC = {"mutual_knn": True, "cycle_knn": False, "lcs_knn": True, "cka": True,
             "cknna": False, "svcca": True, "unbiased_cka": True, "edit_distance_knn": True}
MAX_SCORE = {"lcs_knn": 10.0}
CAL_KEYS = ("calibrated", "p_value", "p_bh", "tau", "null_mean", "null_std", "ci_low", "ci_high")


def features(path: Path, *, modality: str, param_count: int | None, n_layers: int = 4,
             bpb: np.ndarray | None = None, n: int = 8, weights: str | None = None,
             seed: int | None = None) -> Path:
    """A features file with attributes, layer names, tiny features and optional
    bpb, ``weights`` and ``seed`` attributes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["modality"] = modality
        if weights is not None:
            f.attrs["weights"] = weights
        if seed is not None:
            f.attrs["seed"] = seed
        if param_count is not None:
            f.attrs["param_count"] = param_count
        for i in range(n_layers):
            f.create_dataset(f"feats/{i:03d}", data=np.zeros((n, 3), dtype=np.float32))
        f.create_dataset("layer_names", data=np.array([f"blocks.{i}" for i in range(n_layers)],
                                                      dtype=object),
                         dtype=h5py.string_dtype("utf-8"))
        if bpb is not None:
            f.create_dataset("bpb", data=np.asarray(bpb, dtype=np.float32))
    return path


def alignment(path: Path, models: list[str], metrics: list[str], *, seed: int = 0,
              calibrated: bool = True, nan_pairs: list[tuple[str, str]] = (),
              alpha: float = 0.05, dataset: str = "toy") -> dict[str, dict[str, np.ndarray]]:
    """An alignment.h5 with random scores (mirrored for symmetric metrics),
    NaN diagonals, and calibration arrays when ``calibrated``."""
    rng = np.random.default_rng(seed)
    n = len(models)
    idx = {m: i for i, m in enumerate(models)}
    out = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["dataset"] = dataset
        f.attrs["models"] = list(models)
        f.attrs["metrics"] = list(metrics)
        for metric in metrics:
            sym = SYMMETRIC.get(metric, True)
            top = MAX_SCORE.get(metric, 1.0)
            s = rng.uniform(0.0, 0.6, (n, n)) * top
            if sym:
                s = np.triu(s, 1) + np.triu(s, 1).T
            np.fill_diagonal(s, np.nan)
            for a, b in nan_pairs:
                s[idx[a], idx[b]] = s[idx[b], idx[a]] = np.nan
            arrays = {"score": s}
            if calibrated:
                p = rng.uniform(0.001, 0.2, (n, n))
                if sym:
                    p = np.triu(p, 1) + np.triu(p, 1).T
                p[np.isnan(s)] = np.nan
                tau = np.full((n, n), 0.15 * top)
                tau[np.isnan(s)] = np.nan
                arrays.update(
                    calibrated=np.clip((s - tau) / (top - tau), 0, 1), p_value=p,
                    p_bh=np.minimum(p * 1.5, 1.0), tau=tau, null_mean=tau * 0.6,
                    null_std=tau * 0.1, ci_low=s - 0.05, ci_high=s + 0.05)
            g = f.create_group(metric)
            for k, v in arrays.items():
                g.create_dataset(k, data=v)
            lx = np.where(np.isnan(s), -1, 1).astype(np.int64)
            g.create_dataset("layer_x", data=lx)
            g.create_dataset("layer_y", data=lx)
            g.attrs["params"] = json.dumps({"topk": 10} if "knn" in metric else {})
            g.attrs["symmetric"] = sym
            g.attrs["max_score"] = top
            if calibrated:
                g.attrs["alpha"] = alpha
            out[metric] = arrays
    return out


def pair(path: Path, x: str, y: str, metrics: list[str], *, lx: int = 4, ly: int = 5,
         seed: int = 0) -> Path:
    """A pair file: xy/<metric> (lx, ly) and yx/<metric> for asymmetric metrics."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["model_x"] = x
        f.attrs["model_y"] = y
        f.attrs["n_samples"] = 8
        f.attrs["metrics"] = json.dumps({m: {} for m in metrics})
        for m in metrics:
            f.create_dataset(f"xy/{m}", data=rng.uniform(0, 1, (lx, ly)))
            if not SYMMETRIC.get(m, True):
                f.create_dataset(f"yx/{m}", data=rng.uniform(0, 1, (ly, lx)))
    return path


def sample_size_tsv(path: Path, pairs: list[tuple[str, str]], metrics: list[str],
                    sizes=(16, 32, 64, 128), dataset: str = "toy") -> Path:
    cols = ["dataset", "model_x", "model_y", "metric", "aggregate", "n", "score", "p_value",
            "tau", "calibrated", "null_mean", "null_std", "n_permutations", "alpha"]
    rng = np.random.default_rng(3)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(cols)
        for x, y in pairs:
            for m in metrics:
                base = rng.uniform(0.2, 0.5)
                for n in sizes:
                    null = 2.0 / n
                    w.writerow([dataset, x, y, m, "max", n, f"{base - 1 / n:.4f}", 0.01,
                                f"{null * 2:.4f}", 0.3, f"{null:.4f}", f"{null / 3:.4f}", 100,
                                0.05])
    return path
