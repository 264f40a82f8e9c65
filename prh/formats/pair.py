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

A block file (``pair_blocks/<i>-<j>.h5``, :func:`prh.config.pair_block_path`;
``alignment.pair_block`` > 1) holds many pairs: attrs ``pair_block`` (the
block's name) and ``pairs`` (JSON list of [x, y]), and one group
``pairs/<x>__<y>`` per pair with exactly the layout above. Readers take
either kind: :func:`read_pairs` yields every pair of a file, :func:`read_pair`
one.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping, Sequence

from ..jobio import atomic_output, h5_member, h5_plain, open_h5

PROVENANCE = ("manifest_sha256", "sample_ids_sha256")
PAIR_FILE = "pair file"
CALIBRATION_FIELDS = ("score", "p_value", "tau", "calibrated", "null_mean", "null_std")


def write_pair(out: str | os.PathLike, *, model_x: str, model_y: str, n_samples: int,
               metrics: Mapping[str, Any], scores: Mapping[tuple[str, str], Any],
               calibration: Mapping[tuple[str, str], Mapping[str, Mapping[str, Any]]],
               seed: int, provenance: Mapping[str, str] | None = None) -> None:
    """Write one pair file atomically. ``scores[(order, metric)]`` is a layer x
    layer matrix; ``calibration[(order, metric)][aggregate]`` holds the
    :data:`CALIBRATION_FIELDS`, ``null``, ``n_permutations`` and ``alpha``."""
    import h5py

    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            _write_group(f, model_x=model_x, model_y=model_y, n_samples=n_samples,
                         metrics=metrics, scores=scores, calibration=calibration,
                         seed=seed, provenance=provenance)


def write_pair_block(out: str | os.PathLike, block: str,
                     pairs: Sequence[Mapping[str, Any]]) -> None:
    """Write a block file atomically: ``pairs`` holds one mapping of
    :func:`write_pair`'s keyword arguments per pair."""
    import h5py

    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["pair_block"] = block
            f.attrs["pairs"] = json.dumps([[p["model_x"], p["model_y"]] for p in pairs])
            for p in pairs:
                _write_group(f.create_group(f"pairs/{p['model_x']}__{p['model_y']}"), **p)


def _write_group(f, *, model_x: str, model_y: str, n_samples: int, metrics: Mapping[str, Any],
                 scores: Mapping[tuple[str, str], Any],
                 calibration: Mapping[tuple[str, str], Mapping[str, Mapping[str, Any]]],
                 seed: int, provenance: Mapping[str, str] | None = None) -> None:
    import numpy as np

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


def read_pair(path: str | os.PathLike, pair: Sequence[str] | None = None) -> dict[str, Any]:
    """A pair file as {'model_x', 'model_y', 'metrics', 'xy': {metric: S}, 'yx': {...},
    'calibration': {(order, metric): {aggregate: {field: value}}}} (empty without
    calibration). From a block file, ``pair`` (x, y, in either order) says which."""
    with _open(path) as f:
        if "pair_block" not in f.attrs:
            return _read_group(f, path)
        if pair is None:
            raise ValueError(f"{path} is a block of pairs; say which pair to read")
        x, y = sorted(pair)
        group = h5_member(f, f"pairs/{x}__{y}", path, PAIR_FILE)
        if group is None:
            raise ValueError(f"{path} holds no pair {x} x {y}; rerun its block job")
        return _read_group(group, f"{path}:{x}__{y}")


def read_pairs(path: str | os.PathLike, model: str | None = None) -> Iterator[dict[str, Any]]:
    """Every pair of a pair or block file (those with ``model`` when given), as
    :func:`read_pair` reads them, in the order the file lists them."""
    with _open(path) as f:
        if "pair_block" not in f.attrs:
            pair = _read_group(f, path)
            if model is None or model in (pair["model_x"], pair["model_y"]):
                yield pair
            return
        for x, y in json.loads(f.attrs["pairs"]):
            if model is None or model in (x, y):
                group = h5_member(f, f"pairs/{x}__{y}", path, PAIR_FILE)
                if group is None:
                    raise ValueError(f"{path} lists pair {x} x {y} but does not hold it; "
                                     "rerun its block job")
                yield _read_group(group, f"{path}:{x}__{y}")


def _open(path: str | os.PathLike):
    """A pair or block file, open; a block file's pairs are checked one by
    one as they are read (a scorecard reads a few of its thousands), a pair
    file's every object here."""
    f = open_h5(path, PAIR_FILE, whole=False)
    try:
        if "pair_block" not in f.attrs:
            h5_plain(f, path, PAIR_FILE)
    except BaseException:
        f.close()
        raise
    return f


def _read_group(f, path) -> dict[str, Any]:
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
