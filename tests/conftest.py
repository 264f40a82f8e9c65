"""Shared fixtures: small configs and files written through prh's own writers."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """One full run of the workflow on test_workflow.TINY in a copy of the
    repository, shared by the workflow tests and the report's browser test."""
    from test_workflow import copy_workflow, smk

    wd = copy_workflow(tmp_path_factory.mktemp("workflow") / "wf")
    t0 = time.perf_counter()
    smk(wd)
    print(f"tiny workflow: full run {time.perf_counter() - t0:.1f}s")
    return wd
