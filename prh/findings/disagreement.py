"""Where the metrics disagree: rankings of the model pairs, the most aligned
pair, and pairs or differences that one metric's test passes and another's
does not."""

from __future__ import annotations

import math
from typing import Sequence

from .common import (ALIGNMENT, COMPARISONS, Row, RunInfo, Section, Statement, _f, _listed,
                     cite, num, pair, pv, src)
from itertools import combinations

from .common import AGREEMENT, MIN_RANKED
from .significance import _first_aggregate


def _unordered(alignment: Sequence[Row], metric: str) -> dict[frozenset, tuple[float, list[Row]]]:
    """Each model pair's score of one metric (the mean of both orders for an
    asymmetric metric) with its rows."""
    acc: dict[frozenset, list[Row]] = {}
    for r in alignment:
        if r["metric"] == metric and r["score"]:
            acc.setdefault(frozenset((r["model_x"], r["model_y"])), []).append(r)
    return {k: (sum(_f(r, "score") for r in rs) / len(rs), rs) for k, rs in acc.items()}


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    import numpy as np
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float(np.dot(ra, rb) / den) if den > 0 else math.nan


def disagreements(info: RunInfo, alignment: Sequence[Row], comparisons: Sequence[Row],
                  metrics: Sequence[str], full: Sequence[str] = ()) -> Section:
    """Between the ``metrics`` (the saturated ones, ``full``, left out)."""
    out = Section("Where the metrics disagree")
    if full:
        out.statements.append(Statement(
            f"{', '.join(full)} {'is' if len(full) == 1 else 'are'} left out here: saturated "
            "(Warnings).", (src(ALIGNMENT),)))
    scores = {m: _unordered(alignment, m) for m in metrics}
    agree, few = [], 0
    for a, b in combinations(metrics, 2):
        common = sorted(set(scores[a]) & set(scores[b]), key=sorted)
        if len(common) < MIN_RANKED:
            few = max(few, len(common))
            continue
        rho = _spearman([scores[a][k][0] for k in common], [scores[b][k][0] for k in common])
        if math.isnan(rho):
            continue
        if rho < AGREEMENT:
            out.statements.append(Statement(
                f"{a} and {b} rank the {len(common)} model pairs differently: Spearman "
                f"{num(rho)} (below {AGREEMENT}).",
                cite(ALIGNMENT, [r for k in common for m in (a, b) for r in scores[m][k][1]])))
        else:
            agree.append(rho)
    if agree:
        span = num(agree[0]) if len(agree) == 1 else f"{num(min(agree))} to {num(max(agree))}"
        rest = "The other" if len(out.statements) > bool(full) else "All"
        out.statements.append(Statement(
            f"{rest} {len(agree)} pair{'s' * (len(agree) != 1)} of metrics rank the model "
            f"pairs alike: Spearman {span} (at least {AGREEMENT}).", (src(ALIGNMENT),)))
    if few:
        out.statements.append(Statement(
            f"The metrics' rankings of the model pairs are not compared where they share "
            f"fewer than {MIN_RANKED} pairs (here at most {few}).", (src(ALIGNMENT),)))
    tops = {}
    for m in metrics:
        if scores[m]:
            key = max(scores[m], key=lambda k: (scores[m][k][0], sorted(k)))
            tops[m] = key
    if len(set(tops.values())) > 1:
        parts = [f"by {m} {pair(scores[m][k][1][0]['model_x'], scores[m][k][1][0]['model_y'])}"
                 f" ({num(scores[m][k][0])})" for m, k in tops.items()]
        out.statements.append(Statement(
            f"The most aligned pair differs: {'; '.join(parts)}.",
            tuple(src(ALIGNMENT, r) for m, k in tops.items() for r in scores[m][k][1])))
    out.statements += _chance_disagreements(info, alignment, metrics)
    out.statements += _comparison_disagreements(
        info, [r for r in comparisons if r["metric"] in metrics])
    if len(out.statements) == bool(full):
        out.statements.append(Statement(
            "Nothing to compare: no two metrics share model pairs, and no pair or "
            "difference is tested by several metrics.", (src(ALIGNMENT),)))
    return out


def _chance_disagreements(info: RunInfo, alignment: Sequence[Row],
                          metrics: Sequence[str]) -> list[Statement]:
    by_pair: dict[tuple[str, str], dict[str, Row]] = {}
    for r in alignment:
        if r["p_bh"] and r["metric"] in metrics:
            by_pair.setdefault((r["model_x"], r["model_y"]), {})[r["metric"]] = r
    out = []
    for (x, y), per in by_pair.items():
        yes = [m for m in metrics if m in per and _f(per[m], "p_bh") <= info.alpha]
        no = [m for m in metrics if m in per and _f(per[m], "p_bh") > info.alpha]
        if yes and no:
            def tests(ms):
                return ", ".join(f"{m} (p_bh = {pv(per[m]['p_bh'])})" for m in ms)
            out.append(Statement(f"{pair(x, y)} is above chance by {tests(yes)} but not by "
                                 f"{tests(no)}.", tuple(src(ALIGNMENT, per[m]) for m in yes + no)))
    return _listed(out, "pairs on which the metrics' tests disagree", ALIGNMENT)


def _comparison_disagreements(info: RunInfo, comparisons: Sequence[Row]) -> list[Statement]:
    how = _first_aggregate(comparisons)
    by_key: dict[tuple, dict[str, Row]] = {}
    for r in comparisons:
        if r["aggregate"] == how:
            key = (r["a_x"], r["a_y"], r["b_x"], r["b_y"])
            by_key.setdefault(key, {})[r["metric"]] = r
    out = []
    for (ax, ay, bx, by), per in by_key.items():
        sig = {m: r for m, r in per.items() if _f(r, "p_bh") <= info.alpha}
        signs = {_f(r, "difference") > 0 for r in sig.values()}
        if sig and (len(sig) < len(per) or len(signs) > 1):
            parts = [f"{m} {num(r['difference'])} (p_bh = {pv(r['p_bh'])}, "
                     f"{'significant' if m in sig else 'not significant'})"
                     for m, r in per.items()]
            out.append(Statement(
                f"{pair(ax, ay)} minus {pair(bx, by)}: the metrics do not agree: "
                f"{'; '.join(parts)}.", tuple(src(COMPARISONS, r) for r in per.values())))
    return _listed(out, "differences on which the metrics disagree", COMPARISONS)
