"""The alignment steps of the workflow: per-model stats, pair scores, aggregate.

Pair file (``pairs/<x>__<y>.h5``, one unordered model pair):
- attrs ``model_x``, ``model_y``, ``n_samples``, ``metrics`` (JSON: name -> params)
- ``xy/<metric>``: (Lx, Ly) float64, S[i, j] = metric(X layer i, Y layer j)
- ``yx/<metric>``: (Ly, Lx), only for asymmetric metrics (metric(Y, X))

Alignment file (``alignment.h5``, one dataset):
- attrs ``dataset``, ``models`` (row/column order), ``metrics``
- ``<metric>/score`` (M, M) float64: best layer-pair score with the row model
  as X and the column model as Y; NaN where not computed (the diagonal, or
  same-modality pairs when only cross-modal pairs are configured)
- ``<metric>/layer_x``, ``<metric>/layer_y`` (M, M) int64: where the best
  score is reached (-1 where not computed); group attrs ``params`` (JSON),
  ``symmetric``, ``max_score``

Tidy TSV (``alignment.tsv``): columns :data:`TSV_COLUMNS`; symmetric metrics
have one row per unordered pair, asymmetric ones one row per ordered pair.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Mapping, Sequence

from .jobio import atomic_output

TSV_COLUMNS = ("dataset", "model_x", "model_y", "metric", "score", "layer_x", "layer_y")


def model_stats(features: str | os.PathLike, out: str | os.PathLike, *, q: float,
                exact: bool, normalize: bool, topk: Sequence[int],
                cca_dims: Sequence[int], device: str | None = None) -> None:
    """Preprocess one model's features and write its per-layer work (stats file)."""
    from .alignment import ModelStats
    from .stats_io import save_model_stats
    from .storage import read_features

    layers = read_features(features)
    stats = ModelStats.from_features(layers, name=str(features), q=q, exact=exact,
                                     normalize=normalize, device=device)
    save_model_stats(stats, out, topk=list(topk), cca_dims=list(cca_dims),
                     attrs={"q": q, "exact": exact, "normalize": normalize,
                            "features": str(features)})


def pair_scores(stats_x: str | os.PathLike, stats_y: str | os.PathLike,
                out: str | os.PathLike, *, metrics: Mapping[str, Mapping[str, Any]],
                model_x: str, model_y: str, device: str | None = None) -> None:
    """Write the layer x layer scores of every metric for one unordered model
    pair; asymmetric metrics are scored in both orders."""
    import h5py

    from .alignment import sweep
    from .metrics import get_metric
    from .stats_io import load_model_stats

    sx = load_model_stats(stats_x, device=device)
    sy = load_model_stats(stats_y, device=device)
    results: dict[str, dict[str, Any]] = {"xy": {}, "yx": {}}
    for name, params in metrics.items():
        params = dict(params or {})
        results["xy"][name] = sweep(sx, sy, name, **params)
        if not get_metric(name).symmetric:
            results["yx"][name] = sweep(sy, sx, name, **params)
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["model_x"] = model_x
            f.attrs["model_y"] = model_y
            f.attrs["n_samples"] = sx.n
            f.attrs["metrics"] = json.dumps({m: dict(p or {}) for m, p in metrics.items()})
            for order, scores in results.items():
                for name, s in scores.items():
                    f.create_dataset(f"{order}/{name}", data=s)


def read_pair(path: str | os.PathLike) -> dict[str, Any]:
    """A pair file as {'model_x', 'model_y', 'metrics', 'xy': {metric: S}, 'yx': {...}}."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"cannot read pair file {path}: {err}") from None
    with f:
        if "xy" not in f:
            raise ValueError(f"{path} is not a prh pair file (no 'xy' group)")
        return {
            "model_x": str(f.attrs["model_x"]),
            "model_y": str(f.attrs["model_y"]),
            "metrics": json.loads(f.attrs["metrics"]),
            "xy": {k: v[...] for k, v in f["xy"].items()},
            "yx": {k: v[...] for k, v in f.get("yx", {}).items()},
        }


def aggregate(pair_paths: Sequence[str | os.PathLike], *, dataset: str,
              models: Sequence[str], metrics: Sequence[str],
              out_h5: str | os.PathLike, out_tsv: str | os.PathLike) -> None:
    """Model x model matrices of each metric's best layer pair (HDF5) and a tidy TSV.

    Symmetric metrics have one TSV row per unordered pair and a mirrored matrix;
    asymmetric metrics one row per ordered pair.
    """
    import h5py
    import numpy as np

    from .alignment import best_layer_pair
    from .metrics import get_metric

    index = {m: i for i, m in enumerate(models)}
    size = len(models)
    score = {m: np.full((size, size), np.nan) for m in metrics}
    lx = {m: np.full((size, size), -1, dtype=np.int64) for m in metrics}
    ly = {m: np.full((size, size), -1, dtype=np.int64) for m in metrics}
    params: dict[str, Any] = {}
    rows = []
    for path in pair_paths:
        pair = read_pair(path)
        x, y = pair["model_x"], pair["model_y"]
        for m in (x, y):
            if m not in index:
                raise ValueError(f"{path}: model {m!r} is not among the configured models")
        for metric in metrics:
            if metric not in pair["xy"]:
                raise ValueError(f"{path}: no scores for metric {metric!r}; rerun its pair job")
            params.setdefault(metric, pair["metrics"].get(metric, {}))
            symmetric = get_metric(metric).symmetric
            orders = [(x, y, pair["xy"][metric])]
            if not symmetric:
                orders.append((y, x, pair["yx"][metric]))
            for a, b, s in orders:
                best, (i, j) = best_layer_pair(s)
                ia, ib = index[a], index[b]
                score[metric][ia, ib], lx[metric][ia, ib], ly[metric][ia, ib] = best, i, j
                if symmetric:
                    score[metric][ib, ia], lx[metric][ib, ia], ly[metric][ib, ia] = best, j, i
                rows.append((dataset, a, b, metric, best, i, j))
    with atomic_output(out_h5) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["dataset"] = dataset
            f.attrs["models"] = list(models)
            f.attrs["metrics"] = list(metrics)
            for metric in metrics:
                info = get_metric(metric)
                g = f.create_group(metric)
                g.create_dataset("score", data=score[metric])
                g.create_dataset("layer_x", data=lx[metric])
                g.create_dataset("layer_y", data=ly[metric])
                p = params.get(metric, {})
                g.attrs["params"] = json.dumps(p)
                g.attrs["symmetric"] = info.symmetric
                g.attrs["max_score"] = info.max_score(**p)
    rows.sort(key=lambda r: (metrics.index(r[3]), index[r[1]], index[r[2]]))
    with atomic_output(out_tsv) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(TSV_COLUMNS)
            for d, a, b, metric, best, i, j in rows:
                w.writerow((d, a, b, metric, f"{best:.6g}", i, j))


def read_alignment(path: str | os.PathLike) -> dict[str, Any]:
    """alignment.h5 as {'dataset', 'models', 'metrics': {metric: {'score', 'layer_x',
    'layer_y', 'params', 'symmetric', 'max_score'}}}."""
    import h5py

    with h5py.File(path, "r") as f:
        out = {"dataset": str(f.attrs["dataset"]),
               "models": [str(m) for m in f.attrs["models"]], "metrics": {}}
        for metric in f.attrs["metrics"]:
            g = f[str(metric)]
            out["metrics"][str(metric)] = {
                "score": g["score"][...], "layer_x": g["layer_x"][...],
                "layer_y": g["layer_y"][...], "params": json.loads(g.attrs["params"]),
                "symmetric": bool(g.attrs["symmetric"]),
                "max_score": float(g.attrs["max_score"]),
            }
    return out
