"""Step of rule ``model_stats``: one model's per-layer alignment work.

Clamping, normalising, Gram matrices, kNN lists and SVCCA bases are computed
once per model here, so that each pair job only combines two stats files.
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

    feats = read_features(features)
    stats = ModelStats.from_features(feats, name=str(features), q=q, exact=exact,
                                     normalize=normalize, device=device)
    save_model_stats(stats, out, topk=list(topk), cca_dims=list(cca_dims), layers=layers,
                     attrs={"q": q, "exact": exact, "normalize": normalize,
                            "features": str(features)})
