"""Step of rule ``model_stats``: one model's per-layer alignment work.

Clamping, normalising, Gram matrices, kNN lists and SVCCA bases are computed
once per model here, so that each pair job only combines two stats files.

Outliers are clamped as the paper does (docs/metrics.md): a model whose layers
all share one width (a transformer's hidden states) gets one threshold over
all its layers, as an N x L x D block; a model whose widths differ (a CNN's
blocks) one threshold per layer. The stats file records which (``clamp``).
"""

from __future__ import annotations

import os
from typing import Sequence


def run(features: str | os.PathLike, out: str | os.PathLike, *, q: float, exact: bool,
        normalize: bool, topk: Sequence[int], cca_dims: Sequence[int], layers: bool,
        device: str) -> None:
    """Preprocess one model's features and write its stats file.

    ``layers`` keeps the preprocessed layers too: SVCCA on bootstrap resamples
    and sample subsets must recompute its bases from them.
    """
    from ..alignment import ModelStats
    from ..formats.features import read_features
    from ..formats.stats import save_model_stats

    import numpy as np

    feats = read_features(features)
    mode = clamp_mode([f.shape[1] for f in feats])
    block = np.stack(feats, axis=1) if mode == "model" else feats
    del feats
    stats = ModelStats.from_features(block, name=str(features), q=q, exact=exact,
                                     normalize=normalize, device=device)
    del block
    save_model_stats(stats, out, topk=list(topk), cca_dims=list(cca_dims), layers=layers,
                     attrs={"q": q, "exact": exact, "normalize": normalize, "clamp": mode,
                            "features": str(features)})


def clamp_mode(widths: Sequence[int]) -> str:
    """"model" (one threshold over all layers) when every layer has the same
    width and there are several, else "layer" (one per layer)."""
    return "model" if len(widths) > 1 and len(set(widths)) == 1 else "layer"
