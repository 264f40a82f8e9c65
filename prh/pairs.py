"""The alignment steps of the workflow: per-model stats, pair scores, aggregate.

Pair file (``pairs/<x>__<y>.h5``, one unordered model pair):
- attrs ``model_x``, ``model_y``, ``n_samples``, ``metrics`` (JSON: name -> params)
- ``xy/<metric>``: (Lx, Ly) float64, S[i, j] = metric(X layer i, Y layer j)
- ``yx/<metric>``: (Ly, Lx), only for asymmetric metrics (metric(Y, X))
- ``calibration/<order>/<metric>`` (when calibration is on; see
  :mod:`prh.calibration`): attrs ``aggregates`` (names, A), ``n_permutations``,
  ``n_boot``, ``alpha``, ``seed``; datasets :data:`CALIBRATION_FIELDS`, each
  (A,) float64, one value per aggregate, and ``null`` (A, K), the permutation
  null's aggregate values

Alignment file (``alignment.h5``, one dataset):
- attrs ``dataset``, ``models`` (row/column order), ``metrics``
- ``<metric>/score`` (M, M) float64: best layer-pair score with the row model
  as X and the column model as Y; NaN where not computed (the diagonal, or
  same-modality pairs when only cross-modal pairs are configured)
- ``<metric>/layer_x``, ``<metric>/layer_y`` (M, M) int64: where the best
  score is reached (-1 where not computed); group attrs ``params`` (JSON),
  ``symmetric``, ``max_score``

  With calibration: ``<metric>/<field>`` (M, M) float64 for each of
  :data:`CALIBRATION_FIELDS` and ``p_bh``, for the ``max`` aggregate (the
  paper's); ``<metric>/aggregates/<aggregate>/<field>`` the same for every
  configured aggregate (``score`` included); group attrs ``alpha``,
  ``n_permutations``, ``n_boot``.

Tidy TSV (``alignment.tsv``): columns :data:`TSV_COLUMNS` (calibration columns
empty when calibration is off); symmetric metrics have one row per unordered
pair, asymmetric ones one row per ordered pair. ``aggregates.tsv``: the same
with an ``aggregate`` column, one row per aggregate (only with calibration).

``p_bh`` are Benjamini-Hochberg adjusted p-values over every row of one metric
and aggregate in the run (all model pairs, both orders for asymmetric
metrics): the family a reader scans for "which pairs align beyond chance".
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
import time
from typing import Any, Mapping, Sequence

from .jobio import atomic_output, open_h5

log = logging.getLogger(__name__)

BASE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "score", "layer_x", "layer_y")
CALIBRATION_FIELDS = ("score", "p_value", "tau", "calibrated", "null_mean", "null_std",
                      "ci_low", "ci_high")
TSV_COLUMNS = BASE_COLUMNS + ("p_value", "calibrated", "null_mean", "null_std", "tau",
                              "ci_low", "ci_high", "p_bh")
AGGREGATE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "aggregate", "score",
                     "p_value", "calibrated", "null_mean", "null_std", "tau", "ci_low",
                     "ci_high", "p_bh")


def model_stats(features: str | os.PathLike, out: str | os.PathLike, *, q: float,
                exact: bool, normalize: bool, topk: Sequence[int],
                cca_dims: Sequence[int], layers: bool = False,
                device: str | None = None) -> None:
    """Preprocess one model's features and write its per-layer work (stats file).

    ``layers`` keeps the preprocessed layers too: SVCCA on bootstrap resamples
    and sample subsets must recompute its bases from them.
    """
    from .alignment import ModelStats
    from .stats_io import save_model_stats
    from .storage import read_features

    feats = read_features(features)
    stats = ModelStats.from_features(feats, name=str(features), q=q, exact=exact,
                                     normalize=normalize, device=device)
    save_model_stats(stats, out, topk=list(topk), cca_dims=list(cca_dims), layers=layers,
                     attrs={"q": q, "exact": exact, "normalize": normalize,
                            "features": str(features)})


def _progress(desc: str):
    """A tqdm wrapper for long loops; a job's stderr is its log file, so the
    bar updates rarely."""
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, mininterval=15, file=sys.stderr)


def pair_scores(stats_x: str | os.PathLike, stats_y: str | os.PathLike,
                out: str | os.PathLike, *, metrics: Mapping[str, Mapping[str, Any]],
                model_x: str, model_y: str, device: str | None = None,
                calibration: Mapping[str, Any] | None = None) -> None:
    """Write the layer x layer scores of every metric for one unordered model
    pair; asymmetric metrics are scored in both orders.

    ``calibration`` (keys ``n_permutations``, ``n_boot``, ``alpha``,
    ``aggregates``, ``seed``; None or ``enabled: false`` for none) adds each
    aggregate's permutation-null calibration and bootstrap interval.
    """
    import h5py
    import numpy as np

    from .alignment import sweep
    from .calibration import calibrate_pair
    from .metrics import get_metric, resolve_params
    from .stats_io import load_model_stats

    sx = load_model_stats(stats_x, device=device)
    sy = load_model_stats(stats_y, device=device)
    metrics = {m: dict(p or {}) for m, p in metrics.items()}
    cal = dict(calibration or {})
    if not cal.pop("enabled", True):
        cal = {}
    scores: dict[tuple[str, str], Any] = {}
    rows: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    if cal:
        aggregates = list(cal.get("aggregates", ["max"]))
        k = cal.get("n_permutations", 200)
        seed = cal.get("seed", 0)
        t0 = time.perf_counter()
        result = calibrate_pair(sx, sy, metrics, aggregates=aggregates, n_permutations=k,
                                n_boot=cal.get("n_boot", 0), alpha=cal.get("alpha", 0.05),
                                seed=seed, both_orders=True,
                                progress=_progress(f"{model_x} vs {model_y}"))
        log.info("calibrated %s vs %s in %.1f s", model_x, model_y, time.perf_counter() - t0)
        for key, (S, per) in result.items():
            scores[key], rows[key] = S, per
    else:
        for name, params in metrics.items():
            p = resolve_params(name, params, n=sx.n)
            scores[("xy", name)] = sweep(sx, sy, name, **p)
            if not get_metric(name).symmetric:
                scores[("yx", name)] = sweep(sy, sx, name, **p)
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["model_x"] = model_x
            f.attrs["model_y"] = model_y
            f.attrs["n_samples"] = sx.n
            f.attrs["metrics"] = json.dumps(metrics)
            for (order, name), S in scores.items():
                f.create_dataset(f"{order}/{name}", data=S)
            for (order, name), per in rows.items():
                g = f.create_group(f"calibration/{order}/{name}")
                hows = list(per)
                g.attrs["aggregates"] = hows
                for key in ("n_permutations", "alpha"):
                    g.attrs[key] = per[hows[0]][key]
                g.attrs["n_boot"] = int(cal.get("n_boot", 0))
                g.attrs["seed"] = int(cal.get("seed", 0))
                for field in CALIBRATION_FIELDS:
                    g.create_dataset(field, data=np.array([per[h][field] for h in hows]))
                g.create_dataset("null", data=np.stack([per[h]["null"] for h in hows]))


def read_pair(path: str | os.PathLike) -> dict[str, Any]:
    """A pair file as {'model_x', 'model_y', 'metrics', 'xy': {metric: S}, 'yx': {...},
    'calibration': {(order, metric): {aggregate: {field: value}}}} (empty without
    calibration)."""
    with open_h5(path, "pair file") as f:
        if "xy" not in f:
            raise ValueError(f"{path} is not a prh pair file (no 'xy' group)")
        calibration = {}
        for order, group in f.get("calibration", {}).items():
            for metric, g in group.items():
                hows = [str(h) for h in g.attrs["aggregates"]]
                fields = {k: g[k][...] for k in CALIBRATION_FIELDS}
                calibration[(order, metric)] = {
                    h: {**{k: float(v[a]) for k, v in fields.items()},
                        "null": g["null"][a] if "null" in g else None,
                        "alpha": float(g.attrs["alpha"]),
                        "n_permutations": int(g.attrs["n_permutations"]),
                        "n_boot": int(g.attrs["n_boot"])}
                    for a, h in enumerate(hows)}
        return {
            "model_x": str(f.attrs["model_x"]),
            "model_y": str(f.attrs["model_y"]),
            "metrics": json.loads(f.attrs["metrics"]),
            "xy": {k: v[...] for k, v in f["xy"].items()},
            "yx": {k: v[...] for k, v in f.get("yx", {}).items()},
            "calibration": calibration,
        }


def _fmt(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def aggregate(pair_paths: Sequence[str | os.PathLike], *, dataset: str,
              models: Sequence[str], metrics: Sequence[str],
              out_h5: str | os.PathLike, out_tsv: str | os.PathLike,
              out_aggregates_tsv: str | os.PathLike | None = None) -> None:
    """Model x model matrices of each metric's best layer pair (HDF5) and a tidy TSV.

    Symmetric metrics have one TSV row per unordered pair and a mirrored matrix;
    asymmetric metrics one row per ordered pair. When the pair files hold
    calibrations, each aggregate's calibration fields fill matrices and
    columns, with Benjamini-Hochberg p-values over the run's pairs.
    """
    import h5py
    import numpy as np

    from .alignment import best_layer_pair
    from .calibration import aggregate as aggregate_scores, benjamini_hochberg
    from .metrics import get_metric

    index = {m: i for i, m in enumerate(models)}
    size = len(models)
    metrics = list(metrics)
    params: dict[str, Any] = {}
    # rows[metric]: one dict per (ordered) pair: names, best layers, calibration
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
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
            orders = [("xy", x, y)]
            if not get_metric(metric).symmetric:
                orders.append(("yx", y, x))
            for order, a, b in orders:
                best, (i, j) = best_layer_pair(pair[order][metric])
                rows[metric].append({"x": a, "y": b, "score": best, "layer_x": i, "layer_y": j,
                                     "S": pair[order][metric],
                                     "cal": pair["calibration"].get((order, metric), {})})
    hows = sorted({h for rs in rows.values() for r in rs for h in r["cal"]},
                  key=lambda h: (h != "max", h))
    blank = dict.fromkeys(CALIBRATION_FIELDS, math.nan)
    for metric, rs in rows.items():
        for how in hows:
            for r in rs:  # pairs left uncalibrated (calibration.pairs) get NaN
                r["cal"].setdefault(how, {**blank, "score": aggregate_scores(r["S"], how),
                                          "alpha": math.nan,
                                          "n_permutations": 0, "n_boot": 0})
            p_bh = benjamini_hochberg([r["cal"][how]["p_value"] for r in rs])
            for r, p in zip(rs, p_bh):
                r["cal"][how]["p_bh"] = float(p)
        rs.sort(key=lambda r: (index[r["x"]], index[r["y"]]))

    def matrix(rs, value, fill=np.nan, dtype=np.float64, symmetric=True):
        out = np.full((size, size), fill, dtype=dtype)
        for r in rs:
            v = value(r)
            out[index[r["x"]], index[r["y"]]] = v
            if symmetric:
                out[index[r["y"]], index[r["x"]]] = v
        return out

    fields = CALIBRATION_FIELDS + ("p_bh",)
    with atomic_output(out_h5) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["dataset"] = dataset
            f.attrs["models"] = list(models)
            f.attrs["metrics"] = metrics
            f.attrs["aggregates"] = hows
            for metric in metrics:
                info = get_metric(metric)
                sym, rs = info.symmetric, rows[metric]
                g = f.create_group(metric)
                g.create_dataset("score", data=matrix(rs, lambda r: r["score"], symmetric=sym))
                lx = matrix(rs, lambda r: r["layer_x"], -1, np.int64, symmetric=False)
                ly = matrix(rs, lambda r: r["layer_y"], -1, np.int64, symmetric=False)
                if sym:  # the mirrored cell has the roles of the two layers swapped
                    lx, ly = np.where(lx >= 0, lx, ly.T), np.where(ly >= 0, ly, lx.T)
                g.create_dataset("layer_x", data=lx)
                g.create_dataset("layer_y", data=ly)
                p = params.get(metric, {})
                g.attrs["params"] = json.dumps(p)
                g.attrs["symmetric"] = sym
                g.attrs["max_score"] = info.max_score(**p)
                done = [r for r in rs if hows and r["cal"][hows[0]]["n_permutations"]]
                if done:
                    first = done[0]["cal"][hows[0]]
                    g.attrs["alpha"] = first["alpha"]
                    g.attrs["n_permutations"] = first["n_permutations"]
                    g.attrs["n_boot"] = first["n_boot"]
                for how in hows:
                    for field in fields:
                        m = matrix(rs, lambda r: r["cal"][how][field], symmetric=sym)
                        g.create_dataset(f"aggregates/{how}/{field}", data=m)
                        if how == "max" and field != "score":
                            g.create_dataset(field, data=m)
    with atomic_output(out_tsv) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(TSV_COLUMNS)
            for metric in metrics:
                for r in rows[metric]:
                    c = r["cal"].get("max", {})
                    w.writerow((dataset, r["x"], r["y"], metric, f"{r['score']:.6g}",
                                r["layer_x"], r["layer_y"],
                                *(_fmt(c.get(k)) for k in TSV_COLUMNS[len(BASE_COLUMNS):])))
    if out_aggregates_tsv is not None:
        with atomic_output(out_aggregates_tsv) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh, delimiter="\t", lineterminator="\n")
                w.writerow(AGGREGATE_COLUMNS)
                for metric in metrics:
                    for how in hows or ["max"]:  # uncalibrated: the max, raw
                        for r in rows[metric]:
                            c = r["cal"].get(how, {"score": r["score"]})
                            w.writerow((dataset, r["x"], r["y"], metric, how,
                                        *(_fmt(c.get(k)) for k in AGGREGATE_COLUMNS[5:])))


def read_alignment(path: str | os.PathLike) -> dict[str, Any]:
    """alignment.h5 as {'dataset', 'models', 'aggregates', 'metrics': {metric: {'score',
    'layer_x', 'layer_y', 'params', 'symmetric', 'max_score', and with calibration
    'alpha', 'n_permutations', 'n_boot', the calibration fields of the max aggregate
    ('p_value', 'calibrated', 'p_bh', ...) and 'aggregates': {aggregate: {field: M x M}}}}}."""
    with open_h5(path, "alignment file") as f:
        out = {"dataset": str(f.attrs["dataset"]),
               "models": [str(m) for m in f.attrs["models"]],
               "aggregates": [str(a) for a in f.attrs.get("aggregates", [])],
               "metrics": {}}
        for metric in f.attrs["metrics"]:
            g = f[str(metric)]
            entry = {
                "score": g["score"][...], "layer_x": g["layer_x"][...],
                "layer_y": g["layer_y"][...], "params": json.loads(g.attrs["params"]),
                "symmetric": bool(g.attrs["symmetric"]),
                "max_score": float(g.attrs["max_score"]),
            }
            for key in ("alpha", "n_permutations", "n_boot"):
                if key in g.attrs:
                    entry[key] = g.attrs[key].item()
            for field in CALIBRATION_FIELDS[1:] + ("p_bh",):
                if field in g:
                    entry[field] = g[field][...]
            if "aggregates" in g:
                entry["aggregates"] = {how: {k: v[...] for k, v in a.items()}
                                       for how, a in g["aggregates"].items()}
            out["metrics"][str(metric)] = entry
    return out
