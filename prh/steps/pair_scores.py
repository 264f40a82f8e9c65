"""Step of rule ``pair_scores``: one unordered model pair's layer x layer
scores, and their calibration when the pair is calibrated."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Mapping

log = logging.getLogger(__name__)


def _progress(desc: str):
    """A tqdm wrapper for long loops; a job's stderr is its log file, so the
    bar updates rarely."""
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, mininterval=15, file=sys.stderr)


def run(stats_x: str | os.PathLike, stats_y: str | os.PathLike, out: str | os.PathLike, *,
        metrics: Mapping[str, Mapping[str, Any]], model_x: str, model_y: str, device: str,
        calibration: Mapping[str, Any] | None,
        manifest: str | os.PathLike | None = None) -> None:
    """Write the layer x layer scores of every metric for one unordered model
    pair; asymmetric metrics are scored in both orders.

    ``calibration`` (keys ``n_permutations``, ``alpha``,
    ``aggregates``, ``seed`` and ``metrics``, those calibrated:
    :meth:`prh.config.Config.calibration_params`; None or empty for an
    uncalibrated pair) adds each aggregate's permutation-null calibration;
    with ``blocks`` (a manifest column) set, permutations exchange whole
    blocks of samples (:func:`prh.calibration.block_permutations`).
    """
    from ..alignment import sweep
    from ..calibration import block_permutations, calibrate_pair
    from ..datasets import sample_blocks
    from ..formats.pair import write_pair
    from ..formats.stats import load_model_stats, read_stats_provenance
    from ..metrics import get_metric, resolve_params

    prov = check_pair_inputs(stats_x, stats_y)
    sx = load_model_stats(stats_x, device=device)
    sy = load_model_stats(stats_y, device=device)
    for name, st in ((model_x, sx), (model_y, sy)):
        for layer in st.constant_layers():
            log.warning("model %s: layer %d is constant (all samples alike); its scores are NaN "
                        "and never its model pair's best", name, layer)
    metrics = {m: dict(p or {}) for m, p in metrics.items()}
    cal = dict(calibration or {})
    scores: dict[tuple[str, str], Any] = {}
    rows: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    # calibration.metrics: the metrics with a null; the others are only scored
    calibrated = {m: p for m, p in metrics.items() if m in cal.get("metrics", metrics)}
    if cal and calibrated:
        permutations = None
        if cal.get("blocks"):
            ids = read_stats_provenance(stats_x)["sample_ids"] or None
            permutations = block_permutations(sample_blocks(manifest, cal["blocks"], ids))
        t0 = time.perf_counter()
        result = calibrate_pair(sx, sy, calibrated, aggregates=list(cal["aggregates"]),
                                n_permutations=cal["n_permutations"],
                                alpha=cal["alpha"], seed=cal["seed"], both_orders=True,
                                progress=_progress(f"{model_x} vs {model_y}"),
                                permutations=permutations)
        log.info("calibrated %s vs %s in %.1f s", model_x, model_y, time.perf_counter() - t0)
        for key, (S, per) in result.items():
            scores[key], rows[key] = S, per
    for name, params in metrics.items():
        if cal and name in calibrated:
            continue
        p = resolve_params(name, params, n=sx.n)
        scores[("xy", name)] = sweep(sx, sy, name, **p)
        if not get_metric(name).symmetric:
            scores[("yx", name)] = sweep(sy, sx, name, **p)
    write_pair(out, model_x=model_x, model_y=model_y, n_samples=sx.n, metrics=metrics,
               scores=scores, calibration=rows, seed=int(cal.get("seed", 0)), provenance=prov)


def check_pair_inputs(stats_x: str | os.PathLike, stats_y: str | os.PathLike) -> dict[str, str]:
    """Refuse two stats files computed from different samples (ids in order,
    and manifest hash); returns the provenance the pair file records."""
    from ..formats.stats import read_stats_provenance
    from ..provenance import IDS, MANIFEST, ProvenanceError, check_same_samples

    px, py = read_stats_provenance(stats_x), read_stats_provenance(stats_y)
    if px["sample_ids"] or py["sample_ids"]:
        check_same_samples(px["sample_ids"], stats_x, py["sample_ids"], stats_y)
    if px[MANIFEST] != py[MANIFEST]:
        raise ProvenanceError(f"{stats_x} and {stats_y} come from different manifests "
                              f"({px[MANIFEST][:12] or '<none>'} vs {py[MANIFEST][:12] or '<none>'}); "
                              "rerun the workflow")
    return {MANIFEST: px[MANIFEST], IDS: px[IDS]}
