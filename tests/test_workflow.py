"""The Snakemake workflow, run for real on a tiny config in a copy of the repository.

One run builds everything (``tiny_run`` in conftest.py: emoji, 48 samples,
three cheap models, three metrics) once per test process; the tests then ask
Snakemake what it would redo after an edit (``--summary`` lists every output
with its plan) and check that exactly the right jobs are planned, and run
incremental reruns for real on copies of it (``tiny_run_to_change``). Tests
that need no results run on fresh copies (dry runs only).
"""

from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

# copy_workflow, smk, pending and write_config are imported from here by other
# test modules too
from workflow_helpers import (BIN, REPO, TINY, copy_run, copy_workflow, pending, planned_outputs,
                              smk, write_config)

pytestmark = pytest.mark.slow

D = "results/emoji"
MODELS = sorted(TINY["models"])
PAIRS = ["efficientnet_lite0__glove_6b_50d", "efficientnet_lite0__minilm_l6",
         "glove_6b_50d__minilm_l6"]
AGGREGATE = {f"{D}/alignment.h5", f"{D}/alignment.tsv", f"{D}/aggregates.tsv"}
SAMPLE = {f"{D}/sample_size.tsv"}  # depends on the layer caches of the cross-modal pairs' models
SAMPLE |= {f"{D}/plots/sample_size.{ext}" for ext in ("png", "pdf")}  # and its figure
# intervals, comparisons, trend: the layer caches of every calibrated pair's models
STATISTICS = {f"{D}/statistics/{t}.tsv" for t in ("intervals", "comparisons", "trend")}
CALIBRATED_PAIRS = ["efficientnet_lite0__glove_6b_50d", "efficientnet_lite0__minilm_l6"]
# Plot-stage outputs (rules/plots.smk), PNG and PDF each: heatmaps (and
# calibrated ones when calibration is on), alignment vs competence, layer x
# layer figures of the cross-modal pairs, metric agreement; and the report's
# copy of the TSV.
_CAL = bool(TINY.get("calibration")) and TINY["calibration"].get("enabled", True) is not False


def figures(*stems: str) -> set[str]:
    return {f"{D}/plots/{s}.{ext}" for s in stems for ext in ("png", "pdf")}


def layer_figures(*pairs: str) -> set[str]:
    return figures(*(f"layers/{p}/{m}" for p in pairs for m in ("mutual_knn", "cka")))


HEATMAPS = figures(*(f"heatmap_{m}{c}" for m in TINY["metrics"]
                     for c in ("", "_calibrated")[: 1 + _CAL]))
COMPETENCE = figures("competence_mutual_knn") | (
    figures("competence_raw_vs_calibrated_mutual_knn") if _CAL else set())
# the sample-size figure follows sample_size.tsv, not the aggregate
SAMPLE_FIGURE = figures("sample_size") if _CAL and TINY["calibration"].get("sample_sizes") else set()
FIGURES = (HEATMAPS | COMPETENCE | figures("metric_agreement") | SAMPLE_FIGURE
           | layer_figures("efficientnet_lite0__glove_6b_50d", "efficientnet_lite0__minilm_l6"))
# the report's pages: the findings and the sortable tables, which read the
# aggregate's and statistics' tables and the scorecards
REPORT = {f"{D}/findings.md", f"{D}/report/findings.html"} | {
    f"{D}/report/{t}.html" for t in ("alignment", "aggregates", "intervals", "comparisons",
                                       "trend", "scorecards")}
# everything downstream of the aggregate
PLOTS = (FIGURES - SAMPLE_FIGURE) | REPORT | {
    f"{D}/report/{t}.tsv" for t in ("alignment", "aggregates")[: 1 + _CAL]}


def scorecards(*models: str) -> set[str]:
    """A model's scorecard follows its pair files (the report's scorecards page reads it)."""
    return {f"{D}/scorecards/{m}.{ext}" for m in models for ext in ("tsv", "png")}


SCORECARDS = scorecards(*MODELS)
# the report's table pages, one job; the scorecards page follows the
# scorecards, whose figures follow the plot settings and prh/plots
TABLE_PAGES = REPORT - {f"{D}/findings.md", f"{D}/report/findings.html"}


def variant(**changes) -> dict:
    """TINY with nested keys replaced: variant(models__minilm_l6__batch_size=8)."""
    cfg = copy.deepcopy(TINY)
    for key, value in changes.items():
        *path, last = key.split("__")
        node = cfg
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def model_outputs(model: str) -> set[str]:
    return {f"{D}/features/{model}.h5", f"{D}/layer_cache/{model}.h5"} | {
        f"{D}/pairs/{p}.h5" for p in PAIRS if model in p.split("__")}


@pytest.fixture
def built(tiny_run) -> Path:
    return tiny_run


def _plan_with(wd: Path, config: dict) -> set[str]:
    return pending(wd, "--configfile", str(write_config(wd, config, "variant.yaml")))


# ---------------------------------------------------------------------------
# after one full run


def test_full_run_writes_every_output(built):
    for m in MODELS:
        with h5py.File(built / f"{D}/features/{m}.h5", "r") as f:
            assert f["sample_ids"].shape == (48,)
        assert (built / f"{D}/layer_cache/{m}.h5").is_file()
        assert (built / f"logs/emoji/embed/{m}.log").is_file()
        assert (built / f"logs/emoji/embed/{m}.benchmark.tsv").is_file()
    for p in PAIRS:
        assert (built / f"{D}/pairs/{p}.h5").is_file()
    with open(built / f"{D}/alignment.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    # symmetric metrics once per unordered pair, cycle_knn in both orders
    assert len(rows) == 3 + 6 + 3
    assert {r["metric"] for r in rows} == set(TINY["metrics"])
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    # calibration: cross-modal pairs only (calibration.pairs defaults to cross_modal)
    for r in rows:
        cross = "__".join(sorted((r["model_x"], r["model_y"]))) in CALIBRATED_PAIRS
        assert bool(r["p_value"]) == bool(r["p_bh"]) == cross, r
        if cross:
            assert 1 / 21 - 1e-6 <= float(r["p_value"]) <= 1 and 0 <= float(r["calibrated"]) <= 1
    with open(built / f"{D}/sample_size.tsv") as fh:
        curve = list(csv.DictReader(fh, delimiter="\t"))
    assert sorted({(r["model_x"], r["model_y"], int(r["n"])) for r in curve}) == [
        (x, y, n) for x, y in (p.split("__") for p in CALIBRATED_PAIRS) for n in (24, 48)]
    # the statistics of the calibrated pairs: intervals centred on alignment.tsv's
    # scores; MiniLM minus GloVe for the one vision model; no trend (one vision
    # model, no competence)
    from prh.formats.statistics import read_comparisons, read_intervals, read_trend

    iv = read_intervals(built / f"{D}/statistics/intervals.tsv")
    scores = {(r["model_x"], r["model_y"], r["metric"]): float(r["score"]) for r in rows}
    mine = [r for r in iv if r["aggregate"] == "max" and r["order"] == "xy"]
    assert {(r["model_x"], r["model_y"], r["metric"]) for r in mine} == set(scores) - {
        k for k in scores if "__".join(sorted(k[:2])) not in CALIBRATED_PAIRS}
    for r in mine:
        assert abs(float(r["score"]) - scores[r["model_x"], r["model_y"], r["metric"]]) < 1e-5
        assert float(r["low"]) <= float(r["score"]) <= float(r["high"])
    comp = read_comparisons(built / f"{D}/statistics/comparisons.tsv")
    assert {(r["a_x"], r["b_x"], r["a_y"]) for r in comp} == {
        ("minilm_l6", "glove_6b_50d", "efficientnet_lite0")}
    assert len(comp) == 3 * 2  # metrics x aggregates
    assert read_trend(built / f"{D}/statistics/trend.tsv") == []
    with h5py.File(built / f"{D}/alignment.h5", "r") as f:
        assert list(f.attrs["models"]) == list(TINY["models"])
        assert f["cka/score"].shape == (3, 3)
    for fig in FIGURES:
        assert (built / fig).read_bytes()[:4] == (b"\x89PNG" if fig.endswith(".png") else b"%PDF")
    assert (built / f"{D}/report/alignment.tsv").read_text() == (
        built / f"{D}/alignment.tsv").read_text()
    # layer names next to the indices, those of the features files
    from prh.formats.features import read_metadata

    names = {m: read_metadata(built / f"{D}/features/{m}.h5")["layer_names"] for m in MODELS}
    for r in rows:
        assert r["layer_x_name"] == names[r["model_x"]][int(r["layer_x"])]
        assert r["layer_y_name"] == names[r["model_y"]][int(r["layer_y"])]
    # the findings and the report's pages (their content: test_findings.py,
    # test_report_browser.py)
    for page in REPORT:
        assert (built / page).stat().st_size > 0, page
    assert "# Findings: emoji" in (built / f"{D}/findings.md").read_text()
    assert not list(built.glob("results/**/*.tmp"))


def test_report_renders_every_caption(tiny_report):
    # captions read the config with its defaults and the rules' params
    assert tiny_report.stat().st_size > 100_000


def test_dry_run_after_full_run_has_nothing_to_do(built):
    res = smk(built, "-n")
    assert "Nothing to be done" in res.stdout + res.stderr
    assert pending(built) == set()


def test_pair_blocks_score_as_pair_jobs_and_rerun_only_the_blocks_of_a_changed_model(
        built, tmp_path):
    """alignment.pair_block: 2 on the built run's copy. Runs of two models in
    config order: [efficientnet_lite0, minilm_l6], [glove_6b_50d]; block 0-0
    holds lite0 x minilm, block 0-1 both pairs with glove."""
    wd = copy_run(built, tmp_path / "blocked")
    blocked = variant(alignment={**TINY["alignment"], "pair_block": 2})
    write_config(wd, blocked)
    # The copy's library inputs have other absolute paths than those recorded,
    # which only the "input" trigger sees: leave it out here, and force the
    # aggregate, which that trigger reruns in place when the pair files change.
    triggers = ("--rerun-triggers", "mtime", "params", "code", "software-env")
    blocks = {f"{D}/pair_blocks/{b}.h5" for b in ("0-0", "0-1")}
    # the embeddings and layer caches stay; only the blocks and what reads them run
    assert pending(wd, *triggers, "--forcerun", "aggregate") == (
        blocks | AGGREGATE | PLOTS | SCORECARDS)
    # run to the aggregate: the figures and scorecards read only alignment.h5,
    # which must equal the pair jobs' one
    t0 = time.perf_counter()
    smk(wd, "align", *triggers, "--forcerun", "aggregate")
    print(f"blocked rerun {time.perf_counter() - t0:.1f}s")
    for name in ("alignment.tsv", "aggregates.tsv"):
        assert (wd / D / name).read_text() == (built / D / name).read_text(), name
    with h5py.File(wd / D / "alignment.h5") as got, h5py.File(built / D / "alignment.h5") as want:
        names, got_names = [], []
        want.visit(names.append)
        got.visit(got_names.append)
        assert names and sorted(got_names) == sorted(names)
        for name in names:
            if isinstance(want[name], h5py.Dataset):
                np.testing.assert_array_equal(got[name][...], want[name][...], err_msg=name)
    assert pending(wd, "align", *triggers) == set()
    # a changed model reruns the blocks it is in, and not the others
    glove = {f"{D}/features/glove_6b_50d.h5", f"{D}/layer_cache/glove_6b_50d.h5"}
    changed = variant(models__glove_6b_50d__batch_size=5, alignment=blocked["alignment"])
    assert pending(wd, *triggers, "--configfile", str(write_config(wd, changed, "v.yaml"))) == (
        glove | {f"{D}/pair_blocks/0-1.h5"} | AGGREGATE | SAMPLE | STATISTICS | PLOTS
        | SCORECARDS)
    # and a model added at the end joins the last run: only blocks with it run
    added = variant(models__glove_b={"source": "glove_6b_50d", "modality": "language",
                                     "batch_size": 7}, alignment=blocked["alignment"])
    assert pending(wd, *triggers, "--configfile", str(write_config(wd, added, "v.yaml"))) == (
        {f"{D}/features/glove_b.h5", f"{D}/layer_cache/glove_b.h5", f"{D}/pair_blocks/0-1.h5",
         f"{D}/pair_blocks/1-1.h5"} | AGGREGATE | SAMPLE | STATISTICS | PLOTS
        | layer_figures("efficientnet_lite0__glove_b") | SCORECARDS | scorecards("glove_b"))


def test_model_setting_change_reruns_that_model_its_pairs_and_the_aggregate(built):
    planned = _plan_with(built, variant(models__minilm_l6__batch_size=8))
    assert planned == (model_outputs("minilm_l6") | AGGREGATE | SAMPLE | STATISTICS | PLOTS
                       | SCORECARDS)


def test_scheduling_only_settings_rerun_nothing(built):
    cfg = variant(models__minilm_l6__threads=2, models__minilm_l6__mem_mb=9000,
                  models__minilm_l6__runtime=5)
    assert _plan_with(built, cfg) == set()


def test_competence_and_plot_settings_rerun_only_figures(built):
    cfg = variant(models__efficientnet_lite0__competence=75.1,
                  models__efficientnet_lite0__competence_source="ImageNet top-1 %")
    # the trend test reads competence too, and the report's pages read its tables
    assert _plan_with(built, cfg) == COMPETENCE | STATISTICS | REPORT
    assert _plan_with(built, variant(plots={"dpi": 100})) == FIGURES | SCORECARDS | TABLE_PAGES
    cka_only = {p for p in layer_figures("efficientnet_lite0__glove_6b_50d",
                                         "efficientnet_lite0__minilm_l6") if "/cka." in p}
    assert _plan_with(built, variant(plots={"layer_metrics": ["cka"]})) == cka_only


def test_metric_parameter_change_reruns_no_embedding(built):
    # a kernel parameter is applied at pair time: layer caches stay
    planned = _plan_with(built, variant(metrics__cka={"kernel": "rbf", "sigma": 0.5}))
    assert planned == ({f"{D}/pairs/{p}.h5" for p in PAIRS} | AGGREGATE | STATISTICS | PLOTS
                       | SCORECARDS)
    # a new k changes what the layer caches hold, but still no embedding
    planned = _plan_with(built, variant(metrics__mutual_knn={"topk": 4}))
    assert planned == ({f"{D}/layer_cache/{m}.h5" for m in MODELS}
                       | {f"{D}/pairs/{p}.h5" for p in PAIRS} | AGGREGATE | SAMPLE | STATISTICS | PLOTS
                       | SCORECARDS)


def test_calibration_settings_rerun_only_what_they_change(built):
    # the null's size: calibrated (cross-modal) pairs only, never layer caches or embeddings
    planned = _plan_with(built, variant(calibration__n_permutations=25))
    assert planned == ({f"{D}/pairs/{p}.h5" for p in CALIBRATED_PAIRS} | AGGREGATE | PLOTS
                       | SCORECARDS)
    # the sample-size curve's sizes: that table and its figure
    planned = _plan_with(built, variant(calibration__sample_sizes=[16, 48]))
    assert planned == SAMPLE | figures("sample_size")


def test_adding_a_model_adds_only_its_jobs(built):
    cfg = variant(models__glove_b={"source": "glove_6b_50d", "modality": "language",
                                   "batch_size": 7})
    new_pairs = {"efficientnet_lite0__glove_b", "glove_6b_50d__glove_b", "glove_b__minilm_l6"}
    planned = _plan_with(built, cfg)
    assert planned == ({f"{D}/features/glove_b.h5", f"{D}/layer_cache/glove_b.h5"}
                       | {f"{D}/pairs/{p}.h5" for p in new_pairs} | AGGREGATE | SAMPLE | STATISTICS | PLOTS
                       | layer_figures("efficientnet_lite0__glove_b") | SCORECARDS
                       | scorecards("glove_b"))


@pytest.mark.parametrize("module, expected", [
    ("prh/metrics.py", "alignment"),
    ("prh/formats/layer_cache.py", "alignment"),
    ("prh/steps/pair_scores.py", "pairs"),
    ("prh/formats/tables.py", "aggregate"),
    ("prh/plots/heatmaps.py", "plots"),
    ("prh/models/language.py", "embedding"),
    ("prh/steps/embed.py", "embedding"),
    ("prh/datasets/manifest.py", "everything"),
])
def test_editing_a_library_module_reruns_the_stages_that_use_it(built, module, expected):
    # Snakemake ignores a newer mtime when the content checksum is unchanged,
    # so edit for real (a comment), then put the file back as it was.
    path = built / module
    st, text = path.stat(), path.read_text()
    path.write_text(text + "\n# edited\n")
    try:
        planned = pending(built)
    finally:
        path.write_text(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    align = ({f"{D}/layer_cache/{m}.h5" for m in MODELS} | {f"{D}/pairs/{p}.h5" for p in PAIRS}
             | AGGREGATE | SAMPLE | STATISTICS | PLOTS | SCORECARDS)
    embedding = {f"{D}/features/{m}.h5" for m in MODELS} | align
    assert planned == {
        "pairs": {f"{D}/pairs/{p}.h5" for p in PAIRS} | AGGREGATE | PLOTS | SCORECARDS,
        # the layer figures read pair files, not the aggregate's outputs
        "aggregate": AGGREGATE | PLOTS - layer_figures(*CALIBRATED_PAIRS),
        "alignment": align,
        "plots": FIGURES | SCORECARDS | TABLE_PAGES,
        "embedding": embedding,
        "everything": embedding | {f"{D}/manifest.json"},
    }[expected]


def test_scorecard_of_a_features_file_runs_only_its_jobs_and_equals_the_original(
        tiny_run_to_change):
    """A copy of minilm_l6's features brought as a file: source: asking for its
    scorecard plans its import, layer cache, pairs and the scorecard only, and its
    rows equal minilm_l6's own scorecard."""
    import numpy as np

    built = tiny_run_to_change

    with h5py.File(built / f"{D}/features/minilm_l6.h5", "r") as f:
        ids = [s.decode() for s in f["sample_ids"][...]]
        layers = {f"layer{k}": f["feats"][k][...] for k in sorted(f["feats"])}
    np.savez(built / "mine.npz", sample_ids=np.array(ids), **layers)
    cfg = variant(models__mine={"source": "file:mine.npz", "modality": "language"})
    path = str(write_config(built, cfg, "variant.yaml"))
    target = f"{D}/scorecards/mine.tsv"
    planned = planned_outputs(smk(built, "-n", target, "--configfile", path))
    new_pairs = {"efficientnet_lite0__mine", "glove_6b_50d__mine", "mine__minilm_l6"}
    assert planned == ({f"{D}/features/mine.h5", f"{D}/layer_cache/mine.h5", target}
                       | {f"{D}/pairs/{p}.h5" for p in new_pairs})
    # minilm_l6's own scorecard is from the full run (the report reads every scorecard)
    smk(built, target, "--configfile", path)
    from prh.formats.scorecard import read_scorecard

    mine = {(r["metric"], r["partner"]): r for r in read_scorecard(built / target)}
    orig = {(r["metric"], r["partner"]): r
            for r in read_scorecard(built / f"{D}/scorecards/minilm_l6.tsv")}
    assert (built / f"{D}/scorecards/mine.png").read_bytes()[:4] == b"\x89PNG"
    assert mine[("cka", "minilm_l6")]["score"] == "1"
    for (metric, partner), r in mine.items():
        if partner == "minilm_l6":
            continue
        o = orig[(metric, partner)]
        for col in ("score", "p_value", "p_bh", "calibrated"):
            assert (r[col] == o[col] == "") or abs(float(r[col]) - float(o[col])) <= 1e-6, col
    # the same ranking of the shared partners (mine also ranks minilm_l6, its copy)
    for metric in TINY["metrics"]:
        def ranked(card):
            return sorted((int(r["rank"]), p) for (m, p), r in card.items()
                          if m == metric and p != "minilm_l6")
        assert [p for _, p in ranked(mine)] == [p for _, p in ranked(orig)], metric
    # the original models' outputs were not touched
    assert pending(built) == set()


def test_incremental_rerun_for_real_touches_only_the_changed_model(tiny_run_to_change):
    built = tiny_run_to_change
    before = {p.relative_to(built).as_posix(): p.stat().st_mtime_ns
              for p in (built / D).rglob("*") if p.is_file()}
    cfg = variant(models__glove_6b_50d__batch_size=5)
    res = smk(built, "--configfile", str(write_config(built, cfg, "variant.yaml")))
    after = {p.relative_to(built).as_posix(): p.stat().st_mtime_ns
             for p in (built / D).rglob("*") if p.is_file()}
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == (model_outputs("glove_6b_50d") | AGGREGATE | SAMPLE | STATISTICS | PLOTS
                       | SCORECARDS), res.stderr[-3000:]
    assert pending(built, "--configfile", str(built / "variant.yaml")) == set()


# ---------------------------------------------------------------------------
# fresh copies: targets, bad input, the paper config


@pytest.fixture
def fresh(workflow_copy) -> Path:
    return workflow_copy()


def test_single_output_target_builds_only_what_it_needs(fresh):
    res = smk(fresh, "-n", f"{D}/features/glove_6b_50d.h5")
    assert planned_outputs(res) == {f"{D}/manifest.json", f"{D}/features/glove_6b_50d.h5"}
    res = smk(fresh, "-n", f"{D}/pairs/glove_6b_50d__minilm_l6.h5")
    assert planned_outputs(res) == {f"{D}/manifest.json"} | {
        f"{D}/{kind}/{m}.h5" for kind in ("features", "layer_cache") for m in ("glove_6b_50d", "minilm_l6")
    } | {f"{D}/pairs/glove_6b_50d__minilm_l6.h5"}


def test_stage_targets(fresh):
    embed = planned_outputs(smk(fresh, "-n", "embed"))
    assert embed == {f"{D}/manifest.json"} | {f"{D}/features/{m}.h5" for m in MODELS}
    align = planned_outputs(smk(fresh, "-n", "align"))
    assert f"{D}/alignment.h5" in align and not any("plots/" in p for p in align)
    everything = planned_outputs(smk(fresh, "-n"))
    assert planned_outputs(smk(fresh, "-n", "plots")) == everything
    assert f"{D}/plots/heatmap_mutual_knn.png" in everything


@pytest.mark.parametrize("change, words", [
    ({"models__minilm_l6__modality": "audio"}, ["modality", "audio"]),
    ({"datasets__emoji__n_sample": 48}, ["n_sample"]),
    ({"metrics__cka": {"kernel": "linear"}}, ["cka", "linear"]),
    ({"metrics__mutual_knn": {"topk": 0}}, ["mutual_knn", "topk"]),
    ({"models": {**TINY["models"], "bad__name": {"source": "glove_6b_50d",
                                                 "modality": "language"}}}, ["bad__name"]),
])
def test_invalid_config_stops_before_any_job_naming_the_key(fresh, change, words):
    cfg = variant(**change)
    write_config(fresh, cfg)
    res = smk(fresh, check=False)
    msg = res.stdout + res.stderr
    assert res.returncode != 0
    assert "config: " in msg
    for w in words:
        assert w in msg, msg[-3000:]
    assert not (fresh / "results").exists() and not (fresh / "logs").exists()


def test_unknown_model_stops_before_any_job(fresh):
    write_config(fresh, variant(models__minilm_l6__source="minilm_l7"))
    res = smk(fresh, check=False)
    assert res.returncode != 0
    assert "models.minilm_l6.source: unknown model 'minilm_l7'" in res.stdout + res.stderr
    assert not (fresh / "results").exists()
    # a vision model declared as language is caught the same way
    write_config(fresh, variant(models__minilm_l6__source="efficientnet_lite1"))
    res = smk(fresh, check=False)
    assert res.returncode != 0
    assert "efficientnet_lite1 is a vision model" in res.stdout + res.stderr


def test_failing_embedding_leaves_no_output_and_others_finish(fresh):
    # two language models: calibration.pairs all, since no pair is cross-modal
    cfg = variant(calibration__pairs="all", models={
        "glove_6b_50d": {"source": "glove_6b_50d", "modality": "language"},
        # a local folder that holds no model: the hub check passes it, the job fails
        "broken": {"source": "hf:./no-such-model", "modality": "language"},
    })
    (fresh / "no-such-model").mkdir()
    write_config(fresh, cfg)
    res = smk(fresh, "embed", "--keep-going", check=False)
    assert res.returncode != 0
    assert (fresh / f"{D}/features/glove_6b_50d.h5").is_file()
    assert not (fresh / f"{D}/features/broken.h5").exists()
    assert list((fresh / f"{D}/features").iterdir()) == [fresh / f"{D}/features/glove_6b_50d.h5"]
    log = (fresh / "logs/emoji/embed/broken.log").read_text()
    assert "error:" in log and "no-such-model" in log


def test_uncached_hub_model_stops_the_run_before_any_job(fresh):
    cfg = variant(models__vit={"source": "timm:prh_tests_no_such_vit"})
    write_config(fresh, cfg)
    t0 = time.perf_counter()
    res = smk(fresh, check=False)  # HF_HUB_OFFLINE=1 (see smk)
    msg = res.stdout + res.stderr
    assert res.returncode != 0 and time.perf_counter() - t0 < 60
    assert "hub model(s) not in the local cache" in msg and "vit (timm/prh_tests_no_such_vit)" in msg
    assert msg.count("hub model(s) not in the local cache") == 1
    assert not (fresh / "results").exists()
    assert f"{D}/features/vit.h5" in planned_outputs(smk(fresh, "-n"))  # planning still works


def test_paper_config_dry_run_with_slurm_profile_lists_every_job(fresh):
    res = smk(fresh, "-n", "--workflow-profile", "profiles/slurm",
              "--configfile", "config/paper.yaml", "--replace-workflow-config")
    out = res.stdout + res.stderr
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["embed_model"] == 29  # 12 LLMs + 17 ViTs
    assert counts["layer_cache"] == 29
    assert counts["pair_scores"] == 12 * 17  # language x vision
    assert counts["prepare_dataset"] == counts["aggregate"] == counts["heatmaps"] == 1
    assert counts["competence"] == counts["layer_heatmaps"] == counts["metric_agreement"] == 1
    assert "Group job pairs" in out  # pair jobs batched into SLURM submissions
    assert "threads: 8" in out  # the local profile's 2 cores do not cap cluster jobs
    assert "gpu=4" in out  # llama-65b
    # every job without a GPU fits the profile's CPU partition (24 h, 64 GB) and
    # goes to it; GPU jobs to the GPU partition
    jobs = job_resources(out)
    assert len(jobs) == counts["total"]
    for rule, r in jobs:
        if r.get("gpu", "0") == "0":
            assert r["slurm_partition"] == "cpu", (rule, r)
            assert int(r["runtime"]) <= 1440 and int(r["mem_mb"]) <= 64000, (rule, r)
        else:
            assert r["slurm_partition"] == "gpu", (rule, r)
    assert "prh: plan: 264 jobs (embedding and alignment)" in out and "CPU-hours" in out


def job_resources(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("rule ") and s.endswith(":"):
            rule = s[5:-1]
        elif s.startswith("resources: ") and rule:
            pairs = (kv.split("=", 1) for kv in s[len("resources: "):].split(", ") if "=" in kv)
            jobs.append((rule, dict(pairs)))
            rule = None
    return jobs


def test_default_config_with_slurm_profile_keeps_cpu_jobs_off_the_gpu_partition(fresh):
    res = smk(fresh, "-n", "--workflow-profile", "profiles/slurm")
    jobs = job_resources(res.stdout + res.stderr)
    embeds = [r for rule, r in jobs if rule == "embed_model"]
    assert len(embeds) == len(MODELS)
    for rule, r in jobs:
        assert r.get("gpu", "0") == "0" and r["slurm_partition"] == "cpu", (rule, r)


def test_a_request_over_the_limits_stops_the_plan_in_one_line(fresh):
    res = smk(fresh, "-n", "--config", "resources={'max_mem_mb': 1000}", check=False)
    msg = res.stdout + res.stderr
    assert res.returncode != 0
    assert ("resources.max_mem_mb: job embed_model emoji/efficientnet_lite0 asks for mem_mb 4000 "
            "MB, over the limit of 1000; lower models.efficientnet_lite0.mem_mb or raise the "
            "limit") in msg
    assert msg.count("over the limit") == 1


def test_default_config_plans_the_offline_default(fresh):
    shutil.copy2(REPO / "config.yaml", fresh / "config.yaml")
    res = smk(fresh, "-n")
    outs = planned_outputs(res)
    models = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
              "efficientnet_lite0_untrained", "minilm_l6", "smollm2_135m", "glove_6b_50d")
    assert {p for p in outs if "/features/" in p} == {f"{D}/features/{m}.h5" for m in models}
    assert len([p for p in outs if "/pairs/" in p]) == 21
    with open(fresh / "config.yaml") as fh:
        cfg = yaml.safe_load(fh)
    assert cfg["datasets"]["emoji"]["n_samples"] == 1024
    assert len(cfg["metrics"]) == 10  # the paper's eight, jaccard_knn and ridge_r2
    out = res.stdout + res.stderr
    for m in cfg["metrics"]:
        assert f"heatmap_{m}.png" in out


def test_config_override_on_the_command_line_keeps_config_yaml(fresh):
    # --config merges into config.yaml (it used to replace it and fail validation)
    res = smk(fresh, "-n", "--config", 'plots={"dpi": 100}')
    assert f"{D}/features/minilm_l6.h5" in planned_outputs(res)


def test_a_config_error_is_one_line_naming_the_key(fresh):
    write_config(fresh, {**TINY, "colour": "blue"})
    res = smk(fresh, check=False)
    msg = res.stdout + res.stderr
    assert res.returncode != 0 and "config: (top level): " in msg and "'colour'" in msg
    assert "$schema" not in msg and "additionalProperties:" not in msg


@pytest.mark.parametrize("args", [("-n",), ("--config", "models=3")], ids=["plan", "error"])
def test_forked_snakemake_answers_as_the_command(fresh, args):
    """smk forks snakemake.cli.main from a process that imported it once
    (tests/snakemake_fork.py): the command itself exits and prints the same."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    cli = subprocess.run([str(BIN / "snakemake"), *args], cwd=fresh, env=env, text=True,
                         capture_output=True, timeout=600)
    forked = smk(fresh, *args, check=False)

    def lines(res):
        """Less what holds the time (the log's name, the date, the run's id);
        lines and each line's words as multisets: sets print in hash order."""
        timed = re.compile(r"\.snakemake/log/|^  Date: |^  Workflow ID: "
                           r"|\[\w{3} \w{3} +\d+ [\d:]+ \d{4}\]")
        return Counter(tuple(sorted(re.split(r"[ ,;]+", ln)))
                       for ln in (res.stdout + res.stderr).splitlines() if not timed.search(ln))
    assert forked.returncode == cli.returncode == (0 if args == ("-n",) else 1)
    assert lines(forked) == lines(cli) and sum(lines(cli).values()) > 5


def test_lint_and_format(fresh):
    res = smk(fresh, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in res.stdout + res.stderr
    fmt = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "rules"], cwd=REPO,
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
