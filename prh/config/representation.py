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

#: a features layer cache also keeps, for each k that the statistics job or
#: the sample-size curve resamples, kNN lists this many times as long: a
#: subset's list of sample n is then read from them when k + 1 of n's K' =
#: 3k nearest are kept (prh/sweep/subsets.py), instead of a new search. For
#: k = 10 that fails for a share 4e-8 of the rows of a 5-group jackknife
#: resample (4/5 kept), 5 % of a half-sample's; those rows are ranked again.
SUBSET_TOPK_FACTOR = 3


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


def subset_topk(k: int, n_samples: int) -> int | None:
    """The wider list kept beside k's for subsets (SUBSET_TOPK_FACTOR k, at
    most N - 1), None when no list wider than k fits in N samples."""
    wide = min(SUBSET_TOPK_FACTOR * int(k), int(n_samples) - 1)
    return wide if wide > k else None
