"""Figures of alignment results (matplotlib, Agg backend; no Snakemake here).

- :mod:`.heatmaps`: model x model heatmaps of raw and calibrated scores
- :mod:`.competence`: alignment against model competence (the paper's
  headline figure), raw and calibrated side by side
- :mod:`.layers`: one pair's layer x layer scores with the best pair marked
- :mod:`.agreement`: rank correlation between metrics over model pairs
- :mod:`.sample_size`: score and permutation null against sample size
- :mod:`.scorecard`: one model's alignment with each partner
- :mod:`.style`: the shared look, palettes, saving; :mod:`.data`: readers
  and what a figure may say about chance; :mod:`.axes`: broken axes and
  labels that never overlap

Models are named by :func:`prh.naming.display_name` in every figure.

Every figure is written as one file per path given (PNG, PDF or SVG by
suffix), each atomically. Bad input gives a ValueError naming the file, model
or value, or a figure that says what is missing.
"""

from .agreement import metric_agreement
from .competence import alignment_vs_competence
from .heatmaps import alignment_heatmaps, heatmap
from .layers import layer_heatmap, pair_layer_heatmaps
from .sample_size import sample_size_curve
from .style import short_name

__all__ = ["alignment_heatmaps", "alignment_vs_competence", "heatmap", "layer_heatmap",
           "metric_agreement", "pair_layer_heatmaps", "sample_size_curve", "short_name"]
