"""The findings page against the tables it comes from.

A tiny run is built with prh's own steps (features -> layer caches -> calibrated
pair files -> aggregate -> statistics): four vision models with competence,
one of them untrained, and two language models, one with a single layer;
cycle_knn with k = 20 on 60 samples is saturated. Each statement of
findings.md is then read back: every row it cites exists, the numbers it
quotes are that row's, and what it calls above chance, significant or a
trend follows the row's p-values.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from prh.alignment import LayerCache
from prh.findings import RunInfo, findings, intro, orderings_floor, pv, to_markdown
from prh.formats.features import FeatureWriter
from prh.formats.statistics import read_trend, write_trend
from prh.formats.layer_cache import save_layer_cache
from prh.report_html import numbered
from prh.steps import findings as findings_step
from prh.steps import report_tables
from prh.steps.aggregate import run as aggregate
from prh.steps.pair_scores import run as pair_scores
from prh.steps.statistics import run as statistics

N = 60
ALPHA = 0.05
METRICS = {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 20}, "cka": {"kernel": "ip"}}
# model: modality, strength of the shared signal per layer, competence
SPEC = {
    "v0": ("vision", [0.0, 0.0, 0.0], 0.1),
    "v1": ("vision", [0.5, 1.0, 1.5], 70.0),
    "v2": ("vision", [0.6, 1.1, 1.6], 72.0),
    "v3": ("vision", [0.7, 1.2, 1.7], 74.0),
    "lm": ("language", [0.5, 1.5, 2.5, 2.0], None),
    "glove": ("language", [1.0], None),
}
MODALITIES = {m: s[0] for m, s in SPEC.items()}
STATISTICS = ("intervals", "comparisons", "trend")
TABLES = {"alignment.tsv": "alignment", "aggregates.tsv": "aggregates",
          **{f"statistics/{t}.tsv": t for t in STATISTICS}}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((N, 6))
    feats, caches = {}, {}
    for m, (modality, signal, _) in SPEC.items():
        layers = [(s * z @ rng.standard_normal((6, 12)) + rng.standard_normal((N, 12)))
                  .astype(np.float32) for s in signal]
        feats[m] = d / f"features/{m}.h5"
        with FeatureWriter(feats[m], sample_ids=[f"s{i}" for i in range(N)],
                           layer_names=[f"{m}.l{i}" for i in range(len(signal))],
                           attrs={"modality": modality}) as w:
            w.write(0, layers)
        caches[m] = d / f"layer_cache/{m}.h5"
        save_layer_cache(LayerCache.from_features(layers), caches[m], topk=[5, 20], cca_dims=[])
    cal = {"n_permutations": 50, "alpha": ALPHA, "seed": 0, "aggregates": ["max", "mean"],
           "blocks": None, "metrics": list(METRICS)}
    vision = [m for m in SPEC if MODALITIES[m] == "vision"]
    language = [m for m in SPEC if MODALITIES[m] == "language"]
    pairs = [(v, lang) for v in vision for lang in language]
    files = []
    for x, y in pairs:
        files.append(d / f"pairs/{x}__{y}.h5")
        pair_scores(caches[x], caches[y], files[-1], metrics=METRICS, model_x=x, model_y=y,
                    device="cpu", calibration=cal)
    records = _Records()
    logging.getLogger("prh").addHandler(records)
    old_level = logging.getLogger("prh").level
    logging.getLogger("prh").setLevel(logging.INFO)
    try:
        aggregate(files, dataset="toy", models=list(SPEC), metrics=list(METRICS),
                  out_h5=d / "alignment.h5", out_tsv=d / "alignment.tsv",
                  out_aggregates_tsv=d / "aggregates.tsv", features=feats)
        comparisons = [[[a, c], [b, c]] for c in language for i, a in enumerate(vision)
                       for b in vision[i + 1:]]
        comparisons += [[[v, language[0]], [v, language[1]]] for v in vision]
        statistics(caches, dataset="toy", metrics=METRICS, pairs=pairs, comparisons=comparisons,
                   trend=True, aggregates=["max", "mean"], method="auto", level=0.95, seed=0,
                   blocks=None, modalities=MODALITIES, features=feats,
                   competence={m: {"competence": s[2], "competence_source": "test"}
                               for m, s in SPEC.items() if s[2] is not None},
                   **{f"out_{t}": d / f"statistics/{t}.tsv" for t in STATISTICS})
    finally:
        logging.getLogger("prh").removeHandler(records)
        logging.getLogger("prh").setLevel(old_level)
    findings_step.run(dataset="toy", alignment=d / "alignment.tsv",
                      aggregates=d / "aggregates.tsv", out_md=d / "findings.md",
                      out_html=d / "report/findings.html", alpha=ALPHA, calibrated=True,
                      params=METRICS, modalities=MODALITIES, n_permutations=50,
                      statistics={t: d / f"statistics/{t}.tsv" for t in STATISTICS},
                      features=feats)
    return d, records.messages


def rows_of(d: Path) -> dict[str, list[dict]]:
    from prh.formats import statistics as st, tables

    return {"alignment.tsv": numbered(tables.read_alignment_tsv(d / "alignment.tsv")),
            "aggregates.tsv": numbered(tables.read_aggregates_tsv(d / "aggregates.tsv")),
            "statistics/intervals.tsv": numbered(st.read_intervals(d / "statistics/intervals.tsv")),
            "statistics/comparisons.tsv": numbered(st.read_comparisons(
                d / "statistics/comparisons.tsv")),
            "statistics/trend.tsv": numbered(st.read_trend(d / "statistics/trend.tsv"))}


REF = re.compile(r"\[([^\]:]+)(?::(\d+))?\]\(([^)#]+)(?:#L(\d+))?\)")
NUM = r"(-?[0-9.]+(?:e-?\d+)?)"


def statements(md: str) -> list[tuple[str, list[tuple[str, int | None]]]]:
    """(text, [(table, line or None)]) of every bullet of findings.md."""
    out = []
    for line in md.splitlines():
        if line.startswith("- "):
            refs = [(m[1], int(m[2]) if m[2] else None) for m in REF.finditer(line)]
            out.append((line[2:line.rfind(" ([")] if refs else line[2:], refs))
    return out


def close(quoted: str, value: str) -> bool:
    """A number as the page prints it (3 decimals, or 2-4 significant digits)
    is the table's value rounded."""
    q, v = float(quoted), float(value)
    return math.isclose(q, v, rel_tol=0.01, abs_tol=0.0006)


def close_p(quoted: str, value: str) -> bool:
    """A p-value as printed (2 significant digits) is the table's, rounded."""
    return math.isclose(float(quoted), float(value), rel_tol=0.051)


def test_every_statement_cites_rows_that_exist(run):
    d, _ = run
    md = (d / "findings.md").read_text()
    tables = rows_of(d)
    said = statements(md)
    assert len(said) > 20
    for text, refs in said:
        assert refs, f"no source: {text}"
        for table, line in refs:
            if table in tables and line is not None:
                assert 2 <= line <= len(tables[table]) + 1, (text, table, line)
            elif table not in tables:
                assert (d / table).exists() or table == "manifest.json", table
    # the markdown link target is the same table and line as its label
    for m in REF.finditer(md):
        assert m[1] == m[3] and m[2] == m[4], m.group(0)


def test_above_chance_statements_quote_their_rows(run):
    d, _ = run
    tables = rows_of(d)
    pat = re.compile(rf"(\S+) × (\S+): {NUM} \[{NUM}, {NUM}\] \(layers (\d+) \((\S+)\) × (\d+) "
                     rf"\((\S+)\)\), null mean {NUM}, tau {NUM}, p_bh = {NUM}: "
                     r"(above chance|not above chance)\.")
    checked = 0
    for text, refs in statements((d / "findings.md").read_text()):
        m = pat.fullmatch(text)
        if not m:
            continue
        (_, a_line), (_, i_line) = refs
        row = tables["alignment.tsv"][a_line - 2]
        iv = tables["statistics/intervals.tsv"][i_line - 2]
        assert (m[1], m[2]) == (row["model_x"], row["model_y"]) == (iv["model_x"], iv["model_y"])
        assert row["metric"] == iv["metric"] and iv["aggregate"] == "max" and iv["order"] == "xy"
        assert close(m[3], row["score"]) and close(m[4], iv["low"]) and close(m[5], iv["high"])
        assert (m[6], m[7], m[8], m[9]) == (row["layer_x"], row["layer_x_name"], row["layer_y"],
                                            row["layer_y_name"])
        assert close(m[10], row["null_mean"]) and close(m[11], row["tau"])
        assert close_p(m[12], row["p_bh"])
        assert (m[13] == "above chance") == (float(row["p_bh"]) <= ALPHA), text
        checked += 1
    # every calibrated pair of the two unsaturated metrics, each once
    assert checked == 2 * 8


def test_counts_of_pairs_above_chance_are_the_tables(run):
    d, _ = run
    rows = rows_of(d)["alignment.tsv"]
    md = (d / "findings.md").read_text()
    for metric in METRICS:
        mine = [r for r in rows if r["metric"] == metric and r["p_bh"]]
        k = sum(float(r["p_bh"]) <= ALPHA for r in mine)
        section = md.split(f"### {metric}\n", 1)[1]
        assert section.splitlines()[1].startswith(
            f"- {k} of {len(mine)} calibrated pairs are above chance (p_bh <= {pv(ALPHA)})")


def test_comparisons_quote_their_rows_and_only_significant_ones_are_called_so(run):
    d, _ = run
    tables = rows_of(d)
    pat = re.compile(rf"(\S+) minus (\S+)(?: with (\S+))?: {NUM} - {NUM} = {NUM} \[{NUM}, {NUM}\], "
                     rf"p_bh = {NUM}: (significant, (\S+) aligns more than (\S+)|not significant,"
                     r" the two cannot be told apart)\.")
    seen = {"significant": 0, "not": 0}
    for text, refs in statements((d / "findings.md").read_text()):
        m = pat.fullmatch(text)
        if not m:
            continue
        ((table, line),) = refs
        r = tables[table][line - 2]
        assert table == "statistics/comparisons.tsv" and r["aggregate"] == "max"
        a, b, c = ((r["a_x"], r["b_x"], r["a_y"]) if r["a_y"] == r["b_y"]
                   else (r["a_y"], r["b_y"], r["a_x"]))
        assert (m[1], m[2], m[3]) == (a, b, c)
        for got, col in zip(m.groups()[3:8], ("score_a", "score_b", "difference", "low",
                                              "high")):
            assert close(got, r[col]), (text, col, r[col])
        assert close_p(m[9], r["p_bh"])
        significant = float(r["p_bh"]) <= ALPHA
        assert m[10].startswith("significant") == significant, text
        if significant:
            assert (m[11], m[12]) == ((a, b) if float(r["difference"]) > 0 else (b, a))
        seen["significant" if significant else "not"] += 1
    # the saturated cycle_knn's 16 are counted, not listed
    assert seen["significant"] >= 1 and seen["not"] >= 1
    assert sum(seen.values()) == 2 * 16


def test_the_trend_verdict_follows_p_models_and_its_floor_from_the_model_count(run):
    d, _ = run
    tables = rows_of(d)
    said = statements((d / "findings.md").read_text())
    verdicts = [(t, refs) for t, refs in said if t.startswith("A trend ")]
    assert len(verdicts) == len(METRICS)
    for text, refs in verdicts:
        pooled = [tables["statistics/trend.tsv"][line - 2] for _, line in refs]
        assert {r["partner"] for r in pooled} == {"pooled"}
        assert {r["statistic"] for r in pooled} == {"spearman", "slope"}
        m = int(pooled[0]["n_models"])
        assert m == 4
        claimable = [r for r in pooled if float(r["p_value"]) <= ALPHA
                     and float(r["p_models"]) <= ALPHA]
        assert text.startswith("A trend can be claimed" if claimable else
                               "A trend cannot be claimed"), text
        assert f"cannot be below 1/{m}! = {pv(1 / math.factorial(m))}" in text
        for r in pooled:
            if float(r["p_models"]) > ALPHA:
                assert f"p_models = {pv(r['p_models'])} > {pv(ALPHA)}" in text


def test_three_models_cannot_claim_a_trend_whatever_their_p_values(tmp_path):
    rows = [{"modality": "vision", "metric": "cka", "aggregate": "max", "partner": "pooled",
             "statistic": s, "estimate": 0.9, "se": 0.01, "low": 0.88, "high": 0.92,
             "level": 0.95, "p_value": 1e-6, "p_models": 1 / 6, "n_models": 3,
             "models": "a,b,c", "competence": "1,2,3", "method": "jackknife",
             "n_resamples": 20} for s in ("spearman", "slope")]
    write_trend(tmp_path / "trend.tsv", dataset="toy", rows=rows)
    trend = numbered(read_trend(tmp_path / "trend.tsv"))
    info = RunInfo(dataset="toy", alpha=ALPHA)
    (sec,) = [s for s in findings(info, alignment=[], trend=trend)
              if s.title.startswith("Can a trend")]
    verdict = sec.subsections[0].statements[1].text
    assert orderings_floor(3) == pytest.approx(1 / 6)
    assert verdict.startswith("A trend cannot be claimed")
    assert "no trend over 3 models can be claimed: it takes at least 4" in verdict


def test_warnings_say_what_the_tables_show(run):
    d, log = run
    rows = rows_of(d)["alignment.tsv"]
    md = (d / "findings.md").read_text()
    warnings = md.split("## Warnings\n", 1)[1].split("\n## ", 1)[0]
    # saturated: computed from the scores, with the count of pairs at the ceiling
    at = sum(float(r["score"]) >= 0.99 for r in rows if r["metric"] == "cycle_knn")
    n = sum(r["metric"] == "cycle_knn" for r in rows)
    assert at == n == 16
    assert f"cycle_knn is saturated at k = 20: {at} of {n} pairs score within 1% of its " \
           "maximum 1" in warnings
    assert "mutual_knn is" not in warnings and "cka is" not in warnings
    # and the aggregate and statistics logs say so
    said = [m for m in log if m.startswith("cycle_knn is saturated")]
    assert len(said) == 2 and "its intervals, comparisons and trends say little" in said[1]
    # the one-layer model, and no other
    assert "glove has 1 layer (the other models 3 to 4)" in warnings
    assert not re.search(r"\bv\d has \d layer", warnings) and "lm has" not in warnings
    # the metrics whose intervals the coverage column calls conservative
    assert "The intervals of mutual_knn, cycle_knn are conservative" in warnings


def test_small_n_is_a_warning_below_the_measured_coverage(run):
    d, _ = run
    tables = {TABLES[k]: v for k, v in rows_of(d).items()}

    def warned(n):
        info = RunInfo(dataset="toy", alpha=ALPHA, n_samples=n, params=METRICS)
        return [s.text for s in findings(info, **tables)[0].statements]

    assert any(t.startswith("Small sample: N = 60 samples, below 256") for t in warned(60))
    assert not any(t.startswith("Small sample") for t in warned(1024))


def test_too_few_permutations_for_alpha_is_a_warning(run):
    d, _ = run
    tables = {TABLES[k]: v for k, v in rows_of(d).items()}
    info = RunInfo(dataset="toy", alpha=0.01, n_permutations=50, params=METRICS)
    texts = [s.text for s in findings(info, **tables)[0].statements]
    assert any(t.startswith("With 50 permutations no p-value can be below 1/51 = 0.02 > "
                            "alpha = 0.01") for t in texts)


def test_saturated_metric_is_left_out_of_the_disagreements(run):
    d, _ = run
    md = (d / "findings.md").read_text()
    part = md.split("## Where the metrics disagree\n", 1)[1]
    assert part.splitlines()[1].startswith("- cycle_knn is left out here: saturated")
    assert "by cycle_knn" not in part and "cycle_knn (p_bh" not in part


def test_uncalibrated_run_claims_nothing_about_chance(run, tmp_path):
    d, _ = run
    files = []
    for x, y in [("v1", "lm"), ("v2", "lm"), ("v3", "lm"), ("v1", "glove"), ("v2", "glove")]:
        files.append(tmp_path / f"{x}__{y}.h5")
        pair_scores(d / f"layer_cache/{x}.h5", d / f"layer_cache/{y}.h5", files[-1],
                    metrics={"mutual_knn": {"topk": 5}}, model_x=x, model_y=y, device="cpu",
                    calibration=None)
    aggregate(files, dataset="toy", models=["v1", "v2", "v3", "lm", "glove"],
              metrics=["mutual_knn"], out_h5=tmp_path / "a.h5", out_tsv=tmp_path / "a.tsv",
              out_aggregates_tsv=tmp_path / "agg.tsv")
    findings_step.run(dataset="toy", alignment=tmp_path / "a.tsv",
                      aggregates=tmp_path / "agg.tsv", out_md=tmp_path / "f.md",
                      out_html=tmp_path / "f.html", alpha=ALPHA, calibrated=False,
                      params={"mutual_knn": {"topk": 5}}, modalities=MODALITIES)
    md = (tmp_path / "f.md").read_text()
    assert "No score is tested against chance" in md
    assert not [t for t, _ in statements(md) if "above chance" in t or "significant" in t]
    assert "; not tested against chance)" in md
    # nothing claimed about what the findings were not given (N, layers)
    assert "- None: no metric is saturated or near it. (" in md
    assert "Calibration is off: no paired comparisons." in md
    assert "Calibration is off: the trend is not tested." in md
    assert "calibration off" in md.splitlines()[2]


def test_html_page_holds_the_same_statements(run):
    import html

    d, _ = run
    page = html.unescape((d / "report/findings.html").read_text())
    md = (d / "findings.md").read_text()
    said = statements(md)
    assert page.count("<li>") == len(said)
    for text, refs in said:
        assert text in page
        for table, line in refs:
            assert (f"{table}:{line}" if line else table) in page
    info = RunInfo(dataset="toy", alpha=ALPHA)
    assert intro(info, [], []) in to_markdown([], title="t", intro_text=intro(info, [], []))


def test_report_table_pages_hold_every_row(run, tmp_path):
    d, _ = run
    outs = {t: tmp_path / f"{t}.html" for t in ("alignment", "comparisons")}
    report_tables.run({"alignment": d / "alignment.tsv",
                       "comparisons": d / "statistics/comparisons.tsv"}, outs, dataset="toy")
    for name, tsv in (("alignment", "alignment.tsv"), ("comparisons", "statistics/comparisons.tsv")):
        page = outs[name].read_text()
        lines = (d / tsv).read_text().splitlines()
        assert page.count("<tr>") == len(lines)  # the header row and one per TSV row
        for i, line in enumerate(lines[1:], 2):
            assert _cell(str(i)) + "".join(_cell(v) for v in line.split("\t")) in page
        assert "<script>" in page and 'id="filter"' in page


def _cell(v: str) -> str:
    try:
        float(v)
    except ValueError:
        return f"<td>{v}</td>"
    return f'<td class="n">{v}</td>'


def test_a_chance_level_near_the_maximum_is_near_saturation():
    """cycle_knn with k = 10 on 80 samples (the default zoo): no pair at 1 for
    most pairs, but the permutation null's mean is 0.78 of the scale."""
    def row(i, metric, score, null_mean):
        return {"dataset": "toy", "model_x": f"v{i}", "model_y": "lm", "metric": metric,
                "score": str(score), "layer_x": "0", "layer_y": "0", "layer_x_name": "",
                "layer_y_name": "", "p_value": "0.01", "calibrated": "0.1",
                "null_mean": str(null_mean), "null_std": "0.01", "tau": "0.8", "p_bh": "0.01"}

    scores = [0.8125, 0.85, 0.875, 0.9125, 0.9125, 0.925, 0.9875, 1.0]
    rows = numbered([row(i, "cycle_knn", sc, 0.70 + 0.02 * i) for i, sc in enumerate(scores)]
                    + [row(i, "mutual_knn", 0.3, 0.15) for i in range(8)])
    info = RunInfo(dataset="toy", alpha=ALPHA, n_samples=80,
                   params={"cycle_knn": {"topk": 10}, "mutual_knn": {"topk": 10}})
    texts = [st.text for st in findings(info, alignment=rows)[0].statements]
    median = float(np.median([0.70 + 0.02 * i for i in range(8)]))
    assert (f"cycle_knn is near saturation at N = 80, k = 10: chance alone (the median "
            f"permutation-null mean, {median:.3g}) is {median:.0%} of its maximum 1, so its "
            "scores (0.812 to 1) have little room above chance") in texts[0]
    assert not any("mutual_knn" in t for t in texts)
    # its pairs are still listed: the permutation test stands
    md = to_markdown(findings(info, alignment=rows), title="t", intro_text="")
    assert "- v0 × lm: 0.812" in md


def test_a_trend_is_claimed_only_where_both_tests_pass(tmp_path):
    base = {"modality": "vision", "metric": "cka", "aggregate": "max", "partner": "pooled",
            "se": 0.01, "level": 0.95, "n_models": 4, "models": "a,b,c,d",
            "competence": "1,2,3,4", "method": "jackknife", "n_resamples": 20}
    rows = [{**base, "statistic": "spearman", "estimate": 0.8, "low": 0.2, "high": 1,
             "p_value": 0.01, "p_models": 2 / 24},
            {**base, "statistic": "slope", "estimate": 0.002, "low": 0.001, "high": 0.003,
             "p_value": 0.001, "p_models": 1 / 24}]
    write_trend(tmp_path / "trend.tsv", dataset="toy", rows=rows)
    trend = numbered(read_trend(tmp_path / "trend.tsv"))
    (sec,) = [s for s in findings(RunInfo(dataset="toy", alpha=ALPHA), alignment=[],
                                  trend=trend) if s.title.startswith("Can a trend")]
    verdict = sec.subsections[0].statements[1].text
    assert verdict.startswith("A trend can be claimed for the slope (0.002, p = 0.001, "
                              "p_models = 0.042, the smallest possible). Not for the "
                              "Spearman's p_models = 0.083 > 0.05")
    assert "its p_models is at least 2/4! = 0.083 > 0.05" in verdict


def _family_section(md: str) -> list[tuple[str, list[tuple[str, int | None]]]]:
    part = md.split("## Whether the measure families agree\n", 1)[1].split("\n## ", 1)[0]
    return statements(part)


def test_family_agreement_is_computed_from_the_alignment_rows(run):
    from scipy.stats import spearmanr

    d, _ = run
    rows = rows_of(d)["alignment.tsv"]
    said = _family_section((d / "findings.md").read_text())
    # the saturated cycle_knn is left out; local is mutual_knn alone, global cka
    assert said[0][0].startswith("cycle_knn is left out here: saturated")

    def score(metric):
        return {frozenset((r["model_x"], r["model_y"])): float(r["score"]) for r in rows
                if r["metric"] == metric}
    local, glob = score("mutual_knn"), score("cka")
    keys = sorted(set(local) & set(glob), key=sorted)
    rho = spearmanr([glob[k] for k in keys], [local[k] for k in keys])[0]
    ranking = [t for t, _ in said if "families rank the" in t]
    assert len(ranking) == 1
    m = re.search(rf"rank the (\d+) model pairs (alike|differently): Spearman {NUM}", ranking[0])
    assert ranking[0].startswith("The global (cka) and local (mutual_knn) families")
    assert int(m[1]) == len(keys) == 8 and close(m[3], str(rho))
    assert (m[2] == "alike") == (rho >= 0.5)
    # above chance: the same pairs by both families, counted from p_bh
    above = {met: {frozenset((r["model_x"], r["model_y"])) for r in rows
                   if r["metric"] == met and float(r["p_bh"]) <= ALPHA} for met in ("cka", "mutual_knn")}
    same = sum((k in above["cka"]) == (k in above["mutual_knn"]) for k in keys)
    chance = [t for t, _ in said if "call the same model pairs above chance" in t]
    assert chance and chance[0].startswith(f"The global and local families call the same model "
                                           f"pairs above chance on {same} of {len(keys)} pairs")
    # the verdict counts the comparisons that found the families alike
    verdicts = [(m[2] == "alike"), same == len(keys)]
    word = "agree" if all(verdicts) else "do not agree"
    verdict = [t for t, _ in said if t.startswith("The measure families")]
    assert verdict == [f"The measure families {word} on this run: {sum(verdicts)} of 2 comparisons "
                       "below (rankings of the model pairs, pairs above chance) find them alike."]
    # every statement cites alignment.tsv rows of the metrics it names
    for text, refs in said:
        assert refs and all(t == "alignment.tsv" for t, _ in refs), text
        for _, line in refs:
            if line is not None:
                assert rows[line - 2]["metric"] in ("cka", "mutual_knn", "cycle_knn"), text


def test_one_family_cannot_be_compared():
    from prh.findings.families import family_agreement

    info = RunInfo(dataset="toy", alpha=ALPHA)
    rows = [{"metric": m, "model_x": "a", "model_y": y, "score": "0.5", "p_bh": "0.01",
             "_line": i + 2} for i, (m, y) in enumerate([("mutual_knn", "b"), ("jaccard_knn", "b")])]
    sec = family_agreement(info, rows, ["mutual_knn", "jaccard_knn"])
    assert [s.text for s in sec.statements] == [
        "The families cannot be compared: only the local (mutual_knn, jaccard_knn) family is "
        "measured on this run; configure a metric of another family (docs/metrics.md, section 6)."]


def test_families_that_rank_pairs_oppositely_do_not_agree():
    from prh.findings.families import family_agreement
    from prh.report_html import LINE

    info = RunInfo(dataset="toy", alpha=ALPHA, calibrated=False)
    rows, line = [], 2
    for i in range(6):
        for metric, s in (("cka", i), ("procrustes", i + 0.5), ("ridge_r2", -i)):
            rows.append({"metric": metric, "model_x": f"v{i}", "model_y": "t", "score": str(s),
                         "p_bh": "", LINE: line})
            line += 1
    texts = [s.text for s in family_agreement(info, rows, ["cka", "procrustes", "ridge_r2"]).statements]
    assert texts[0] == ("The measure families do not agree on this run: 0 of 1 comparisons below "
                        "(rankings of the model pairs) find them alike.")
    assert texts[1] == ("The global (cka, procrustes) and predictive (ridge_r2) families rank the 6 "
                        "model pairs differently: Spearman -1 between their mean ranks "
                        "(below 0.5).")
