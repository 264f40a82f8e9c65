"""Step of rule ``aggregate``: every pair (or block) file of a dataset -> the model x
model matrices (``alignment.h5``) and the tidy tables (``alignment.tsv``,
``aggregates.tsv``); formats in :mod:`prh.formats.alignment` and
:mod:`prh.formats.tables`."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence


def run(pair_paths: Sequence[str | os.PathLike], *, dataset: str, models: Sequence[str],
        metrics: Sequence[str], out_h5: str | os.PathLike, out_tsv: str | os.PathLike,
        out_aggregates_tsv: str | os.PathLike | None = None,
        pairs: Sequence[Sequence[str]] | None = None,
        features: Mapping[str, str | os.PathLike] | None = None) -> None:
    """Each metric's best layer pair per model pair, as matrices and tables.

    Symmetric metrics have one TSV row per unordered pair and a mirrored matrix;
    asymmetric metrics one row per ordered pair. When the pair files hold
    calibrations, each aggregate's calibration fields fill matrices and
    columns, with Benjamini-Hochberg p-values over the run's pairs.

    Every pair file must come from the same samples (manifest and sample-id
    hashes, :mod:`prh.provenance`); with ``pairs`` (the configured (x, y)
    pairs) the files must be exactly those pairs. A layer x layer matrix with
    no finite score (every layer of a model constant) gives a NaN score and
    layers -1. ``features`` (model -> features file) gives the tables' layer
    names; a file whose layer count differs from the pair files' is an error.
    """
    import logging

    import numpy as np

    from ..formats.alignment import write_alignment
    from ..formats.features import read_metadata
    from ..formats.pair import CALIBRATION_FIELDS, read_pairs
    from ..formats.tables import write_aggregates_tsv, write_alignment_tsv
    from ..metric_info import get_metric
    from ..provenance import ProvenanceError, check_same_hashes
    from ..scoring import (aggregate as aggregate_scores, benjamini_hochberg, best_layer_pair,
                           saturation)

    log = logging.getLogger(__name__)

    index = {m: i for i, m in enumerate(models)}
    metrics = list(metrics)
    names = {m: read_metadata(p)["layer_names"] for m, p in (features or {}).items()}
    params: dict[str, Any] = {}
    # rows[metric]: one dict per (ordered) pair: names, best layers, calibration
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
    first: tuple[Any, dict] | None = None
    seen: set[tuple[str, str]] = set()
    for path, pair in ((p, pair) for p in pair_paths for pair in read_pairs(p)):
        x, y = pair["model_x"], pair["model_y"]
        seen.add((x, y))
        if first is None:
            first = (path, pair["provenance"])
        elif pair["provenance"] != first[1]:
            check_same_hashes(first[1], first[0], pair["provenance"], path)
        for m in (x, y):
            if m not in index:
                raise ValueError(f"{path}: model {m!r} is not among the configured models")
        for metric in metrics:
            if metric not in pair["xy"]:
                raise ValueError(f"{path}: no scores for metric {metric!r}; rerun its pair job")
            for m, n in zip((x, y), pair["xy"][metric].shape):
                if names.get(m) and len(names[m]) != n:
                    raise ValueError(f"{features[m]} lists {len(names[m])} layers but {path} "
                                     f"scores {n} layers of {m}; rerun its pair job")
            params.setdefault(metric, pair["metrics"].get(metric, {}))
            orders = [("xy", x, y)]
            if not get_metric(metric).symmetric:
                orders.append(("yx", y, x))
            for order, a, b in orders:
                if np.isnan(pair[order][metric]).all():
                    log.warning("%s: %s of %s vs %s has no finite score (constant layers); "
                                "its score is NaN", path, metric, a, b)
                    best, (i, j) = math.nan, (-1, -1)
                else:
                    best, (i, j) = best_layer_pair(pair[order][metric])
                rows[metric].append({"x": a, "y": b, "score": best, "layer_x": i, "layer_y": j,
                                     "S": pair[order][metric],
                                     "cal": pair["calibration"].get((order, metric), {})})
    if pairs is not None:
        want = {tuple(p) for p in pairs}
        missing, extra = sorted(want - seen), sorted(seen - want)
        if missing or extra:
            raise ProvenanceError(
                f"dataset {dataset}: the pair files are not those of the config "
                f"(missing {', '.join('__'.join(p) for p in missing) or 'none'}; "
                f"extra {', '.join('__'.join(p) for p in extra) or 'none'}); rerun the workflow")
    hows = sorted({h for rs in rows.values() for r in rs for h in r["cal"]},
                  key=lambda h: (h != "max", h))
    blank = dict.fromkeys(CALIBRATION_FIELDS, math.nan)
    for metric, rs in rows.items():
        for how in hows:
            for r in rs:  # pairs left uncalibrated (calibration.pairs) get NaN
                r["cal"].setdefault(how, {**blank, "score": aggregate_scores(r["S"], how),
                                          "alpha": math.nan,
                                          "n_permutations": 0})
            p_bh = benjamini_hochberg([r["cal"][how]["p_value"] for r in rs])
            for r, p in zip(rs, p_bh):
                r["cal"][how]["p_bh"] = float(p)
        rs.sort(key=lambda r: (index[r["x"]], index[r["y"]]))

    max_score = {m: get_metric(m).max_score(**params.get(m, {})) for m in metrics}
    for metric, rs in rows.items():
        sat = saturation(metric, [r["score"] for r in rs], max_score[metric],
                         [r["cal"][hows[0]]["null_mean"] for r in rs] if hows else [])
        if sat.kind:
            log.warning("%s", sat.note(params.get(metric)))
    write_alignment(out_h5, dataset=dataset, models=models, rows=rows, aggregates=hows,
                    params=params, provenance=first[1] if first else {},
                    symmetric={m: get_metric(m).symmetric for m in metrics},
                    max_score=max_score)
    write_alignment_tsv(out_tsv, dataset=dataset, rows=rows, layer_names=names)
    if out_aggregates_tsv is not None:
        write_aggregates_tsv(out_aggregates_tsv, dataset=dataset, rows=rows, aggregates=hows,
                             layer_names=names)
