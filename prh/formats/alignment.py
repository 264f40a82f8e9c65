"""The alignment file: model x model matrices of one dataset (``alignment.h5``).

- attrs ``dataset``, ``models`` (row/column order), ``metrics``, ``aggregates``,
  ``manifest_sha256``, ``sample_ids_sha256`` (provenance of every pair file)
- ``<metric>/score`` (M, M) float64: best layer-pair score with the row model
  as X and the column model as Y; NaN where not computed (the diagonal, or
  same-modality pairs when only cross-modal pairs are configured)
- ``<metric>/layer_x``, ``<metric>/layer_y`` (M, M) int64: where the best
  score is reached (-1 where not computed); group attrs ``params`` (JSON),
  ``symmetric``, ``max_score``

  With calibration: ``<metric>/<field>`` (M, M) float64 for each of
  :data:`prh.formats.pair.CALIBRATION_FIELDS` and ``p_bh``, for the ``max``
  aggregate (the paper's); ``<metric>/aggregates/<aggregate>/<field>`` the
  same for every configured aggregate (``score`` included); group attrs
  ``alpha``, ``n_permutations``.

Rows (what :func:`write_alignment` takes, one list per metric): dicts with
``x``, ``y`` (model names), ``score``, ``layer_x``, ``layer_y`` and ``cal``
({aggregate: {field: value}}), as built by :mod:`prh.steps.aggregate`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

from ..jobio import atomic_output, open_h5
from .pair import CALIBRATION_FIELDS, PROVENANCE

FIELDS = CALIBRATION_FIELDS + ("p_bh",)


def write_alignment(out: str | os.PathLike, *, dataset: str, models: Sequence[str],
                    rows: Mapping[str, Sequence[Mapping[str, Any]]],
                    aggregates: Sequence[str], params: Mapping[str, Any],
                    symmetric: Mapping[str, bool], max_score: Mapping[str, float],
                    provenance: Mapping[str, str] | None = None) -> None:
    """Write ``alignment.h5`` atomically; symmetric metrics get mirrored matrices."""
    import h5py
    import numpy as np

    index = {m: i for i, m in enumerate(models)}
    size = len(models)
    hows = list(aggregates)

    def matrix(rs, value, fill=np.nan, dtype=np.float64, symmetric=True):
        out = np.full((size, size), fill, dtype=dtype)
        for r in rs:
            v = value(r)
            out[index[r["x"]], index[r["y"]]] = v
            if symmetric:
                out[index[r["y"]], index[r["x"]]] = v
        return out

    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["dataset"] = dataset
            f.attrs["models"] = list(models)
            f.attrs["metrics"] = list(rows)
            f.attrs["aggregates"] = hows
            for key, value in (provenance or {}).items():
                f.attrs[key] = str(value)
            for metric, rs in rows.items():
                sym = symmetric[metric]
                g = f.create_group(metric)
                g.create_dataset("score", data=matrix(rs, lambda r: r["score"], symmetric=sym))
                lx = matrix(rs, lambda r: r["layer_x"], -1, np.int64, symmetric=False)
                ly = matrix(rs, lambda r: r["layer_y"], -1, np.int64, symmetric=False)
                if sym:  # the mirrored cell has the roles of the two layers swapped
                    lx, ly = np.where(lx >= 0, lx, ly.T), np.where(ly >= 0, ly, lx.T)
                g.create_dataset("layer_x", data=lx)
                g.create_dataset("layer_y", data=ly)
                g.attrs["params"] = json.dumps(params.get(metric, {}))
                g.attrs["symmetric"] = sym
                g.attrs["max_score"] = max_score[metric]
                done = [r for r in rs if hows and r["cal"][hows[0]]["n_permutations"]]
                if done:
                    first = done[0]["cal"][hows[0]]
                    g.attrs["alpha"] = first["alpha"]
                    g.attrs["n_permutations"] = first["n_permutations"]
                for how in hows:
                    for field in FIELDS:
                        m = matrix(rs, lambda r: r["cal"][how][field], symmetric=sym)
                        g.create_dataset(f"aggregates/{how}/{field}", data=m)
                        if how == "max" and field != "score":
                            g.create_dataset(field, data=m)


def read_alignment(path: str | os.PathLike) -> dict[str, Any]:
    """``alignment.h5`` as {'dataset', 'models', 'aggregates', 'metrics': {metric:
    {'score', 'layer_x', 'layer_y', 'params', 'symmetric', 'max_score', and with
    calibration 'alpha', 'n_permutations', the calibration fields of the
    max aggregate ('p_value', 'calibrated', 'p_bh', ...) and 'aggregates':
    {aggregate: {field: M x M}}}}}. A file that is not one, or whose matrices do
    not match its model list, is a one-line ValueError naming it."""
    import numpy as np

    with open_h5(path, "alignment file") as f:
        try:
            out = {"dataset": str(f.attrs["dataset"]),
                   "models": [str(m) for m in f.attrs["models"]],
                   "aggregates": [str(a) for a in f.attrs.get("aggregates", [])],
                   "provenance": {k: str(f.attrs.get(k, "")) for k in PROVENANCE},
                   "metrics": {}}
            for metric in f.attrs["metrics"]:
                g = f[str(metric)]
                entry = {
                    "score": g["score"][...], "layer_x": g["layer_x"][...],
                    "layer_y": g["layer_y"][...], "params": json.loads(g.attrs["params"]),
                    "symmetric": bool(g.attrs["symmetric"]),
                    "max_score": float(g.attrs["max_score"]),
                }
                for key in ("alpha", "n_permutations"):
                    if key in g.attrs:
                        entry[key] = g.attrs[key].item()
                for field in FIELDS[1:]:
                    if field in g:
                        entry[field] = g[field][...]
                if "aggregates" in g:
                    entry["aggregates"] = {how: {k: v[...] for k, v in a.items()}
                                           for how, a in g["aggregates"].items()}
                out["metrics"][str(metric)] = entry
        except KeyError as err:
            raise ValueError(f"cannot read alignment file {path}: {err}") from None
    n = len(out["models"])
    for metric, m in out["metrics"].items():
        for key, value in m.items():
            if isinstance(value, np.ndarray) and value.shape != (n, n):
                raise ValueError(f"{path}: {metric}/{key} has shape {value.shape}, "
                                 f"expected ({n}, {n}) for {n} models")
    return out
