"""The layer sweep: every layer of one model against every layer of another.

``layer_scores(X, Y, metric)`` returns S[i, j] = metric(X[:, i], Y[:, j]) after
the spec's clamp and normalisation; :func:`prh.scoring.best_layer_pair` gives
the model pair's alignment and where it is reached. :class:`LayerCache`
holds one model's per-layer work, done once for all its pairs and metrics;
:func:`sweep` scores two of them, :func:`permuted_sweeps` with Y's samples
reordered (the engine of permutation nulls).

This is the public import path; the code lives in :mod:`prh.sweep`, one
module per metric family (how the sweep is made fast: its docstring).
"""

from __future__ import annotations

from .sweep.blocks import one_cpu_thread
from .sweep.cache import CONSTANT_SPREAD, LayerCache
from .sweep.dispatch import layer_scores, permuted_sweep, permuted_sweeps, sweep
from .sweep.kernel import PERMUTATION_BATCH

__all__ = ["CONSTANT_SPREAD", "PERMUTATION_BATCH", "LayerCache", "layer_scores",
           "one_cpu_thread", "permuted_sweep", "permuted_sweeps", "sweep"]
