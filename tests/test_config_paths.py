"""prh.config.paths is the one home of every result and log path: the rules
build none of their own, and the config's answers agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from prh.config import Config, paths

REPO = Path(__file__).resolve().parents[1]


def test_paths_with_wildcards_are_the_rules_patterns():
    assert paths.manifest_path("{dataset}") == "results/{dataset}/manifest.json"
    assert paths.alignment_path("d") == "results/d/alignment.h5"
    assert paths.table_path("d", "aggregates") == "results/d/aggregates.tsv"
    assert paths.report_table_path("d", "{table}") == "results/d/report/{table}.tsv"
    assert paths.figure_path("d", "layers/x__y/cka", "pdf") == "results/d/plots/layers/x__y/cka.pdf"
    assert paths.log_path("{dataset}", "embed/{model}") == "logs/{dataset}/embed/{model}.log"
    assert paths.benchmark_path("d", "statistics") == "logs/d/statistics.benchmark.tsv"


def test_rules_spell_no_result_or_log_path():
    spelled = re.compile(r"RESULTS\}|LOGS\}|results/|logs/|manifest\.json|alignment\.h5|"
                         r"\.log\"|\.benchmark\.tsv|aggregates\.tsv|sample_size\.tsv")
    for rules in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for i, line in enumerate(rules.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not spelled.search(code), f"{rules.name}:{i}: {line.strip()}"


def test_targets_and_stale_groups_name_the_files_the_rules_write(tiny_config):
    tiny_config["calibration"] = {"enabled": True, "sample_sizes": [16, 32]}
    cfg = Config(tiny_config)
    d = "emoji"
    aggregate = [paths.alignment_path(d), paths.table_path(d, "alignment"),
                 paths.table_path(d, "aggregates")]
    statistics = [paths.statistics_path(d, t) for t in paths.STATISTICS_TABLES]
    curve = [paths.table_path(d, "sample_size")]
    assert cfg.align_targets(d) == aggregate + curve + statistics
    groups = cfg.stale_groups()
    assert groups[f"{d} alignment"][0] == aggregate
    assert groups[f"{d} sample size"][0] == curve
    assert groups[f"{d} statistics"][0] == statistics
    pages = [paths.findings_path(d), paths.report_page(d, "findings")] + [
        paths.report_page(d, t) for t in cfg.report_table_names()]
    tables = [paths.report_table_path(d, t) for t in ("alignment", "aggregates")]
    assert cfg.plot_targets(d)[-len(pages) - 2:] == tables + pages
