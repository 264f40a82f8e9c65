"""Per-model preprocessing before a layer sweep: outlier clamp, then L2 normalisation.

A model's features come either as one N x L x D array (every layer the same
width: transformers) or as a list of L arrays N x D_l (CNN blocks of different
widths). The clamp threshold t is computed over the whole tensor in the first
case and layer by layer in the second; layers are never padded to a common
width, since padded zeros would move t (``shared/spec/metrics.md``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .checks import as_tensor, check_float

NORM_EPS = 1e-12  # as torch.nn.functional.normalize
_ROW_CHUNK_ELEMS = 1 << 24  # bound |x| copies made while finding quantiles


def _row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-quantile with linear interpolation (numpy's and torch's default).

    ``torch.quantile`` refuses inputs over 2^24 elements and sorts whole rows;
    two k-th value selections give the same number for any size.
    """
    m = rows.shape[1]
    pos = q * (m - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, m - 1)
    v_lo = torch.kthvalue(rows, lo + 1, dim=1).values
    if hi == lo or pos == lo:
        return v_lo
    v_hi = torch.kthvalue(rows, hi + 1, dim=1).values
    return torch.lerp(v_lo, v_hi, torch.tensor(pos - lo, dtype=rows.dtype, device=rows.device))


def clamp_threshold(layers: Sequence[torch.Tensor], q: float, exact: bool) -> torch.Tensor:
    """The clamp threshold t over the features of ``layers`` taken together.

    fast: mean over samples of each sample's q-quantile of |x| (flattened over
    its layers); exact: the element at floor(q * size) of all |x| sorted.
    """
    n = layers[0].shape[0]
    width = sum(int(x.shape[1]) for x in layers)
    if exact:
        flat = torch.cat([x.abs().reshape(-1) for x in layers])
        idx = min(int(q * flat.numel()), flat.numel() - 1)
        return torch.kthvalue(flat, idx + 1).values
    rows_per_chunk = max(1, _ROW_CHUNK_ELEMS // width)
    qs = []
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        block = torch.cat([x[start:stop].abs() for x in layers], dim=1)
        qs.append(_row_quantile(block, q))
    return torch.cat(qs).mean()


def clamp(layers: list[torch.Tensor], q: float, exact: bool) -> list[torch.Tensor]:
    t = clamp_threshold(layers, q, exact)
    return [x.clamp(-t, t) for x in layers]


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)


def as_layers(features: Any, name: str, device: torch.device) -> tuple[list[torch.Tensor], bool]:
    """Split a model's features into per-layer (N, D_l) float32 tensors on ``device``.

    Returns the layers and whether they came as one N x L x D tensor (then the
    clamp is computed over all layers together).
    """
    if isinstance(features, (list, tuple)):
        if len(features) == 0:
            raise ValueError(f"{name} is an empty list of layers")
        layers = [as_tensor(x, f"{name}[{i}]", ndim=2, device=device)
                  for i, x in enumerate(features)]
        sizes = {x.shape[0] for x in layers}
        if len(sizes) > 1:
            raise ValueError(
                f"layers of {name} disagree on the number of samples: "
                f"{[x.shape[0] for x in layers]}"
            )
        return layers, False
    x = as_tensor(features, name, ndim=3, device=device)
    return list(x.unbind(dim=1)), True


def prepare_layers(features: Any, name: str, *, q: float = 0.95, exact: bool = False,
                   normalize: bool = True, device: torch.device) -> list[torch.Tensor]:
    """Clamp outliers and L2-normalise each layer; returns (N, D_l) float32 tensors."""
    q = check_float(q, "q", low=0.0, high=1.0, low_open=True)
    layers, stacked = as_layers(features, name, device)
    if q < 1.0:
        if stacked:
            layers = clamp(layers, q, exact)
        else:
            layers = [clamp([x], q, exact)[0] for x in layers]
    if normalize:
        layers = [l2_normalize(x) for x in layers]
    return [x.contiguous() for x in layers]
