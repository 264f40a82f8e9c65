"""Inference on alignment scores, one module per procedure:

- :mod:`.permutation`: permutation nulls (uniform, given or
  block-exchangeable), p-values, the threshold tau and calibrated scores,
  and the sample-size curve;
- :mod:`.resampling`: index sets without replacement (jackknife,
  subsamples), standard errors, and every model pair re-scored on shared
  resamples (:class:`~.resampling.PairReplicates`);
- :mod:`.statistics`: from those replicates, the rows of the statistics
  tables: intervals, paired comparisons and the trend with competence;
- :mod:`.pairs`: in which orders and with which aggregates a pair is scored.

:mod:`prh.calibration` is the public import path.
"""
