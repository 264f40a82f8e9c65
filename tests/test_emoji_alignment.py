"""Sanity of real data: EfficientNet-Lite0 and MiniLM align on emoji, and not when captions are shuffled."""

from __future__ import annotations

import numpy as np
import pytest

from prh import datasets as D
from prh.formats import features as storage
from prh.embed import embed
from prh.metrics import measure

N = 160
K = 10


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.slow
def test_vision_and_language_align_on_emoji(tmp_path):
    m = D.prepare("emoji", N)
    vis, lang = tmp_path / "lite0.h5", tmp_path / "minilm.h5"
    embed(m, "efficientnet_lite0", vis, batch_size=32, device="cpu", progress=False)
    embed(m, "minilm_l6", lang, batch_size=64, device="cpu", progress=False)
    assert storage.read_metadata(vis)["sample_ids"] == storage.read_metadata(lang)["sample_ids"] == m.ids

    (a,) = storage.read_features(vis, layers=[len(storage.read_metadata(vis)["widths"]) - 1])
    (b,) = storage.read_features(lang, layers=[6])
    a, b = _unit(a), _unit(b)
    real = measure("mutual_knn", a, b, topk=K)
    rng = np.random.default_rng(0)
    shuffled = np.mean([measure("mutual_knn", a, b[rng.permutation(N)], topk=K) for _ in range(5)])
    chance = K / (N - 1)
    print(f"mutual_knn k={K} N={N}: real {real:.3f}, shuffled {shuffled:.3f}, chance {chance:.3f}")
    assert abs(shuffled - chance) < 0.5 * chance
    assert real > 2.5 * chance and real > shuffled + 0.08
