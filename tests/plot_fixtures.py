"""Synthetic workflow outputs for the plot tests, written through prh's own
writers (:mod:`prh.formats`), so the plots are tested without running the
alignment stage and the fixtures cannot drift from the real layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from file_factories import write_features
from prh.formats.alignment import write_alignment
from prh.formats.pair import write_pair
from prh.formats.sample_size import write_sample_size_tsv

SYMMETRIC = {"mutual_knn": True, "cycle_knn": False, "lcs_knn": True, "cka": True,
             "cknna": False, "svcca": True, "unbiased_cka": True, "edit_distance_knn": True}
MAX_SCORE = {"lcs_knn": 10.0}
CAL_KEYS = ("calibrated", "p_value", "p_bh", "tau", "null_mean", "null_std")


def features(path: Path, *, modality: str, param_count: int | None, n_layers: int = 4,
             bpb: np.ndarray | None = None, n: int = 8, weights: str | None = None,
             seed: int | None = None, source: str | None = None) -> Path:
    """A features file with attributes, layer names, tiny features and optional
    bpb, ``weights``, ``seed`` and ``model`` (the source, as the embedding
    stage records it) attributes."""
    if bpb is not None:
        n = len(bpb)  # one value per sample
    attrs = {"modality": modality}
    if source is not None:
        attrs["model"] = source
    if weights is not None:
        attrs["weights"] = weights
    if seed is not None:
        attrs["seed"] = seed
    if param_count is not None:
        attrs["param_count"] = param_count
    return write_features(path, [np.zeros((n, 3), dtype=np.float32)] * n_layers,
                          layer_names=[f"blocks.{i}" for i in range(n_layers)], attrs=attrs,
                          bpb=None if bpb is None else np.asarray(bpb, dtype=np.float32))


def alignment(path: Path, models: list[str], metrics: list[str], *, seed: int = 0,
              calibrated: bool = True, nan_pairs: list[tuple[str, str]] = (),
              alpha: float = 0.05, dataset: str = "toy", uncalibrated: list[str] = (),
              uncalibrated_pairs: list[tuple[str, str]] = (),
              null: tuple[float, float] = (0.09, 0.15)) -> dict[str, dict[str, np.ndarray]]:
    """An alignment.h5 with random scores (mirrored for symmetric metrics),
    NaN diagonals, and calibration arrays when ``calibrated``; as the
    aggregate step writes them, NaN calibration for the ``uncalibrated``
    metrics (calibration.metrics leaves them out) and the
    ``uncalibrated_pairs`` (calibration.pairs does); ``null``: the null mean
    and tau as fractions of the metric's top score."""
    rng = np.random.default_rng(seed)
    n = len(models)
    idx = {m: i for i, m in enumerate(models)}
    out, rows = {}, {}
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
            tau = np.full((n, n), null[1] * top)
            tau[np.isnan(s)] = np.nan
            arrays.update(
                calibrated=np.clip((s - tau) / (top - tau), 0, 1), p_value=p,
                p_bh=np.minimum(p * 1.5, 1.0), tau=tau, null_mean=tau * null[0] / null[1],
                null_std=tau * 0.1)
            for key in CAL_KEYS:
                if metric in uncalibrated:
                    arrays[key][:] = np.nan
                for a, b in uncalibrated_pairs:
                    arrays[key][idx[a], idx[b]] = arrays[key][idx[b], idx[a]] = np.nan
        rows[metric] = []
        for i, x in enumerate(models):
            for j, y in enumerate(models):
                if i == j or (sym and j < i) or np.isnan(s[i, j]):
                    continue
                cal = {}
                if calibrated:
                    done = np.isfinite(arrays["p_value"][i, j])
                    cal = {"max": {**{k: float(arrays[k][i, j]) for k in arrays},
                                   "alpha": alpha, "n_permutations": 100 if done else 0}}
                rows[metric].append({"x": x, "y": y, "score": float(s[i, j]), "layer_x": 1,
                                     "layer_y": 1, "cal": cal})
        out[metric] = arrays
    write_alignment(path, dataset=dataset, models=models, rows=rows,
                    aggregates=["max"] if calibrated else [],
                    params={m: ({"topk": 10} if "knn" in m else {}) for m in metrics},
                    symmetric={m: SYMMETRIC.get(m, True) for m in metrics},
                    max_score={m: MAX_SCORE.get(m, 1.0) for m in metrics})
    return out


def pair(path: Path, x: str, y: str, metrics: list[str], *, lx: int = 4, ly: int = 5,
         seed: int = 0) -> Path:
    """A pair file: xy/<metric> (lx, ly) and yx/<metric> for asymmetric metrics."""
    rng = np.random.default_rng(seed)
    scores = {}
    for m in metrics:
        scores[("xy", m)] = rng.uniform(0, 1, (lx, ly))
        if not SYMMETRIC.get(m, True):
            scores[("yx", m)] = rng.uniform(0, 1, (ly, lx))
    write_pair(path, model_x=x, model_y=y, n_samples=8, metrics={m: {} for m in metrics},
               scores=scores, calibration={}, seed=0)
    return path


def sample_size_tsv(path: Path, pairs: list[tuple[str, str]], metrics: list[str],
                    sizes=(16, 32, 64, 128), dataset: str = "toy") -> Path:
    rng = np.random.default_rng(3)
    rows = []
    for x, y in pairs:
        for m in metrics:
            base = rng.uniform(0.2, 0.5)
            for n in sizes:
                null = 2.0 / n
                rows.append({"dataset": dataset, "model_x": x, "model_y": y, "metric": m,
                             "aggregate": "max", "n": n, "score": base - 1 / n,
                             "p_value": 0.01, "tau": null * 2, "calibrated": 0.3,
                             "null_mean": null, "null_std": null / 3, "n_permutations": 100,
                             "alpha": 0.05})
    write_sample_size_tsv(path, rows)
    return path


def svg_text(path: Path) -> str:
    """Every text of an SVG figure (written with svg.fonttype none), lines
    joined by spaces, so a wrapped sentence reads whole."""
    import html
    import re

    svg = Path(path).read_text()
    texts = re.findall(r"<text\b[^>]*>(.*?)</text>", svg, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", t)).strip() for t in texts)
