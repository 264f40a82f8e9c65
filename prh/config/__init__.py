"""The workflow's configuration: load, validate, fill defaults, and decide.

:class:`Config` takes a config dictionary (what Snakemake read from
config.yaml and the command line), validates it against ``schema.yaml``
(the one home of every setting's default), fills the defaults in, and
answers every question the rules ask: which models and settings, which
pairs, which pairs are calibrated, what a layer cache must hold, which
figures exist and what they are called, what a job needs. The rules only
read these answers (``rules/common.smk``), so every decision is plain
Python, tested without Snakemake (``tests/test_config.py``).

One module per concern, each answering through a mixin of :class:`Config`:

- :mod:`.schema`: load, validate, defaults, ``--config`` strings, :class:`ConfigError`
- :mod:`.paths`: every result and log path
- :mod:`.models`: model settings, embedding params and inputs, hub models
- :mod:`.plan`: pairs, pair blocks, calibration, statistics, sample-size
  curve, scorecards, targets, stale groups
- :mod:`.cost`: the cost model, pure functions of numbers;
  :mod:`.resources` feeds it the config's
- :mod:`.figures`: figures, plot metrics, layer figure pairs, plot targets
- :mod:`.checks`: what the schema cannot check, refused at plan time

Torch-free: building the DAG never imports torch. No workflow step imports
this package, so editing it reruns no job (:mod:`prh.imports`).
"""

from __future__ import annotations

from typing import Any, Mapping

from . import checks
from .cost import (DEFAULT_LAYERS, DEFAULT_WIDTH, MEM_SAFETY, MIN_RUNTIME_MIN, RUNTIME_SAFETY,
                   peak_loaded)
from .figures import MAX_LAYER_FIGURE_PAIRS, Figure, Figures
from .models import EMBED_RESULT_KEYS, Models
from .paths import (LOGS, RESULTS, STATISTICS_TABLES, alignment_path, benchmark_path,
                    block_name, features_path, figure_path, findings_path, layer_cache_path,
                    log_path, manifest_path, report_page,
                    pair_block_path, pair_path, report_table_path, scorecard_path,
                    statistics_path, table_path)
from .plan import CALIBRATION_KEYS, MAX_AUTO_COMPARISONS, MODALITIES, Calibration, Pairs
from .resources import Resources
from .schema import (SCHEMA_PATH, ConfigError, coerce_strings, fill_defaults, load_schema,
                     schema_defaults, validate)

__all__ = [
    "CALIBRATION_KEYS", "DEFAULT_LAYERS", "DEFAULT_WIDTH", "EMBED_RESULT_KEYS", "LOGS",
    "MAX_AUTO_COMPARISONS", "MAX_LAYER_FIGURE_PAIRS", "MEM_SAFETY", "MIN_RUNTIME_MIN",
    "MODALITIES", "RESULTS", "RUNTIME_SAFETY", "SCHEMA_PATH", "STATISTICS_TABLES", "Config", "ConfigError", "Figure", "alignment_path",
    "benchmark_path", "block_name", "coerce_strings", "features_path", "figure_path",
    "fill_defaults", "layer_cache_path", "load_schema", "log_path", "manifest_path",
    "pair_block_path",
    "pair_path", "peak_loaded", "report_table_path", "schema_defaults", "scorecard_path",
    "statistics_path", "table_path", "validate",
    "findings_path",
    "report_page",
]


class Config(Models, Pairs, Calibration, Resources, Figures):
    """A validated workflow config and every decision derived from it."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = validate(raw)
        checks.count_ids_datasets(self.raw)
        self.datasets: list[str] = list(self.raw["datasets"])
        self.models: list[str] = list(self.raw["models"])
        self.metrics: list[str] = list(self.raw["metrics"])
        self.alignment: dict[str, Any] = self.raw["alignment"]
        self.calibration: dict[str, Any] = self.raw["calibration"]
        self.plots: dict[str, Any] = self.raw["plots"]
        self._check()

    def _check(self) -> None:
        checks.check_entries(self)
        checks.check_config(self)
        # planned now, so that a bad list stops the run before any job
        self.comparisons()
        self.competence_metrics()
        self.layer_plot_metrics()
        self.layer_plot_pairs()
