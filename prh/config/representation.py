"""Which representation a dataset's per-model caches take
(``alignment.representation``): dense N x N Gram matrices or the features
themselves with their kNN lists (docs/large-n.md). Torch-free.

Both build their kNN lists with the same O(N^2 D) search; what differs is
what is kept and how pairs are scored. Per layer, dense keeps 4 N^2 bytes (a
pair job about three times that: the entry-major copies its sweeps read),
features 4 N D + 16 N k. A dense CKA sweep costs O(N^2) per layer pair, the
feature-space one O(N D_x D_y); the kNN metrics and CKNNA cost O(N k) and
O(N k^2). So dense is faster while its Gram matrices fit, and no larger than
the features once N <= D.
"""

from __future__ import annotations

#: ``auto`` keeps the dense representation up to this many samples: one
#: float32 Gram matrix is then at most 64 MiB a layer, a pair job of two
#: 30-layer models at most ~12 GB
AUTO_DENSE_MAX_N = 4096

REPRESENTATIONS = ("auto", "dense", "features")


def auto_representation(n_samples: int, width: int) -> str:
    """"dense" or "features" for ``n_samples`` samples and ``width``, the
    narrowest of the models' widest layers (each model's ``width``): dense up
    to AUTO_DENSE_MAX_N samples, or while N <= width (a Gram matrix is then
    no larger than the features it replaces, and dense sweeps are faster);
    features above."""
    return "dense" if n_samples <= max(AUTO_DENSE_MAX_N, width) else "features"


def resolve_representation(setting: str, n_samples: int, width: int) -> str:
    """The representation ``setting`` (auto, dense, features) gives a dataset."""
    if setting not in REPRESENTATIONS:
        raise ValueError(f"alignment.representation {setting!r}: choose one of "
                         f"{', '.join(REPRESENTATIONS)}")
    return auto_representation(n_samples, width) if setting == "auto" else setting
