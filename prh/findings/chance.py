"""Warnings (saturated metrics, small N, few layers, wide intervals) and
which pairs are above chance."""

from __future__ import annotations

from typing import Sequence

from .common import (AGGREGATES, ALIGNMENT, INTERVALS, MIN_LAYERS, SATURATED, Row, RunInfo,
                     Section, Source, Statement, _f, _listed, cite, ival, num, pair, pv, src)
from ..metric_info import COVERAGE_SAMPLE_SIZES, get_metric
from ..scoring import SATURATION_MARGIN, Saturation, saturation


def saturations(info: RunInfo, alignment: Sequence[Row]) -> dict[str, Saturation]:
    """Each metric's :class:`prh.scoring.Saturation` over the run's pairs."""
    out = {}
    for metric in dict.fromkeys(r["metric"] for r in alignment):
        rows = [r for r in alignment if r["metric"] == metric]
        out[metric] = saturation(metric, [_f(r, "score") for r in rows],
                                 get_metric(metric).max_score(**info.params.get(metric, {})),
                                 [_f(r, "null_mean") for r in rows])
    return out


def warnings(info: RunInfo, alignment: Sequence[Row], intervals: Sequence[Row],
             metrics: Sequence[str]) -> Section:
    out = Section("Warnings")
    sat = saturations(info, alignment)
    for metric in metrics:
        rows = [r for r in alignment if r["metric"] == metric]
        if sat[metric].kind == "ceiling":
            near = (1 - SATURATION_MARGIN) * sat[metric].max_score
            out.statements.append(Statement(
                sat[metric].note(info.params.get(metric), info.n_samples) + ".",
                cite(ALIGNMENT, [r for r in rows if _f(r, "score") >= near])))
        elif sat[metric].kind == "chance":
            out.statements.append(Statement(
                sat[metric].note(info.params.get(metric), info.n_samples) + ".",
                cite(ALIGNMENT, [r for r in rows if r["null_mean"]])))
        for r in rows:
            if not r["score"]:
                out.statements.append(Statement(
                    f"{metric} of {pair(r['model_x'], r['model_y'])} has no finite score "
                    "(a model's layers are constant): the pair is left out of every statement.",
                    (src(ALIGNMENT, r),)))
    smallest = COVERAGE_SAMPLE_SIZES[0]
    if info.n_samples is not None and info.n_samples < smallest:
        out.statements.append(Statement(
            f"Small sample: N = {info.n_samples} samples, below {smallest}, the smallest N at "
            "which the intervals' coverage was measured (docs/statistics.md): the intervals "
            "and the p-values of comparisons and trends are rough here.",
            (Source("manifest.json"),)))
    if info.calibrated and info.n_permutations:
        floor = 1 / (info.n_permutations + 1)
        if floor > info.alpha:
            out.statements.append(Statement(
                f"With {info.n_permutations} permutations no p-value can be below "
                f"1/{info.n_permutations + 1} = {pv(floor)} > alpha = {pv(info.alpha)}: no "
                "pair can be called above chance; raise calibration.n_permutations.",
                (src(ALIGNMENT),)))
    if info.layers:
        most = max(info.layers.values())
        for model, n in info.layers.items():
            if n < MIN_LAYERS and most > n:
                others = sorted({v for m, v in info.layers.items() if m != model})
                span = (f"{others[0]}" if len(others) == 1 else f"{others[0]} to {others[-1]}")
                out.statements.append(Statement(
                    f"{model} has {n} layer{'s' * (n != 1)} (the other models {span}): the "
                    f"best layer pair of each of its pairs is picked from {n} x L layer pairs "
                    "instead of L' x L, so its raw scores have fewer chances to be high; "
                    "compare it by p-values and calibrated scores, not raw scores.",
                    (Source(f"features/{model}.h5"),)))
    wide = {}
    for r in intervals:
        if r.get("coverage") == "conservative":
            wide.setdefault(r["metric"], r)
    if wide:
        out.statements.append(Statement(
            f"The intervals of {', '.join(wide)} are conservative (coverage column): wider "
            "than the sampling noise, so a difference they call significant is, but smaller "
            "real differences can be missed.", tuple(src(INTERVALS, r) for r in wide.values())))
    if not out.statements:
        checked = ["no metric is saturated or near it"]
        sources = [src(ALIGNMENT)]
        if info.n_samples is not None:
            checked.append(f"N = {info.n_samples} is at least {smallest}")
            sources.append(Source("manifest.json"))
        if info.layers:
            checked.append(f"every model has at least {MIN_LAYERS} layers")
        out.statements.append(Statement(f"None: {', '.join(checked)}.", tuple(sources)))
    return out


def above_chance(info: RunInfo, alignment: Sequence[Row], aggregates: Sequence[Row],
                 intervals: Sequence[Row], metrics: Sequence[str],
                 full: Sequence[str] = ()) -> Section:
    out = Section("Which pairs are above chance")
    alpha = pv(info.alpha)
    untested = [m for m in metrics
                if not any(r["p_value"] for r in alignment if r["metric"] == m)]
    if len(untested) == len(metrics):
        out.statements.append(Statement(
            "No score is tested against chance: calibration is off or calibrates none of "
            "these metrics (calibration.enabled, calibration.metrics); the p_value column is "
            "empty. The highest raw scores follow; raw scores of different metrics, N or k "
            "are not comparable.", (src(ALIGNMENT),)))
    elif untested:
        out.statements.append(Statement(
            f"{', '.join(untested)}: not calibrated (empty p_value: calibration.metrics or "
            "calibration.pairs leave them out), so whether their scores are above chance is "
            "not tested.", (src(ALIGNMENT),)))
    # each alignment.tsv row's interval: the same order, max over layer pairs
    interval = {(iv["metric"], iv["model_x"], iv["model_y"]): iv for iv in intervals
                if iv["order"] == "xy" and iv["aggregate"] == "max"}
    for metric in metrics:
        rows = [r for r in alignment if r["metric"] == metric and r["score"]]
        sub = Section(metric)
        tested = [r for r in rows if r["p_bh"]]
        if not tested:
            best = sorted(rows, key=lambda r: -_f(r, "score"))[:3]
            for r in best:
                sub.statements.append(Statement(
                    f"{pair(r['model_x'], r['model_y'])}: {num(r['score'])} (raw, layers "
                    f"{_layers(r)}; not tested against chance).", (src(ALIGNMENT, r),)))
            if len(untested) == len(metrics):
                out.subsections.append(sub)
            continue
        above = [r for r in tested if _f(r, "p_bh") <= info.alpha]
        sub.statements.append(Statement(
            f"{len(above)} of {len(tested)} calibrated pairs are above chance "
            f"(p_bh <= {alpha}){SATURATED if metric in full else ''}.",
            cite(ALIGNMENT, tested)))
        if metric in full:
            out.subsections.append(sub)
            continue
        listed = []
        for r in sorted(tested, key=lambda r: -_f(r, "score")):
            iv = interval.get((metric, r["model_x"], r["model_y"]))
            verdict = "above chance" if _f(r, "p_bh") <= info.alpha else "not above chance"
            listed.append(Statement(
                f"{pair(r['model_x'], r['model_y'])}: {num(r['score'])}"
                f"{' ' + ival(iv) if iv else ''} (layers {_layers(r)}), null mean "
                f"{num(r['null_mean'])}, tau {num(r['tau'])}, p_bh = {pv(r['p_bh'])}: "
                f"{verdict}.", (src(ALIGNMENT, r),) + ((src(INTERVALS, iv),) if iv else ())))
        sub.statements += _listed(listed, f"{metric} pairs", ALIGNMENT)
        for how in dict.fromkeys(a["aggregate"] for a in aggregates if a["metric"] == metric):
            if how == "max":
                continue
            agg = [a for a in aggregates if a["metric"] == metric and a["aggregate"] == how
                   and a["p_bh"]]
            if agg:
                k = sum(_f(a, "p_bh") <= info.alpha for a in agg)
                sub.statements.append(Statement(
                    f"Aggregated by {how} instead of the max over layer pairs: {k} of "
                    f"{len(agg)} are above chance.", cite(AGGREGATES, agg)))
        out.subsections.append(sub)
    return out


def _layers(r: Row) -> str:
    def one(i, name):
        return f"{i} ({name})" if name else str(i)
    return f"{one(r['layer_x'], r.get('layer_x_name'))} × {one(r['layer_y'], r.get('layer_y_name'))}"
