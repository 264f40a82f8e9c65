"""Calibrated alignment: permutation nulls, p-values, BH; intervals, paired
comparisons and trends from resamples without replacement.

This is the public import path; the code lives in :mod:`prh.inference`, one
module per procedure: :mod:`~prh.inference.permutation` (nulls, calibrated
scores, the sample-size curve), :mod:`~prh.inference.resampling` (index
sets, standard errors, pairs re-scored on shared resamples) and
:mod:`~prh.inference.statistics` (the rows of the intervals, comparisons and
trend tables).
"""

from __future__ import annotations

from .inference.permutation import (MIN_RESAMPLES, Calibration, Permutations,
                                    block_permutations, calibrate, calibrate_pair,
                                    calibrated_scores, check_alpha, null_distributions,
                                    permutation_matrix, permutation_null, sample_permutations,
                                    sample_size_curve, sample_size_curves)
from .inference.resampling import (INTERVAL_SCHEMES, PairKey, PairReplicates, normal_interval,
                                   pair_replicates, replicate_scores, replicate_se,
                                   resample_indices, scheme_for)
from .inference.statistics import (TREND_STATISTICS, Comparison, check_trend, compare_pairs,
                                   comparison_rows, competence_trend, interval_rows,
                                   score_intervals, trend_rows)

__all__ = [
    "INTERVAL_SCHEMES", "MIN_RESAMPLES", "TREND_STATISTICS", "Calibration", "Comparison",
    "PairKey", "PairReplicates", "Permutations", "block_permutations", "calibrate",
    "calibrate_pair", "calibrated_scores", "check_alpha", "check_trend", "compare_pairs",
    "comparison_rows", "competence_trend", "interval_rows", "normal_interval",
    "null_distributions", "pair_replicates", "permutation_matrix", "permutation_null",
    "replicate_scores", "replicate_se", "resample_indices", "sample_permutations",
    "sample_size_curve", "sample_size_curves", "scheme_for", "score_intervals", "trend_rows",
]
