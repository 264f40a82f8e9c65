"""Which differences between pairs are significant, and whether a trend with
competence can be claimed."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from .common import (ALIGNMENT, COMPARISONS, MAX_CITED, SATURATED, TREND, Row, RunInfo, Section,
                     Statement, _f, _listed, cite, ival, num, pair, pv, src)


def _first_aggregate(rows: Sequence[Row]) -> str | None:
    hows = list(dict.fromkeys(r["aggregate"] for r in rows))
    return "max" if "max" in hows else (hows[0] if hows else None)


def _compared(r: Row) -> tuple[str, str, str]:
    """(a, b, the partner they share or "") of a comparison row."""
    if r["a_y"] == r["b_y"]:
        return r["a_x"], r["b_x"], r["a_y"]
    if r["a_x"] == r["b_x"]:
        return r["a_y"], r["b_y"], r["a_x"]
    return pair(r["a_x"], r["a_y"]), pair(r["b_x"], r["b_y"]), ""


def _comparison(r: Row, alpha: float) -> Statement:
    d = _f(r, "difference")
    a, b, shared = _compared(r)
    numbers = (f"{a} minus {b}{f' with {shared}' if shared else ''}: {num(r['score_a'])} - "
               f"{num(r['score_b'])} = {num(d)} {ival(r)}, p_bh = {pv(r['p_bh'])}")
    if _f(r, "p_bh") <= alpha:
        hi, lo = (a, b) if d > 0 else (b, a)
        text = f"{numbers}: significant, {hi} aligns more than {lo}."
    else:
        text = f"{numbers}: not significant, the two cannot be told apart."
    return Statement(text, (src(COMPARISONS, r),))


def differences(info: RunInfo, comparisons: Sequence[Row], full: Sequence[str] = ()) -> Section:
    out = Section("Which differences are significant")
    if not info.calibrated:
        out.statements.append(Statement("Calibration is off: no paired comparisons.",
                                        (src(ALIGNMENT),)))
        return out
    how = _first_aggregate(comparisons)
    if how is None:
        out.statements.append(Statement(
            "No paired comparison was made (calibration.comparisons, or no two models of one "
            "modality share a calibrated partner).", (src(COMPARISONS),)))
        return out
    out.statements.append(Statement(
        f"Paired differences of two pairs' scores on the same samples ({how} over layer "
        f"pairs); significant: p_bh <= {pv(info.alpha)}.", (src(COMPARISONS),)))
    for metric in dict.fromkeys(r["metric"] for r in comparisons):
        rows = [r for r in comparisons if r["metric"] == metric and r["aggregate"] == how]
        sub = Section(metric)
        sig = [r for r in rows if _f(r, "p_bh") <= info.alpha]
        sub.statements.append(Statement(
            f"{len(sig)} of {len(rows)} differences are significant"
            f"{SATURATED if metric in full else ''}.", cite(COMPARISONS, rows)))
        if metric in full:
            out.subsections.append(sub)
            continue
        sub.statements += _summaries(info, rows)
        ordered = sorted(rows, key=lambda r: (_f(r, "p_bh") > info.alpha, _f(r, "p_bh")))
        sub.statements += _listed([_comparison(r, info.alpha) for r in ordered],
                                  f"{metric} differences", COMPARISONS)
        for other in dict.fromkeys(r["aggregate"] for r in comparisons if r["metric"] == metric):
            if other != how:
                more = [r for r in comparisons if r["metric"] == metric and r["aggregate"] == other]
                k = sum(_f(r, "p_bh") <= info.alpha for r in more)
                sub.statements.append(Statement(
                    f"Aggregated by {other}: {k} of {len(more)} differences are significant.",
                    cite(COMPARISONS, more)))
        out.subsections.append(sub)
    return out


def _summaries(info: RunInfo, rows: Sequence[Row]) -> list[Statement]:
    """One sentence per two models compared against several shared partners:
    ahead with every partner, or never told apart."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r["a_y"] == r["b_y"]:
            groups.setdefault((r["a_x"], r["b_x"]), []).append(r)
    out = []
    for (a, b), rs in groups.items():
        if len(rs) < 2:
            continue
        side = {info.modalities.get(r["a_y"]) for r in rs}
        partners = f"{side.pop()} model" if len(side) == 1 and None not in side else "partner"
        sig = [r for r in rs if _f(r, "p_bh") <= info.alpha]
        d = [_f(r, "difference") for r in rs]
        span = f"{a} minus {b}: {num(min(d))} to {num(max(d))}"
        if len(sig) == len(rs) and (all(x > 0 for x in d) or all(x < 0 for x in d)):
            hi, lo = (a, b) if d[0] > 0 else (b, a)
            out.append(Statement(
                f"{hi} aligns more than {lo} with every {partners} compared ({len(rs)} of "
                f"{len(rs)}; {span}, every p_bh <= {pv(info.alpha)}).", cite(COMPARISONS, rs)))
        elif not sig:
            out.append(Statement(
                f"{a} and {b} cannot be told apart with any of the {len(rs)} {partners}s "
                f"compared ({span}, every p_bh > {pv(info.alpha)}).",
                cite(COMPARISONS, rs)))
    return out


def orderings_floor(n_models: int) -> float:
    """The smallest ``p_models`` any trend over ``n_models`` can have: the
    observed ordering is one of the n! orderings it is compared with."""
    return 1 / math.factorial(n_models)


def trends(info: RunInfo, trend: Sequence[Row]) -> Section:
    out = Section("Can a trend with competence be claimed?")
    if not info.calibrated:
        out.statements.append(Statement("Calibration is off: the trend is not tested.",
                                        (src(ALIGNMENT),)))
        return out
    how = _first_aggregate(trend)
    if how is None:
        out.statements.append(Statement(
            "No trend was tested (trend.tsv is empty): it needs at least 3 models of one "
            "modality with a competence (configured, or 1 - bits per byte) that differ, "
            "and a calibrated partner of the other modality.", (src(TREND),)))
        return out
    alpha = info.alpha
    for (modality, metric) in dict.fromkeys((r["modality"], r["metric"]) for r in trend):
        rows = [r for r in trend if (r["modality"], r["metric"], r["aggregate"])
                == (modality, metric, how)]
        pooled = {r["statistic"]: r for r in rows if r["partner"] == "pooled"}
        if not pooled:
            continue
        first = next(iter(pooled.values()))
        m = int(first["n_models"])
        names, comp = first["models"].split(","), first["competence"].split(",")
        partners = sorted({r["partner"] for r in rows} - {"pooled"})
        sub = Section(f"{modality} models, {metric}")
        order = ", ".join(f"{n} {c}" for n, c in zip(names, comp))
        stats = "; ".join(
            f"{_stat_name(s)} {num(r['estimate'])} {ival(r)}, p = {pv(r['p_value'])}, "
            f"p_models = {pv(r['p_models'])}" for s, r in pooled.items())
        sub.statements.append(Statement(
            f"{m} {modality} models by competence ({order}), pooled over {len(partners)} "
            f"partner{'s' * (len(partners) != 1)} ({how} over layer pairs): {stats}.",
            tuple(src(TREND, r) for r in pooled.values())))
        sub.statements.append(_trend_verdict(pooled, m, alpha, len(set(comp)) == len(comp)))
        per = [r for r in rows if r["partner"] != "pooled"]
        claim = [r for r in per if _f(r, "p_value") <= alpha and _f(r, "p_models") <= alpha]
        if per:
            text = f"Per partner, {len(claim)} of {len(per)} statistics pass both tests"
            if claim:
                text += (": " + "; ".join(
                    f"{_stat_name(r['statistic'])} with {r['partner']} {num(r['estimate'])} "
                    f"{ival(r)}, p = {pv(r['p_value'])}, p_models = {pv(r['p_models'])}"
                    for r in claim[:MAX_CITED])
                    + " (one partner's pass among several is weaker evidence than the pooled "
                    "test)")
            text += "."
            sub.statements.append(Statement(text, cite(TREND, claim or per)))
        out.subsections.append(sub)
    return out


def _stat_name(s: str) -> str:
    return {"spearman": "Spearman", "slope": "slope"}.get(s, s)


def _trend_verdict(pooled: Mapping[str, Row], m: int, alpha: float, distinct: bool) -> Statement:
    floor = orderings_floor(m)
    reasons, claimed = [], []
    for s, r in pooled.items():
        p, pm = _f(r, "p_value"), _f(r, "p_models")
        if p <= alpha and pm <= alpha:
            least = ", the smallest possible" if math.isclose(pm, floor, rel_tol=1e-3) else ""
            claimed.append(f"the {_stat_name(s)} ({num(r['estimate'])}, p = {pv(p)}, "
                           f"p_models = {pv(pm)}{least})")
        elif pm > alpha:
            reasons.append(f"the {_stat_name(s)}'s p_models = {pv(pm)} > {pv(alpha)}: "
                           f"{pm:.0%} of the orderings of the models' competence give one "
                           "at least as large")
        else:
            reasons.append(f"the {_stat_name(s)}'s p = {pv(p)} > {pv(alpha)}: sample noise "
                           "gives one as large")
    bound = (f"With {m} models p_models cannot be below 1/{m}! = {pv(floor)}, the observed "
             f"ordering being one of {math.factorial(m)}")
    if distinct and "spearman" in pooled and 2 * floor > alpha:
        bound += (f"; a Spearman correlation's reversed ordering fits as well, so its "
                  f"p_models is at least 2/{m}! = {pv(2 * floor)} > {pv(alpha)}")
    if floor > alpha:
        need = next(k for k in range(m, 20) if orderings_floor(k) <= alpha)
        bound += f"; no trend over {m} models can be claimed: it takes at least {need}"
    if claimed:
        text = f"A trend can be claimed for {' and '.join(claimed)}."
        if reasons:
            text += f" Not for {'; '.join(reasons)}."
        text += f" {bound}."
    else:
        text = f"A trend cannot be claimed: {'; '.join(reasons)}. {bound}."
    return Statement(text, tuple(src(TREND, r) for r in pooled.values()))
