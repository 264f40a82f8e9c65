"""Where every workflow output and log lives: the one home of each file name.

The rules and :class:`prh.config.Config` build paths only with these
functions; with ``"{dataset}"`` and the like as arguments they give the
rules' wildcard patterns.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"
STATISTICS_TABLES = ("intervals", "comparisons", "trend")


def manifest_path(dataset: str) -> str:
    return f"{RESULTS}/{dataset}/manifest.json"


def features_path(dataset: str, model: str) -> str:
    return f"{RESULTS}/{dataset}/features/{model}.h5"


def layer_cache_path(dataset: str, model: str) -> str:
    return f"{RESULTS}/{dataset}/layer_cache/{model}.h5"


def pair_path(dataset: str, x: str, y: str) -> str:
    return f"{RESULTS}/{dataset}/pairs/{x}__{y}.h5"


def pair_block_path(dataset: str, block: str) -> str:
    """A block of pairs (``alignment.pair_block`` > 1): one file per block job,
    so that a zoo of 1,000 models has hundreds of pair files for Snakemake to
    stat and the aggregate to list, not 500,000 (:mod:`prh.formats.pair`)."""
    return f"{RESULTS}/{dataset}/pair_blocks/{block}.h5"


def block_name(i: int, j: int) -> str:
    """Block job (i, j): the pairs between the models of runs i <= j."""
    return f"{i}-{j}"


def alignment_path(dataset: str) -> str:
    """The model x model matrices (:mod:`prh.formats.alignment`)."""
    return f"{RESULTS}/{dataset}/alignment.h5"


def table_path(dataset: str, table: str) -> str:
    """A dataset's tidy table: ``alignment``, ``aggregates`` or ``sample_size``."""
    return f"{RESULTS}/{dataset}/{table}.tsv"


def statistics_path(dataset: str, table: str) -> str:
    """One of the statistics job's :data:`STATISTICS_TABLES`."""
    return f"{RESULTS}/{dataset}/statistics/{table}.tsv"


def scorecard_path(dataset: str, model: str, ext: str) -> str:
    return f"{RESULTS}/{dataset}/scorecards/{model}.{ext}"


def figure_path(dataset: str, stem: str, ext: str) -> str:
    return f"{RESULTS}/{dataset}/plots/{stem}.{ext}"


def report_table_path(dataset: str, table: str) -> str:
    """The copy of a table that the report shows."""
    return f"{RESULTS}/{dataset}/report/{table}.tsv"


def log_path(dataset: str, job: str) -> str:
    """A job's log, ``job`` naming it within the dataset (``embed/<model>``)."""
    return f"{LOGS}/{dataset}/{job}.log"


def benchmark_path(dataset: str, job: str) -> str:
    """A job's Snakemake benchmark table, beside its log."""
    return f"{LOGS}/{dataset}/{job}.benchmark.tsv"


def findings_path(dataset: str) -> str:
    """What the run found, in words (:mod:`prh.findings`)."""
    return f"{RESULTS}/{dataset}/findings.md"


def report_page(dataset: str, name: str) -> str:
    """An HTML page of the report: ``findings`` or a table (:mod:`prh.report_html`)."""
    return f"{RESULTS}/{dataset}/report/{name}.html"
