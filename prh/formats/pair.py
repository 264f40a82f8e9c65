"""The pair file: one unordered model pair's layer x layer scores.

Layout (``pairs/<x>__<y>.h5``):

- attrs ``model_x``, ``model_y``, ``n_samples``, ``metrics`` (JSON: name -> params),
  ``manifest_sha256``, ``sample_ids_sha256`` (provenance, :mod:`prh.provenance`)
- ``xy/<metric>``: (Lx, Ly) float64, S[i, j] = metric(X layer i, Y layer j)
- ``yx/<metric>``: (Ly, Lx), only for asymmetric metrics (metric(Y, X))
- ``calibration/<order>/<metric>`` (when calibration is on; see
  :mod:`prh.calibration`): attrs ``aggregates`` (names, A), ``n_permutations``,
  ``alpha``, ``seed``; datasets :data:`CALIBRATION_FIELDS`, each
  (A,) float64, one value per aggregate, and ``null`` (A, K), the permutation
  null's aggregate values
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from ..jobio import atomic_output, open_h5

PROVENANCE = ("manifest_sha256", "sample_ids_sha256")
CALIBRATION_FIELDS = ("score", "p_value", "tau", "calibrated", "null_mean", "null_std")


def write_pair(out: str | os.PathLike, *, model_x: str, model_y: str, n_samples: int,
               metrics: Mapping[str, Any], scores: Mapping[tuple[str, str], Any],
               calibration: Mapping[tuple[str, str], Mapping[str, Mapping[str, Any]]],
               seed: int, provenance: Mapping[str, str] | None = None) -> None:
    """Write one pair file atomically. ``scores[(order, metric)]`` is a layer x
    layer matrix; ``calibration[(order, metric)][aggregate]`` holds the
    :data:`CALIBRATION_FIELDS`, ``null``, ``n_permutations`` and ``alpha``."""
    import h5py
    import numpy as np

    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["model_x"] = model_x
            f.attrs["model_y"] = model_y
            f.attrs["n_samples"] = n_samples
            f.attrs["metrics"] = json.dumps(metrics)
            for key, value in (provenance or {}).items():
                f.attrs[key] = str(value)
            for (order, name), S in scores.items():
                f.create_dataset(f"{order}/{name}", data=S)
            for (order, name), per in calibration.items():
                g = f.create_group(f"calibration/{order}/{name}")
                hows = list(per)
                g.attrs["aggregates"] = hows
                for key in ("n_permutations", "alpha"):
                    g.attrs[key] = per[hows[0]][key]
                g.attrs["seed"] = int(seed)
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
                        "n_permutations": int(g.attrs["n_permutations"])}
                    for a, h in enumerate(hows)}
        return {
            "model_x": str(f.attrs["model_x"]),
            "model_y": str(f.attrs["model_y"]),
            "metrics": json.loads(f.attrs["metrics"]),
            "xy": {k: v[...] for k, v in f["xy"].items()},
            "yx": {k: v[...] for k, v in f.get("yx", {}).items()},
            "calibration": calibration,
            "provenance": {k: str(f.attrs.get(k, "")) for k in PROVENANCE},
        }
