"""Per-model preprocessing before a layer sweep: outlier clamp, then L2 normalisation.

A model's features come either as one N x L x D array (every layer the same
width: transformers) or as a list of L arrays N x D_l (CNN blocks of different
widths). The clamp threshold t is computed over the whole tensor in the first
case and layer by layer in the second; layers are never padded to a common
width, since padded zeros would move t (``docs/metrics.md``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .checks import as_tensor, check_float

NORM_EPS = 1e-12  # as torch.nn.functional.normalize
_ROW_CHUNK_ELEMS = 1 << 24  # bound |x| copies made while finding quantiles


def _row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-quantile with linear interpolation (numpy's and torch's default).

    ``torch.quantile`` refuses inputs over 2^24 elements and sorts whole rows.
    The quantile only needs the two order statistics around position
    q * (M - 1); a partial top-k on the nearer end of each row finds both,
    several times faster than a sort or two k-th value selections.
    """
    m = rows.shape[1]
    pos = q * (m - 1)
    lo = math.floor(pos)
    frac = pos - lo
    if m - lo <= lo + 2:  # the upper end is shorter: keep the m - lo largest
        top = torch.topk(rows, m - lo, dim=1, largest=True, sorted=False).values
        v_lo = top.min(dim=1).values
        if frac == 0 or top.shape[1] < 2:
            return v_lo
        v_hi = torch.kthvalue(top, 2, dim=1).values
    else:  # keep the lo + 2 smallest
        bottom = torch.topk(rows, lo + 2, dim=1, largest=False, sorted=False).values
        v_hi = bottom.max(dim=1).values
        v_lo = torch.kthvalue(bottom, lo + 1, dim=1).values
        if frac == 0:
            return v_lo
    return torch.lerp(v_lo, v_hi, torch.tensor(frac, dtype=rows.dtype, device=rows.device))


def clamp_threshold(samples: torch.Tensor, q: float, exact: bool) -> torch.Tensor:
    """The clamp threshold t over ``samples`` (N x M: each row one sample's values).

    fast: mean over samples of each sample's q-quantile of |x|; exact: the
    element at floor(q * size) of all |x| sorted ascending.
    """
    n, m = samples.shape
    if exact:
        flat = samples.abs().reshape(-1)
        idx = min(int(q * flat.numel()), flat.numel() - 1)
        return torch.kthvalue(flat, idx + 1).values
    rows_per_chunk = max(1, _ROW_CHUNK_ELEMS // m)
    qs = [_row_quantile(samples[i:i + rows_per_chunk].abs(), q)
          for i in range(0, n, rows_per_chunk)]
    return torch.cat(qs).mean()


def l2_normalize_(x: torch.Tensor) -> torch.Tensor:
    """Normalise the last axis in place: x / max(||x||, eps), each row first
    divided by its largest |value| so that no magnitude overflows (1e20) or
    underflows (1e-30) the float32 sum of squares; all-zero rows stay zero."""
    x.div_(x.abs().amax(dim=-1, keepdim=True).clamp_min_(torch.finfo(x.dtype).tiny))
    return x.div_(x.norm(dim=-1, keepdim=True).clamp_min_(NORM_EPS))


def prepare_layers(features: Any, name: str, *, q: float = 0.95, exact: bool = False,
                   normalize: bool = True, device: torch.device) -> list[torch.Tensor]:
    """Clamp outliers and L2-normalise each layer; returns contiguous (N, D_l) float32 tensors.

    ``features`` is an N x L x D array (one threshold over all layers) or a list
    of N x D_l arrays (one threshold per layer). The input is never modified.
    """
    q = check_float(q, "q", low=0.0, high=1.0, low_open=True)
    if isinstance(features, (list, tuple)):
        if len(features) == 0:
            raise ValueError(f"{name} is an empty list of layers")
        layers = [as_tensor(x, f"{name}[{i}]", ndim=2, device=device)
                  for i, x in enumerate(features)]
        counts = [int(x.shape[0]) for x in layers]
        if len(set(counts)) > 1:
            raise ValueError(f"layers of {name} disagree on the number of samples: {counts}")
        groups = [(x, x.clone(memory_format=torch.contiguous_format)) for x in layers]
    else:
        x = as_tensor(features, name, ndim=3, device=device)
        # One (L, N, D) copy: contiguous layers for the Gram products, and ours
        # to clamp and normalise in place.
        stacked = torch.empty((x.shape[1], x.shape[0], x.shape[2]), dtype=x.dtype, device=x.device)
        stacked.copy_(x.permute(1, 0, 2))
        groups = [(x, stacked)]
    out: list[torch.Tensor] = []
    for source, work in groups:
        if q < 1.0:
            t = clamp_threshold(source.reshape(source.shape[0], -1), q, exact)
            work.clamp_(-t, t)
        if normalize:
            l2_normalize_(work)
        out.extend(work.unbind(0) if work.ndim == 3 else [work])
    return out
