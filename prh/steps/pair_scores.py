"""Steps of rules ``pair_scores`` and ``pair_block``: one unordered model
pair's layer x layer scores, and their calibration when the pair is
calibrated; or those of a block of pairs, into one file."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)


def _progress(desc: str):
    """A tqdm wrapper for long loops; a job's stderr is its log file, so the
    bar updates rarely."""
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, mininterval=15, file=sys.stderr)


def run(cache_x: str | os.PathLike, cache_y: str | os.PathLike, out: str | os.PathLike, *,
        metrics: Mapping[str, Mapping[str, Any]], model_x: str, model_y: str, device: str,
        calibration: Mapping[str, Any] | None,
        manifest: str | os.PathLike | None = None) -> None:
    """Write the layer x layer scores of every metric for one unordered model
    pair; asymmetric metrics are scored in both orders.

    ``calibration`` (keys ``n_permutations``, ``alpha``, ``aggregates``,
    ``seed``, ``blocks`` and ``metrics``, those calibrated:
    :meth:`prh.config.Config.calibration_params`; None or empty for an
    uncalibrated pair) adds each aggregate's permutation-null calibration;
    with ``blocks`` (a column of ``manifest``) set, permutations exchange
    whole blocks of samples (:func:`prh.calibration.block_permutations`).
    """
    from ..formats.pair import write_pair
    from ..formats.layer_cache import check_same_cache_samples

    prov, ids = check_same_cache_samples([cache_x, cache_y])
    sx = _load(cache_x, model_x, device)
    sy = _load(cache_y, model_y, device)
    write_pair(out, **score_pair(sx, sy, metrics=metrics, model_x=model_x, model_y=model_y,
                                 calibration=calibration, provenance=prov,
                                 permutations=_permutations(calibration, manifest, ids)))


def run_block(caches: Mapping[str, str | os.PathLike], out: str | os.PathLike, *, block: str,
              pairs: Sequence[Sequence[str]], calibrated: Sequence[bool],
              metrics: Mapping[str, Mapping[str, Any]], device: str,
              calibration: Mapping[str, Any] | None,
              manifest: str | os.PathLike | None = None) -> None:
    """Write one block file (:func:`prh.formats.pair.write_pair_block`): the
    scores of every pair in ``pairs`` (each (x, y) as its pair file would
    name it), exactly as :func:`run` scores each. ``caches``: model -> layer cache
    file; ``calibrated[k]`` says whether pair k gets ``calibration``
    (:meth:`prh.config.Config.block_params`).

    Each model's layer cache is loaded once, at its first pair, and dropped after
    its last, so the order of ``pairs`` bounds the memory
    (:meth:`prh.config.Config.block_cost` plans with the same rule).
    """
    from ..formats.pair import write_pair_block
    from ..formats.layer_cache import check_same_cache_samples

    if len(calibrated) != len(pairs):
        raise ValueError(f"block {block}: {len(pairs)} pairs but {len(calibrated)} "
                         "calibration flags")
    prov, ids = check_same_cache_samples(list(caches.values()))
    permutations = _permutations(calibration, manifest, ids)
    last = {m: k for k, pair in enumerate(pairs) for m in pair}
    loaded: dict[str, Any] = {}
    results = []
    for k, (x, y) in enumerate(_progress(f"block {block}")(list(pairs))):
        for m in (x, y):
            if m not in loaded:
                loaded[m] = _load(caches[m], m, device)
        results.append(score_pair(loaded[x], loaded[y], metrics=metrics, model_x=x, model_y=y,
                                  calibration=calibration if calibrated[k] else None,
                                  provenance=prov, permutations=permutations))
        for m in (x, y):
            if last[m] == k:
                loaded.pop(m, None)
    write_pair_block(out, block, results)


def _permutations(calibration: Mapping[str, Any] | None, manifest: str | os.PathLike | None,
                  ids: Sequence[str]):
    """The null's permutation function: whole blocks of the manifest's
    ``calibration["blocks"]`` column exchanged, in the layer caches' sample
    order ``ids``; None (uniform permutations) without blocks."""
    if not calibration or not calibration.get("blocks"):
        return None
    from ..calibration_checks import check_null_blocks
    from ..inference.permutation import block_permutations
    from ..datasets import sample_blocks

    if manifest is None:
        raise ValueError(f"calibration.blocks: {calibration['blocks']} needs the manifest")
    labels = sample_blocks(manifest, calibration["blocks"], ids or None)
    check_null_blocks(labels, calibration["blocks"], calibration["alpha"])
    return block_permutations(labels)


def _load(path: str | os.PathLike, model: str, device: str):
    from ..formats.layer_cache import load_layer_cache

    cache = load_layer_cache(path, device=device)
    for layer in cache.constant_layers():
        log.warning("model %s: layer %d is constant (all samples alike); its scores are NaN "
                    "and never its model pair's best", model, layer)
    return cache


def score_pair(sx, sy, *, metrics: Mapping[str, Mapping[str, Any]], model_x: str, model_y: str,
               calibration: Mapping[str, Any] | None,
               provenance: Mapping[str, str], permutations: Any = None) -> dict[str, Any]:
    """One pair's scores (and calibration) from its two loaded LayerCache objects, as
    keyword arguments of :func:`prh.formats.pair.write_pair`."""
    from ..inference.permutation import calibrate_pair
    from ..sweep.dispatch import sweep
    from ..metrics import get_metric, resolve_params

    metrics = {m: dict(p or {}) for m, p in metrics.items()}
    cal = dict(calibration or {})
    scores: dict[tuple[str, str], Any] = {}
    rows: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    # calibration.metrics: the metrics with a null; the others are only scored
    calibrated = {m: p for m, p in metrics.items() if m in cal.get("metrics", metrics)}
    if cal and calibrated:
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
    return {"model_x": model_x, "model_y": model_y, "n_samples": sx.n, "metrics": metrics,
            "scores": scores, "calibration": rows, "seed": int(cal.get("seed", 0)),
            "provenance": provenance}
