# The adapter between Snakemake and prh.config, which validates the config,
# holds every default and makes every decision; this file only reads them.
import os
import re
import sys
from pathlib import Path

ROOT = Path(workflow.basedir)
# This checkout's prh, for building the DAG here and in every job's script.
sys.path.insert(0, str(ROOT))
from prh.imports import library_files, use_checkout, workdir_paths

use_checkout(ROOT)
from prh.config import Config
from prh.config.paths import (
    RESULTS,
    STATISTICS_TABLES,
    alignment_path,
    benchmark_path,
    features_path,
    findings_path,
    layer_cache_path,
    log_path,
    manifest_path,
    pair_block_path,
    pair_path,
    report_page,
    report_table_path,
    scorecard_path,
    statistics_path,
    table_path,
)

CFG = Config(config)
if workflow.is_main_process:
    # What the plan asks of the machines, once per run (jobs parse this file
    # too); a request over resources.max_* stops it here. Grouped pair jobs
    # (the slurm profile's group-components) run side by side: one request.
    _pair_group = workflow.group_settings.group_components.get("pairs", 1)
    CFG.check_limits(_pair_group)
    print(f"prh: {CFG.plan_totals(_pair_group)}", file=sys.stderr)
# the report's captions read the config with its defaults filled in
config.update(CFG.raw)
DATASETS, MODELS, METRICS = CFG.datasets, CFG.models, CFG.metrics


def library(script):
    """The prh files a rule's script imports, as inputs: Snakemake tracks a
    `script:` file itself but not the modules it imports. Relative to the
    working directory, like every other path Snakemake records, so that a
    finished run copied or moved elsewhere plans nothing."""
    return workdir_paths(library_files(ROOT / "scripts" / script, ROOT))


def _alternation(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    dataset=_alternation(DATASETS),
    model=_alternation(MODELS),
    model_x=_alternation(MODELS),
    model_y=_alternation(MODELS),


def pair_files(wildcards):
    return CFG.pair_files(wildcards.dataset)


def dataset_params(dataset):
    """A dataset's config entry; a folder or ids dataset's also holds the
    content hash of its local files (prh.datasets.local_sha256), so that an
    edit reruns it through the params trigger and a touch does not."""
    entry = dict(CFG.raw["datasets"][dataset])
    if entry.get("path"):
        from prh.datasets import local_sha256

        sha = local_sha256(entry["source"], entry["path"])
        if sha:
            entry["content_sha256"] = sha
    return entry


def features_files(wildcards):
    """model -> features file; inputs and params both use it, so scripts look
    files up by model name."""
    return {m: features_path(wildcards.dataset, m) for m in MODELS}


def scorecard_features(wildcards):
    """model -> features file, for a scorecard's model and its partners."""
    models = {m for p in CFG.scorecard_pairs(wildcards.model) for m in p}
    return {m: features_path(wildcards.dataset, m) for m in sorted(models)}


def figure_outputs(rule):
    """A plot rule's named outputs, one per figure (its files, one per format);
    the report's format is declared a report item with its caption."""
    out = {}
    for fig in CFG.figures(rule):
        files = []
        for path in CFG.figure_files("{dataset}", fig):
            if path.endswith(f".{CFG.report_format}"):
                path = report(
                    path,
                    caption=f"../report/{fig.caption}.rst",
                    category=fig.category,
                    subcategory=fig.subcategory,
                    labels={"dataset": "{dataset}", **fig.labels},
                )
            files.append(path)
        out[fig.name] = files
    return out


# Failure-safe reruns (prh.reruns): keep each features file until its
# re-embedding succeeds; after a failure, keep every finished output and mark
# those downstream of the files the run lost, so that the next run rebuilds
# them. A rule passes its output's mark as the param `stale`.
from prh import reruns

MARKS_PATH = reruns.marks_path(RESULTS)
MARKS = reruns.read_marks(MARKS_PATH)
_PRESENT_AT_START = set()


def stale_mark(output):
    return MARKS.get(output)


def _all_features():
    return [features_path(d, m) for d in DATASETS for m in MODELS]


def _after_run(failed):
    for bak in reruns.drop_backups(_all_features()):
        print(
            f"prh: the previous features are kept in {bak}; a run with their settings "
            "puts them back without embedding",
            file=sys.stderr,
        )
    if failed:
        gone = {f for f in _PRESENT_AT_START if not os.path.exists(f)}
        stale = reruns.stale_outputs(CFG.stale_groups(), gone)
        reruns.mark_stale(MARKS_PATH, stale)
        for line in reruns.describe_stale(stale):
            print(f"prh: {line}", file=sys.stderr)


onstart:
    import time
    from prh import hub

    # planning (a dry run) needs no weights; running does, before any job
    hub.check(CFG.hub_models())
    reruns.keep_previous(_all_features())
    _PRESENT_AT_START.update(reruns.present_files(CFG.stale_groups()))
    # Temporary files of writers killed with SIGKILL (prh.reruns.remove_orphan_temps).
    for tmp in reruns.remove_orphan_temps(RESULTS, time.time()):
        print(f"prh: removed {tmp}, left by a killed job", file=sys.stderr)


onsuccess:
    _after_run(False)


onerror:
    _after_run(True)
