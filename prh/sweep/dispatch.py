"""The layer sweep of one model pair, any metric: every layer of one model
against every layer of the other (:func:`sweep`, :func:`layer_scores`), and
the same with Y's samples reordered, the engine of permutation nulls
(:func:`permuted_sweep`, :func:`permuted_sweeps`). Each metric goes to its
family's sweep (:mod:`.knn`, :mod:`.kernel`, :mod:`.cca`); the rows and
columns of constant layers become NaN here, for every family alike. Models
in the features representation (:mod:`.representation`) take the
feature-space forms of :mod:`.features_kernel` where they have their own.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import numpy as np
import torch

from ..devices import resolve_device
from ..metrics import get_metric, resolve_params
from . import cca, features_kernel, kernel, knn, neighbours, procrustes, pwcca, regression, rsa
from .cache import LayerCache
from .representation import FeatureCache

#: metric -> its family's sweep fn(sx, sy, **params) -> (Lx, Ly) float64
_SWEEPS: dict[str, Callable[..., torch.Tensor]] = {**knn.SWEEPS, **kernel.SWEEPS, **cca.SWEEPS,
                                                   **procrustes.SWEEPS, **rsa.SWEEPS,
                                                   **neighbours.SWEEPS, **pwcca.SWEEPS,
                                                   **regression.SWEEPS}
#: rv: linear CKA without the 1e-6 in its denominator (docs/metrics.md, section 3.14)
_RV = {"kernel": "ip", "sigma": 1.0, "eps": 0.0}
_SWEEPS["rv"] = partial(kernel.SWEEPS["cka"], **_RV)
#: metrics whose nulls score a batch of permutations at once: fn(sx, sy, perms, **params)
_PERMUTED: dict[str, Callable[..., torch.Tensor]] = {**kernel.PERMUTED, **rsa.PERMUTED,
                                                     **regression.PERMUTED,
                                                     **procrustes.PERMUTED,
                                                     "rv": partial(kernel.PERMUTED["cka"], **_RV)}
#: the same for two models in the features representation
_FEATURE_SWEEPS = {**_SWEEPS, **features_kernel.SWEEPS}
_FEATURE_PERMUTED = {**procrustes.PERMUTED, **features_kernel.PERMUTED}


def _tables(sx, sy, metric: str, params: dict) -> tuple[dict, dict]:
    """The sweeps and batched nulls for the pair's representation; a metric
    that needs N x N matrices is refused in the features one."""
    if getattr(sx, "representation", "dense") != "features":
        return _SWEEPS, _PERMUTED
    features_kernel.refuse_n_by_n(metric, params)
    return _FEATURE_SWEEPS, _FEATURE_PERMUTED


def _check_pair(sx: LayerCache, sy: LayerCache, metric: str, params: dict) -> dict:
    get_metric(metric)
    if sx.n != sy.n:
        raise ValueError(
            f"X and Y must have the same number of samples: X has {sx.n}, Y has {sy.n}"
        )
    if sx.device != sy.device:
        raise ValueError(f"X is on {sx.device} but Y is on {sy.device}; use one device")
    rx, ry = (getattr(s, "representation", "dense") for s in (sx, sy))
    if rx != ry:
        raise ValueError(f"X is in the {rx} representation but Y in the {ry} one; "
                         "build both models' caches the same way")
    return resolve_params(metric, params, n=sx.n, dims=sx.widths + sy.widths)


def sweep(sx: LayerCache, sy: LayerCache, metric: str, **params: Any) -> np.ndarray:
    """Layer x layer scores of two prepared models; reuses (and fills) their caches.

    Use this when one model meets many others, or is scored with several
    metrics: each model's per-layer work is then done once in all.
    """
    p = _check_pair(sx, sy, metric, params)
    with torch.inference_mode():
        nx, ny, q = neighbours.by_distance(sx, sy, metric, p)
        scores = _tables(sx, sy, metric, p)[0][metric](nx, ny, **q)
    return _mask_constant(sx, sy, scores.cpu().numpy())


def _mask_constant(sx: LayerCache, sy: LayerCache, scores: np.ndarray) -> np.ndarray:
    """NaN in the rows of X's and the columns of Y's constant layers (last two axes)."""
    cx, cy = sx.constant_layers(), sy.constant_layers()
    if cx or cy:
        scores = np.array(scores, dtype=np.float64)
        scores[..., cx, :] = np.nan
        scores[..., :, cy] = np.nan
    return scores


def _permuted(sx: LayerCache, sy: LayerCache, metric: str, perms: torch.Tensor,
              params: dict) -> torch.Tensor:
    sweeps, batched = _tables(sx, sy, metric, params)
    sx, sy, params = neighbours.by_distance(sx, sy, metric, params)
    if metric in batched:
        return batched[metric](sx, sy, perms, **params)
    return torch.stack([sweeps[metric](sx, sy, perm=perm, **params) for perm in perms])


def permuted_sweep(sx: LayerCache, sy: LayerCache, metric: str, perm: torch.Tensor,
                   params: dict) -> np.ndarray:
    """Layer x layer matrices with Y's samples reordered by ``perm``: one (N,)
    permutation gives (Lx, Ly), a (P, N) batch (P, Lx, Ly); ``params`` must
    already be resolved (see :func:`prh.metrics.resolve_params`). CKA nulls
    cost least per permutation in batches of
    :data:`prh.sweep.kernel.PERMUTATION_BATCH`."""
    with torch.inference_mode():
        out = _permuted(sx, sy, metric, perm.reshape(-1, sx.n), params)
        return _mask_constant(sx, sy, out.reshape(*perm.shape[:-1], *out.shape[1:]).cpu().numpy())


def permuted_sweeps(sx: LayerCache, sy: LayerCache, metric: str, perms: torch.Tensor,
                    **params: Any) -> np.ndarray:
    """Layer x layer scores with Y's samples reordered by each row of ``perms`` (P, N).

    Returns (P, Lx, Ly). Nothing per layer is recomputed: a reordering only
    relabels Y's kNN lists and permutes its kernels, so this is the engine of
    permutation nulls.
    """
    p = _check_pair(sx, sy, metric, params)
    perms = torch.as_tensor(perms, dtype=torch.int64, device=sx.device)
    if perms.ndim != 2 or perms.shape[1] != sx.n:
        raise ValueError(f"perms must have shape (P, {sx.n}), got {tuple(perms.shape)}")
    return permuted_sweep(sx, sy, metric, perms, p)


def layer_scores(X: Any, Y: Any, metric: str, *, q: float = 0.95, exact: bool = False,
                 normalize: bool = True, device: torch.device | str | None = None,
                 representation: str = "dense", **params: Any) -> np.ndarray:
    """S[i, j] = metric(X[:, i], Y[:, j]) for every layer pair, as an (Lx, Ly) float64 array.

    X and Y are raw per-layer features of one model each: an N x L x D array
    (numpy or torch), or a list of per-layer N x D_l arrays when layer widths
    differ. Each model is clamped at quantile ``q`` (``exact`` selects the
    exact-quantile mode; q=1 disables the clamp) and, with ``normalize``, each
    layer's rows are L2-normalised, as ``docs/metrics.md`` prescribes.
    ``params`` are the metric's parameters (topk, kernel, sigma, cca_dim).
    ``representation`` "features" keeps N x D rows and kNN lists instead of
    N x N Gram matrices (:mod:`prh.sweep.representation`).
    """
    get_metric(metric)
    dev = resolve_device(device, accelerators=("cuda",))
    kind = {"dense": LayerCache, "features": FeatureCache}.get(representation)
    if kind is None:
        raise ValueError(f"representation {representation!r} is not dense or features")
    sx = kind.from_features(X, name="X", q=q, exact=exact, normalize=normalize, device=dev)
    sy = kind.from_features(Y, name="Y", q=q, exact=exact, normalize=normalize, device=dev)
    return sweep(sx, sy, metric, **params)
