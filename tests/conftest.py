"""Shared fixtures: small configs and files written through prh's own writers."""

from __future__ import annotations

import copy

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
