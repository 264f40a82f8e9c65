"""Shared fixtures: small configs, files written through prh's own writers
(:mod:`file_factories`), copies of the workflow and the one tiny run
(:mod:`workflow_helpers`)."""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

import pytest

from workflow_helpers import copy_workflow, smk

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
    works on its own copy (``shutil.copytree(tiny_run, ..., symlinks=True)``)."""
    wd = copy_workflow(tmp_path_factory.mktemp("workflow") / "wf")
    t0 = time.perf_counter()
    smk(wd)
    print(f"tiny workflow: full run {time.perf_counter() - t0:.1f}s")
    return wd


@pytest.fixture
def tiny_run_to_change(tiny_run, tmp_path):
    """The tiny run itself, for a test that runs jobs in it: put back as it
    was afterwards. Snakemake records the library inputs' absolute paths, so
    a copy elsewhere would plan every job again; the copy kept meanwhile is
    moved back to the run's own path instead."""
    kept = tmp_path / "kept"
    shutil.copytree(tiny_run, kept, symlinks=True)
    yield tiny_run
    shutil.rmtree(tiny_run)
    os.rename(kept, tiny_run)
