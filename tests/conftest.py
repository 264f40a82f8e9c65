"""Shared fixtures: small configs, files written through prh's own writers
(:mod:`file_factories`), copies of the workflow, the three finished runs
and the tiny run's report (:mod:`workflow_helpers`, :mod:`file_workflow`);
and how ``make test``'s pytest-xdist workers share the tests out."""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test's workers share the cores: a thread pool per worker (and per
    # job its workflow runs start) sized for the whole machine only spins
    # against the other workers' pools
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

from workflow_helpers import copy_run, copy_workflow, smk  # noqa: E402

TESTS = Path(__file__).resolve().parent
#: session fixtures that build a whole workflow run, once per test process
SHARED_RUNS = ("tiny_run", "file_run", "ids_run")


@lru_cache(maxsize=None)
def work_unit(nodeid: str) -> str:
    """What one xdist worker runs whole: the shared run a test file names
    (all its files in the worker that builds it, so it is built once), else
    the file itself."""
    file = nodeid.split("::", 1)[0]
    text = (TESTS.parent / file).read_text()
    return next((run for run in SHARED_RUNS if run in text), file)


#: every test this process collected (before any -k or -m deselection)
COLLECTED = pytest.StashKey[list]()


def pytest_itemcollected(item):
    item.config.stash.setdefault(COLLECTED, []).append(item.nodeid)


def pytest_collection_modifyitems(config, items):
    # the units with the most end-to-end (slow) tests start first, so that no
    # long one is left for the end while the other worker idles
    slow = Counter(work_unit(item.nodeid) for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[work_unit(item.nodeid)])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the slow-first order above
    return SharedRunScheduling(config, log)

TINY_CONFIG = {
    "datasets": {"emoji": {"source": "emoji", "n_samples": 48}},
    "models": {
        "efficientnet_lite0": {"source": "efficientnet_lite0"},
        "minilm_l6": {"source": "minilm_l6", "modality": "language"},
        "glove_6b_50d": {"source": "glove_6b_50d"},
    },
    "metrics": {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 5}, "cka": {}},
}


@pytest.fixture
def tiny_config() -> dict:
    """A small valid workflow config (a fresh copy per test)."""
    return copy.deepcopy(TINY_CONFIG)


@pytest.fixture
def features_file(tmp_path):
    """``features_file(name, layers, **kw)``: a features file under tmp_path
    (``name`` may also be an absolute path); keywords as
    :func:`file_factories.write_features`."""
    from file_factories import write_features  # imports torch: only where files are made

    def make(name: str | Path, layers, **kw) -> Path:
        return write_features(tmp_path / name, layers, **kw)
    return make


@pytest.fixture
def layer_cache_file(tmp_path):
    """``layer_cache_file(name, layers, **kw)``: one model's layer cache under
    tmp_path; keywords as :func:`file_factories.write_layer_cache`."""
    from file_factories import write_layer_cache

    def make(name: str | Path, layers, **kw) -> Path:
        return write_layer_cache(tmp_path / name, layers, **kw)
    return make


@pytest.fixture
def workflow_copy(tmp_path):
    """``workflow_copy(config=None, name="wf")``: the workflow copied under
    tmp_path with ``config`` (default: the tiny run's) as its config.yaml."""
    def make(config: dict | None = None, name: str = "wf") -> Path:
        return copy_workflow(tmp_path / name, config)
    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny run (workflow_helpers.TINY), built once per test process.
    Tests only read it or ask Snakemake for plans; a test that changes it
    works on its own copy (``copy_run``, or ``tiny_run_to_change``)."""
    wd = copy_workflow(tmp_path_factory.mktemp("workflow") / "wf")
    t0 = time.perf_counter()
    smk(wd)
    print(f"tiny workflow: full run {time.perf_counter() - t0:.1f}s")
    return wd


@pytest.fixture(scope="session")
def tiny_report(tiny_run) -> Path:
    """The tiny run's HTML report (``snakemake --report``), made once per
    test process."""
    smk(tiny_run, "--report", "results/report.html")
    return tiny_run / "results/report.html"


@pytest.fixture(scope="session")
def file_run(tmp_path_factory) -> Path:
    """A full run of :func:`file_workflow.file_workflow` (``file:`` features,
    no model weights), built once per test process; tests work on copies
    (``copy_run``)."""
    from file_workflow import file_workflow

    wd = file_workflow(tmp_path_factory.mktemp("file_run") / "wf")
    smk(wd)
    return wd


@pytest.fixture(scope="session")
def ids_run(tmp_path_factory) -> Path:
    """A full run of :func:`file_workflow.ids_workflow` (an ``ids`` dataset,
    ``file:`` features, the dense representation), built once per test
    process; tests read it or work on copies."""
    from file_workflow import ids_workflow

    wd = ids_workflow(tmp_path_factory.mktemp("ids_run") / "wf")
    smk(wd)
    return wd


@pytest.fixture
def tiny_run_to_change(tiny_run, tmp_path):
    """A copy of the tiny run, for a test that runs jobs in it: a finished
    run copied elsewhere plans nothing (test_relocatable.py)."""
    return copy_run(tiny_run, tmp_path / "tiny_run")
