"""What a run found, in words: statements computed from its tables.

:func:`findings` turns the tables of one dataset (``alignment.tsv``,
``aggregates.tsv``, ``statistics/intervals.tsv``, ``comparisons.tsv``,
``trend.tsv``, as their :mod:`prh.formats` readers give them, with
:func:`prh.report_html.numbered`'s line numbers) into sections of :class:`Statement`, each citing the table
rows it comes from; :func:`to_markdown` writes ``findings.md`` and
:mod:`prh.report_html` the report's page. Pure: no files, no Snakemake.

What is called what: a pair is "above chance" when its ``p_bh`` is at most
alpha; a difference "significant" when its ``p_bh`` is; a trend "can be
claimed" when both its sample-noise ``p_value`` and its models-order
``p_models`` are. Every number is quoted from the cited row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Mapping, Sequence

from .metric_info import COVERAGE_SAMPLE_SIZES, get_metric
from .report_html import LINE, numbered  # noqa: F401 (numbered: the rows this module takes)
from .scoring import SATURATION_MARGIN, saturated, saturation, saturation_note

#: a model with fewer layers than this has (almost) no layer sweep
MIN_LAYERS = 3
#: metrics whose rankings of the model pairs correlate less than this disagree
AGREEMENT = 0.5
#: statements listed one by one per block before the rest is counted
MAX_LISTED = 40
#: rows cited one by one in a statement about many rows
MAX_CITED = 6

ALIGNMENT = "alignment.tsv"
AGGREGATES = "aggregates.tsv"
INTERVALS = "statistics/intervals.tsv"
COMPARISONS = "statistics/comparisons.tsv"
TREND = "statistics/trend.tsv"

Row = Mapping[str, Any]
SATURATED = "; the metric is saturated (Warnings), so its pairs are not listed"


@dataclass(frozen=True)
class Source:
    """A table (path under ``results/<dataset>/``) and a 1-based line of it
    (None: the table as a whole), with the row's cells for a tooltip."""

    table: str
    line: int | None = None
    cells: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return self.table if self.line is None else f"{self.table}:{self.line}"

    @property
    def href(self) -> str:
        return self.table if self.line is None else f"{self.table}#L{self.line}"


@dataclass(frozen=True)
class Statement:
    text: str
    sources: tuple[Source, ...] = ()


@dataclass
class Section:
    title: str
    statements: list[Statement] = field(default_factory=list)
    subsections: list["Section"] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """What the tables do not hold: the run's settings and its models."""

    dataset: str
    alpha: float
    n_samples: int | None = None
    n_permutations: int | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    modalities: Mapping[str, str] = field(default_factory=dict)
    layers: Mapping[str, int] = field(default_factory=dict)
    calibrated: bool = True


# ---------------------------------------------------------------------------
# numbers as the page prints them


def num(v: Any) -> str:
    """A score, difference or interval end: 3 decimals in 0.01..1, 4
    significant digits from 1, 2 below 0.01."""
    v = float(v)
    a = abs(v)
    if v == 0:
        return "0"
    if a >= 1:
        return f"{v:.4g}"
    return f"{v:.3f}" if a >= 0.01 else f"{v:.2g}"


def pv(v: Any) -> str:
    """A p-value, 2 significant digits."""
    return f"{float(v):.2g}"


def ival(row: Row) -> str:
    return f"[{num(row['low'])}, {num(row['high'])}]"


def _f(row: Row, key: str) -> float:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else math.nan


def src(table: str, row: Row | None = None) -> Source:
    if row is None:
        return Source(table)
    return Source(table, int(row[LINE]),
                  tuple((k, str(v)) for k, v in row.items() if k != LINE))


def cite(table: str, rows: Sequence[Row]) -> tuple[Source, ...]:
    """The rows one by one, or the table when there are many."""
    if len(rows) > MAX_CITED:
        return (src(table),)
    return tuple(src(table, r) for r in rows)


def pair(x: str, y: str) -> str:
    return f"{x} × {y}"


def _listed(statements: list[Statement], what: str, table: str) -> list[Statement]:
    if len(statements) <= MAX_LISTED:
        return statements
    rest = len(statements) - MAX_LISTED
    return statements[:MAX_LISTED] + [Statement(f"... and {rest} more {what}.", (src(table),))]


# ---------------------------------------------------------------------------
# the sections


def findings(info: RunInfo, *, alignment: Sequence[Row], aggregates: Sequence[Row] = (),
             intervals: Sequence[Row] = (), comparisons: Sequence[Row] = (),
             trend: Sequence[Row] = ()) -> list[Section]:
    """The findings page's sections; rows as :func:`numbered` gives them."""
    metrics = list(dict.fromkeys(r["metric"] for r in alignment))
    full = saturated_metrics(info, alignment)
    return [
        warnings(info, alignment, intervals, metrics),
        above_chance(info, alignment, aggregates, intervals, metrics, full),
        differences(info, comparisons, full),
        trends(info, trend),
        disagreements(info, alignment, comparisons, [m for m in metrics if m not in full], full),
    ]


def saturated_metrics(info: RunInfo, alignment: Sequence[Row]) -> list[str]:
    out = []
    for metric in dict.fromkeys(r["metric"] for r in alignment):
        top = get_metric(metric).max_score(**info.params.get(metric, {}))
        if saturated(*saturation([_f(r, "score") for r in alignment if r["metric"] == metric],
                                 top)):
            out.append(metric)
    return out


def warnings(info: RunInfo, alignment: Sequence[Row], intervals: Sequence[Row],
             metrics: Sequence[str]) -> Section:
    out = Section("Warnings")
    for metric in metrics:
        rows = [r for r in alignment if r["metric"] == metric]
        top = get_metric(metric).max_score(**info.params.get(metric, {}))
        at, n = saturation([_f(r, "score") for r in rows], top)
        if saturated(at, n):
            near = (1 - SATURATION_MARGIN) * top
            ceiling = [r for r in rows if _f(r, "score") >= near]
            text = saturation_note(metric, at, n, top, info.params.get(metric), info.n_samples)
            taus = [_f(r, "tau") for r in rows if r.get("tau")]
            high = sum(t >= near for t in taus)
            if high:
                text += (f"; its permutation null reaches the ceiling too (tau within "
                         f"{SATURATION_MARGIN:.0%} of it for {high} of {len(taus)} calibrated "
                         "pairs)")
            out.statements.append(Statement(text + ".", cite(ALIGNMENT, ceiling)))
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
                    f"best layer pair of its pairs is a max over {n} of its layers, of "
                    "another model's over all of theirs, so its raw scores have fewer chances "
                    "to be high; compare it by p-values and calibrated scores, not raw scores.",
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
        out.statements.append(Statement("None: no metric is saturated, N is at least "
                                        f"{smallest} and every model has at least "
                                        f"{MIN_LAYERS} layers."))
    return out


def _interval_of(intervals: Sequence[Row], r: Row, aggregate: str = "max") -> Row | None:
    for iv in intervals:
        if (iv["metric"], iv["model_x"], iv["model_y"], iv["order"], iv["aggregate"]) == (
                r["metric"], r["model_x"], r["model_y"], "xy", aggregate):
            return iv
    return None


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
            if metric not in untested or len(untested) == len(metrics):
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
            iv = _interval_of(intervals, r)
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
        out.statements.append(Statement("Calibration is off: no paired comparisons."))
        return out
    how = _first_aggregate(comparisons)
    if how is None:
        out.statements.append(Statement(
            "No paired comparison was made (calibration.comparisons, or no two models of one "
            "modality share a calibrated partner).", (src(COMPARISONS),)))
        return out
    out.statements.append(Statement(
        f"Paired differences of two pairs' scores on the same samples ({how} over layer "
        f"pairs); significant: p_bh <= {pv(info.alpha)}."))
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
        out.statements.append(Statement("Calibration is off: the trend is not tested."))
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
            claimed.append(f"the {_stat_name(s)} ({num(r['estimate'])}, p = {pv(p)}, "
                           f"p_models = {pv(pm)})")
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
        text = f"A trend can be claimed for {' and '.join(claimed)}. {bound}."
        if reasons:
            text += f" Not for {'; '.join(reasons)}."
    else:
        text = f"A trend cannot be claimed: {'; '.join(reasons)}. {bound}."
    return Statement(text, tuple(src(TREND, r) for r in pooled.values()))


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
            "(Warnings)."))
    scores = {m: _unordered(alignment, m) for m in metrics}
    agree = []
    for a, b in combinations(metrics, 2):
        common = sorted(set(scores[a]) & set(scores[b]), key=sorted)
        if len(common) < 3:
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
            agree.append(f"{a}/{b} {num(rho)}")
    if agree:
        out.statements.append(Statement(
            f"These metrics rank the model pairs alike (Spearman >= {AGREEMENT}): "
            f"{', '.join(agree)}.", (src(ALIGNMENT),)))
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
            "Nothing to compare: fewer than 3 model pairs shared by two metrics, and no pair "
            "or difference tested by several metrics."))
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


# ---------------------------------------------------------------------------
# the page


def intro(info: RunInfo, alignment: Sequence[Row], intervals: Sequence[Row]) -> str:
    models = sorted({r[k] for r in alignment for k in ("model_x", "model_y")})
    metrics = list(dict.fromkeys(r["metric"] for r in alignment))
    level = {r["level"] for r in intervals}
    parts = [f"N = {info.n_samples} samples" if info.n_samples else None,
             f"{len(models)} models", f"metrics {', '.join(metrics)}",
             f"alpha = {pv(info.alpha)}" if info.calibrated else "calibration off",
             f"{float(level.pop()):.0%} intervals" if len(level) == 1 else None]
    return (f"What the tables of this run say ({'; '.join(p for p in parts if p)}). "
            "Each statement cites the table rows it comes from as table:line (the header "
            f"is line 1), under results/{info.dataset}/.")


def to_markdown(sections: Sequence[Section], *, title: str, intro_text: str) -> str:
    lines = [f"# {title}", "", intro_text, ""]

    def statement(s: Statement) -> str:
        refs = "; ".join(f"[{x.label}]({x.href})" for x in s.sources)
        return f"- {s.text}" + (f" ({refs})" if refs else "")

    def section(sec: Section, depth: int) -> None:
        lines.extend([f"{'#' * depth} {sec.title}", ""])
        lines.extend(statement(s) for s in sec.statements)
        if sec.statements:
            lines.append("")
        for sub in sec.subsections:
            section(sub, depth + 1)

    for sec in sections:
        section(sec, 2)
    return "\n".join(lines).rstrip() + "\n"
