"""Step of rule ``statistics``: the sampling noise of the calibrated scores.

One set of resamples without replacement per interval scheme
(:func:`prh.calibration.pair_replicates`: every model resampled once per
index set, every calibrated pair re-scored on it) gives all three tables of
:mod:`prh.formats.statistics`: each score's interval, the paired comparisons
the config asks for, and the trend of alignment with competence.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)


def run(caches: Mapping[str, str | os.PathLike], *, dataset: str,
        out_intervals: str | os.PathLike, out_comparisons: str | os.PathLike,
        out_trend: str | os.PathLike, metrics: Mapping[str, Mapping[str, Any]],
        pairs: Sequence[Sequence[str]], comparisons: Sequence[Sequence[Sequence[str]]],
        trend: bool, aggregates: Sequence[str], method: str, level: float, seed: int,
        blocks: str | None, modalities: Mapping[str, str],
        competence: Mapping[str, Mapping[str, Any]],
        features: Mapping[str, str | os.PathLike] | None = None,
        manifest: str | os.PathLike | None = None, device: str = "cpu") -> None:
    """Write intervals, comparisons and trend tables for ``pairs``.

    ``caches`` / ``features``: model -> file; ``comparisons``: [[a_x, a_y],
    [b_x, b_y]] lists (:meth:`prh.config.Config.comparisons`); ``trend``: test
    alignment against competence for each modality with >= 3 models that have
    one (configured values, 1 - bits per byte, chance for untrained models:
    :func:`prh.competence.resolve_competence`); ``blocks``: a manifest column
    keeping blocks of samples whole in the resamples.
    """
    import numpy as np
    from tqdm import tqdm

    from ..inference.resampling import pair_replicates
    from ..inference.statistics import comparison_rows, interval_rows, trend_rows
    from ..competence import resolve_competence
    from ..calibration_checks import check_resample_blocks
    from ..datasets import sample_blocks
    from ..formats.statistics import write_comparisons, write_intervals, write_trend
    from ..formats.layer_cache import check_same_cache_samples, load_layer_cache
    from ..metric_info import get_metric
    from ..scoring import benjamini_hochberg, saturation

    pairs = [tuple(p) for p in pairs]
    models = [m for m in caches if any(m in p for p in pairs)]
    missing = sorted({m for p in pairs for m in p} - set(caches))
    if missing:
        raise ValueError(f"no layer cache given for model(s) {', '.join(missing)}")
    _, ids = check_same_cache_samples([caches[m] for m in models])
    labels = None
    if blocks:
        if manifest is None:
            raise ValueError(f"calibration.blocks: {blocks} needs the manifest")
        labels = sample_blocks(manifest, blocks, ids or None)
        log.info("blocks: %d samples in %d blocks of manifest column %s", len(labels),
                 len(set(labels)), blocks)
        check_resample_blocks(labels, blocks, metrics, method, seed)
    loaded = {m: load_layer_cache(caches[m], device=device) for m in models}
    t0 = time.perf_counter()
    rep = pair_replicates(loaded, pairs, metrics, method=method, seed=seed,
                          aggregates=aggregates, blocks=labels,
                          progress=lambda it: tqdm(it, desc="resamples", mininterval=15,
                                                   file=sys.stderr))
    log.info("%d pairs x %d metrics re-scored on their resamples in %.1f s (%s)", len(pairs),
             len(metrics), time.perf_counter() - t0,
             ", ".join(f"{m}: {s[0]} x{s[1]}" for m, s in rep.schemes.items()))
    intervals = interval_rows(rep, level=level)
    write_intervals(out_intervals, dataset=dataset,
                    rows=[{**r, "level": level} for r in intervals])
    for metric in metrics:
        sat = saturation(metric, [r["score"] for r in intervals if r["metric"] == metric
                                  and r["order"] != "mean" and r["aggregate"] == aggregates[0]],
                         get_metric(metric).max_score(**metrics[metric]))
        if sat.kind:
            log.warning("%s; its intervals, comparisons and trends say little",
                        sat.note(metrics[metric], len(ids) if ids else None))

    rows = []
    for how in aggregates:
        got = comparison_rows(rep, [(tuple(a), tuple(b)) for a, b in comparisons],
                              aggregate_how=how, level=level)
        for metric in metrics:
            mine = [r for r in got if r["metric"] == metric]
            for r, p in zip(mine, benjamini_hochberg([r["p_value"] for r in mine])):
                rows.append({**r, "p_bh": float(p), "level": level})
    write_comparisons(out_comparisons, dataset=dataset, rows=rows)
    for r in rows:
        if r["aggregate"] == aggregates[0]:
            log.info("%s %s: %s x %s - %s x %s = %.4f [%.4f, %.4f], p = %.3g", r["metric"],
                     r["aggregate"], *r["pair_a"], *r["pair_b"], r["difference"], r["low"],
                     r["high"], r["p_value"])

    trend_out = []
    if trend:
        comp = resolve_competence(models, features=features or {}, configured=competence)
        for side in ("vision", "language"):
            have = sorted((m for m in models if modalities.get(m) == side and m in comp),
                          key=lambda m: (comp[m].value, m))
            partners = [m for m in models if modalities.get(m) not in (side, None)
                        and all((x, m) in pairs or (m, x) in pairs for x in have)]
            if len(have) < 3 or not partners:
                log.info("trend over %s models: %d with a competence and %d partners; a trend "
                         "needs 3 and 1", side, len(have), len(partners))
                continue
            values = [comp[m].value for m in have]
            if np.ptp(values) == 0:
                log.info("trend over %s models: every competence is %g; no trend to test",
                         side, values[0])
                continue
            for how in aggregates:
                for r in trend_rows(rep, have, values, partners, aggregate_how=how,
                                    level=level):
                    trend_out.append({**r, "modality": side, "level": level,
                                      "models": ",".join(have),
                                      "competence": ",".join(f"{v:g}" for v in values)})
    write_trend(out_trend, dataset=dataset, rows=trend_out)
    for r in trend_out:
        if r["aggregate"] == aggregates[0] and r["partner"] == "pooled":
            log.info("trend over %s, %s %s: %s = %.4g [%.4g, %.4g], p = %.3g, p_models = %.3g",
                     r["modality"], r["metric"], r["aggregate"], r["statistic"], r["estimate"],
                     r["low"], r["high"], r["p_value"], r["p_models"])
