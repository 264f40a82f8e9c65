"""Test files written through prh's own writers, so that they cannot drift
from the real layouts: a features file (:mod:`prh.formats.features`) and a
model's layer cache (:mod:`prh.formats.layer_cache`).

``conftest.py`` wraps both as the ``features_file`` and ``layer_cache_file``
fixtures; module-scoped fixtures call them directly. Tests of hostile input
(``test_untrusted_*.py``) hand-write their files instead, on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from prh.formats.features import FeatureWriter
from prh.formats.layer_cache import save_layer_cache
from prh.sweep.cache import LayerCache


def write_features(path: Path, layers: Sequence[Any], *, sample_ids: Sequence[str] | None = None,
                   layer_names: Sequence[str] | None = None, attrs: dict | None = None,
                   dtype: str = "float32", bpb: Any = None, batch: int | None = None) -> Path:
    """``layers`` (each N x D_l, arrays or tensors) as a features file at
    ``path``; sample ids default to s0 .. s<N-1>. ``batch`` streams the rows
    in batches of that size, as the embedding stage does; ``bpb`` adds the
    bits-per-byte column."""
    n = len(layers[0])
    ids = [f"s{i}" for i in range(n)] if sample_ids is None else list(sample_ids)
    step = batch or n
    with FeatureWriter(path, sample_ids=ids, layer_names=layer_names, attrs=attrs, dtype=dtype,
                       with_bpb=bpb is not None) as w:
        for start in range(0, n, step):
            w.write(start, [x[start:start + step] for x in layers],
                    None if bpb is None else bpb[start:start + step])
    return Path(path)


def write_layer_cache(path: Path, layers: Sequence[np.ndarray], *, topk: Sequence[int] = (),
                      cca_dims: Sequence[int] = (), store_layers: bool = False,
                      sample_ids: Sequence[str] | None = None, attrs: dict | None = None,
                      device: str | None = None) -> Path:
    """One model's layer cache of ``layers`` at ``path``: its kNN lists for
    each ``topk``, SVCCA bases for each of ``cca_dims``, and with
    ``store_layers`` the prepared layers themselves."""
    save_layer_cache(LayerCache.from_features(layers, device=device), path, topk=topk,
                     cca_dims=cca_dims, layers=store_layers, attrs=attrs, sample_ids=sample_ids)
    return Path(path)
