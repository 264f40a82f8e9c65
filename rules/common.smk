# The adapter between Snakemake and prh.config, which validates the config,
# holds every default and makes every decision; this file only reads them.
import os
import re
import sys
from pathlib import Path

ROOT = Path(workflow.basedir)
# This checkout's prh, for building the DAG here and, through PYTHONPATH, in
# every job's script (also in conda environments that do not install prh).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

from prh import config as prh_config
from prh.imports import library_files

CFG = prh_config.Config(config)
RESULTS, LOGS = prh_config.RESULTS, prh_config.LOGS
DATASETS, MODELS, METRICS = CFG.datasets, CFG.models, CFG.metrics
features_path = prh_config.features_path
stats_path = prh_config.stats_path
pair_path = prh_config.pair_path


def library(script):
    """The prh files a rule's script imports, as inputs: Snakemake tracks a
    `script:` file itself but not the modules it imports."""
    return list(library_files(ROOT / "scripts" / script, ROOT))


def _alternation(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    dataset=_alternation(DATASETS),
    model=_alternation(MODELS),
    model_x=_alternation(MODELS),
    model_y=_alternation(MODELS),


def pair_files(wildcards):
    return [pair_path(wildcards.dataset, x, y) for x, y in CFG.pairs()]


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
