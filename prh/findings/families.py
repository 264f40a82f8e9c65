"""Whether the measure families agree: the run's metrics grouped by kind
(global, local, predictive: :attr:`prh.metric_info.MetricInfo.kind`,
:func:`prh.metric_info.by_kind`, docs/metrics.md section 6), each family's ranking of the model pairs and
its verdicts on chance, compared family against family. The follow-up
literature finds that a convergence result can hold for one family and not
another; this section says which holds on this run."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Sequence

from ..metric_info import by_kind
from .common import (AGREEMENT, ALIGNMENT, MIN_RANKED, Row, RunInfo, Section, Statement, _f,
                     cite, num, pair, src)
from .disagreement import _spearman, _unordered

def _ranks(values: Sequence[float]) -> list[float]:
    from scipy.stats import rankdata

    return [float(v) for v in rankdata(values)]


def family_ranks(alignment: Sequence[Row], metrics: Sequence[str]
                 ) -> tuple[dict[frozenset, float], list[Row]]:
    """Each model pair's mean rank over the family's ``metrics`` (a metric
    ranks the pairs by its score, both orders averaged), on the pairs every
    one of them scores; with the rows used."""
    scores = {m: _unordered(alignment, m) for m in metrics}
    common = set.intersection(*(set(s) for s in scores.values())) if scores else set()
    keys = sorted(common, key=sorted)
    if not keys:
        return {}, []
    total = [0.0] * len(keys)
    for m in metrics:
        for i, r in enumerate(_ranks([scores[m][k][0] for k in keys])):
            total[i] += r / len(metrics)
    rows = [r for m in metrics for k in keys for r in scores[m][k][1]]
    return dict(zip(keys, total)), rows


def _names(kind: str, metrics: Sequence[str]) -> str:
    return f"{kind} ({', '.join(metrics)})"


def family_agreement(info: RunInfo, alignment: Sequence[Row], metrics: Sequence[str],
                     full: Sequence[str] = ()) -> Section:
    """The section; ``metrics`` without the saturated ones (``full``)."""
    out = Section("Whether the measure families agree")
    fams = by_kind(metrics)
    if full:
        out.statements.append(Statement(
            f"{', '.join(full)} {'is' if len(full) == 1 else 'are'} left out here: saturated "
            "(Warnings).", (src(ALIGNMENT),)))
    if len(fams) < 2:
        only = next(iter(fams.items()), None)
        what = f"only the {_names(*only)} family is" if only else "no family is"
        out.statements.append(Statement(
            f"The families cannot be compared: {what} measured on this run; configure a "
            "metric of another family (docs/metrics.md, section 6).", (src(ALIGNMENT),)))
        return out
    ranked = {k: family_ranks(alignment, ms) for k, ms in fams.items()}
    verdicts: list[bool] = []
    details: list[Statement] = []
    for a, b in combinations(fams, 2):
        (ra, rows_a), (rb, rows_b) = ranked[a], ranked[b]
        keys = sorted(set(ra) & set(rb), key=sorted)
        rows = [r for r in rows_a + rows_b if frozenset((r["model_x"], r["model_y"])) in keys]
        if len(keys) < MIN_RANKED:
            details.append(Statement(
                f"The {_names(a, fams[a])} and {_names(b, fams[b])} families share "
                f"{len(keys)} model pairs, fewer than {MIN_RANKED}: their rankings are not "
                "compared.", (src(ALIGNMENT),)))
            continue
        rho = _spearman([ra[k] for k in keys], [rb[k] for k in keys])
        if math.isnan(rho):
            continue
        alike = rho >= AGREEMENT
        verdicts.append(alike)
        details.append(Statement(
            f"The {_names(a, fams[a])} and {_names(b, fams[b])} families rank the "
            f"{len(keys)} model pairs {'alike' if alike else 'differently'}: Spearman "
            f"{num(rho)} between their mean ranks ({'at least' if alike else 'below'} "
            f"{AGREEMENT}).", cite(ALIGNMENT, rows)))
        if info.calibrated:
            chance = _chance(info, alignment, fams[a], fams[b], a, b)
            if chance is not None:
                verdicts.append(chance[0])
                details.append(chance[1])
    if verdicts:
        word = "agree" if all(verdicts) else "do not agree"
        out.statements.append(Statement(
            f"The measure families {word} on this run: {sum(verdicts)} of {len(verdicts)} "
            "comparisons below (rankings of the model pairs"
            f"{', pairs above chance' if info.calibrated else ''}) find them alike.",
            (src(ALIGNMENT),)))
    out.statements += details
    return out


def _chance(info: RunInfo, alignment: Sequence[Row], ma: Sequence[str], mb: Sequence[str],
            a: str, b: str) -> tuple[bool, Statement] | None:
    """Whether two families call the same model pairs above chance: a family
    calls a pair above chance when every one of its metrics does (p_bh at
    most alpha, in any order), not when none does, and is split otherwise."""
    per: dict[frozenset, dict[str, list[Row]]] = {}
    for r in alignment:
        if r["metric"] in (*ma, *mb) and r.get("p_bh") not in ("", None):
            per.setdefault(frozenset((r["model_x"], r["model_y"])), {}).setdefault(
                r["metric"], []).append(r)

    def call(rows_by_metric, metrics):
        yes = [any(_f(r, "p_bh") <= info.alpha for r in rows_by_metric[m]) for m in metrics]
        return "above" if all(yes) else ("not above" if not any(yes) else "split")

    keys = sorted((k for k, v in per.items() if all(m in v for m in (*ma, *mb))), key=sorted)
    if not keys:
        return None
    differ = [(k, call(per[k], ma), call(per[k], mb)) for k in keys]
    differ = [d for d in differ if d[1] != d[2]]
    same = len(keys) - len(differ)
    text = (f"The {a} and {b} families call the same model pairs above chance on {same} of "
            f"{len(keys)} pairs")
    if differ:
        listed = "; ".join(f"{pair(*sorted(k))}: {a} {ca}, {b} {cb}" for k, ca, cb in differ[:6])
        more = f"; and {len(differ) - 6} more" if len(differ) > 6 else ""
        text += f"; they differ on {listed}{more}"
    rows = [r for k, _, _ in (differ or [(k, "", "") for k in keys])
            for m in (*ma, *mb) for r in per[k][m]]
    return not differ, Statement(text + ".", cite(ALIGNMENT, rows))
