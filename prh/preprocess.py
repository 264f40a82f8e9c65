"""Per-model preprocessing before a layer sweep: outlier clamp, then L2 normalisation.

A model's features come either as one N x L x D array (every layer the same
width: transformers) or as a list of L arrays N x D_l (CNN blocks of different
widths). The clamp threshold t is computed over the whole tensor in the first
case and layer by layer in the second; layers are never padded to a common
width, since padded zeros would move t (``docs/metrics.md``).

Clamping and normalising run in float64, one layer at a time, and only the
result is rounded to float32. On anisotropic layers (hidden states of large
causal LMs: a large mean shared by all samples plus small variations, mean
pairwise cosine 0.999 and above) a float32 normalisation moves each sample's
norm by ~1e-7, as much as the variations that CKA and the kNN lists are about.
:func:`prepare_centred_layers` (what the layer sweep uses) also centres each
layer before the rounding and keeps two float64 offsets that restore every
inner product of the original rows (:func:`centre_layer`).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, NamedTuple

import torch

from .checks import as_tensor, check_float

NORM_EPS = 1e-12  # as torch.nn.functional.normalize
_ROW_CHUNK_ELEMS = 1 << 24  # bound |x| copies made while finding quantiles
_ROW_CHUNK_BYTES = 1 << 25  # bound float64 row copies made by rows_dot


def _row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-quantile with linear interpolation (numpy's and torch's default), float64.

    ``torch.quantile`` refuses inputs over 2^24 elements and sorts whole rows.
    The quantile only needs the two order statistics around position
    q * (M - 1); a partial top-k on the nearer end of each row finds both,
    several times faster than a sort or two k-th value selections. The order
    statistics are exact in any dtype; the interpolation runs in float64.
    """
    m = rows.shape[1]
    pos = q * (m - 1)
    lo = math.floor(pos)
    frac = pos - lo
    if m - lo <= lo + 2:  # the upper end is shorter: keep the m - lo largest
        top = torch.topk(rows, m - lo, dim=1, largest=True, sorted=False).values
        v_lo = top.min(dim=1).values.double()
        if frac == 0 or top.shape[1] < 2:
            return v_lo
        v_hi = torch.kthvalue(top, 2, dim=1).values.double()
    else:  # keep the lo + 2 smallest
        bottom = torch.topk(rows, lo + 2, dim=1, largest=False, sorted=False).values
        v_hi = bottom.max(dim=1).values.double()
        v_lo = torch.kthvalue(bottom, lo + 1, dim=1).values.double()
        if frac == 0:
            return v_lo
    return torch.lerp(v_lo, v_hi, torch.tensor(frac, dtype=torch.float64, device=rows.device))


def clamp_threshold(samples: torch.Tensor, q: float, exact: bool) -> torch.Tensor:
    """The clamp threshold t over ``samples`` (N x M: each row one sample's values),
    a float64 scalar.

    fast: mean over samples of each sample's q-quantile of |x|; exact: the
    element at floor(q * size) of all |x| sorted ascending.
    """
    n, m = samples.shape
    if exact:
        flat = samples.abs().reshape(-1)
        idx = min(int(q * flat.numel()), flat.numel() - 1)
        return torch.kthvalue(flat, idx + 1).values.double()
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


def centre_layer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer (N, D) as its centred rows plus the offsets that restore its Gram matrix.

    Returns xc = x - m (float32, m the column mean), a = (x - m) @ m (N,) and
    c = m . m (float64 scalar, a in float64 too), so that

        x x^T = xc xc^T + a 1^T + 1 a^T + c    (exactly, up to xc's rounding).

    xc xc^T is the centred linear kernel H K H itself, so CKA needs no
    correction that cancels; its entries, and a, are on the scale of the
    variations between samples, so float32 holds them to ~1e-7 of that scale
    however large the shared mean (the uncentred float32 Gram matrix holds them
    only to ~1e-7 of |m|^2).

    float64 input is centred in float64 and rounded once. For float32 input m
    is the float32 mean: any m near the mean serves (the identity holds for
    every m), a float32 difference of two float32 numbers is rounded once, as
    if taken in float64, and no float64 copy of the rows is kept.
    """
    if x.dtype == torch.float64:
        mean = x.mean(dim=0)
        xc = x - mean
        return xc.float(), xc @ mean, mean @ mean
    mean = x.mean(dim=0)
    return x - mean, *mean_offsets(x, mean)


def rows_dot(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """x @ v in float64 for float32 rows x (N, D) and a float64 v (D,); x is
    converted in row chunks of at most 32 MB (one chunk for most layers: few
    small operations, which is what matters when threads contend)."""
    step = max(1, _ROW_CHUNK_BYTES // (8 * x.shape[1]))
    return torch.cat([x[i:i + step].double() @ v for i in range(0, x.shape[0], step)])


def mean_offsets(x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a = (x - m) @ m (N,) and c = m . m, float64, for rows x and any float32 m
    (see :func:`centre_layer`)."""
    m64 = mean.double()
    c = m64 @ m64
    # x . m - m . m in float64: it cancels to a ~ |xc| |m| (or ~ |xc|^2 for unit
    # rows) from ~|m|^2, far above float64's rounding.
    return rows_dot(x, m64) - c, c


def _prepared_float64(features: Any, name: str, *, q: float, exact: bool, normalize: bool,
                      device: torch.device, norms: list | None = None) -> Iterator[torch.Tensor]:
    """Each layer clamped and normalised, as a float64 (N, D_l) tensor, one at a time;
    ``norms`` collects each layer's (N,) row norms before the normalisation
    (ones without it), what Euclidean distances between the clamped rows need."""
    q = check_float(q, "q", low=0.0, high=1.0, low_open=True)
    if isinstance(features, (list, tuple)):
        if len(features) == 0:
            raise ValueError(f"{name} is an empty list of layers")
        layers = [as_tensor(x, f"{name}[{i}]", ndim=2, device=device)
                  for i, x in enumerate(features)]
        counts = [int(x.shape[0]) for x in layers]
        if len(set(counts)) > 1:
            raise ValueError(f"layers of {name} disagree on the number of samples: {counts}")
        groups = [(x, [x]) for x in layers]
    else:
        x = as_tensor(features, name, ndim=3, device=device)
        groups = [(x, x.unbind(1))]
    for source, group in groups:
        t = clamp_threshold(source.reshape(source.shape[0], -1), q, exact) if q < 1.0 else None
        for layer in group:
            work = layer.to(torch.float64, copy=True)
            if t is not None:
                work.clamp_(-t, t)
            if norms is not None:
                norms.append(torch.linalg.vector_norm(work, dim=1) if normalize
                             else torch.ones(work.shape[0], dtype=torch.float64, device=work.device))
            if normalize:
                l2_normalize_(work)
            yield work


def prepare_layers(features: Any, name: str, *, q: float = 0.95, exact: bool = False,
                   normalize: bool = True, device: torch.device) -> list[torch.Tensor]:
    """Clamp outliers and L2-normalise each layer; returns contiguous (N, D_l) float32 tensors.

    ``features`` is an N x L x D array (one threshold over all layers) or a list
    of N x D_l arrays (one threshold per layer). The input is never modified.
    The work runs in float64; only the result is rounded to float32.
    """
    return [x.float() for x in _prepared_float64(features, name, q=q, exact=exact,
                                                 normalize=normalize, device=device)]


class CentredLayers(NamedTuple):
    """Prepared layers as :func:`centre_layer` gives them: ``layers`` the centred
    float32 rows, ``mean_dots`` (L, N) and ``mean_sq`` (L,) the float64 offsets;
    ``row_norms`` (L, N) float64 the clamped rows' norms before normalisation."""

    layers: list[torch.Tensor]
    mean_dots: torch.Tensor
    mean_sq: torch.Tensor
    row_norms: torch.Tensor | None = None


def prepare_centred_layers(features: Any, name: str, *, q: float = 0.95, exact: bool = False,
                           normalize: bool = True, device: torch.device) -> CentredLayers:
    """:func:`prepare_layers`, each layer then centred in float64 before its rounding to float32."""
    norms: list[torch.Tensor] = []
    parts = [centre_layer(x) for x in _prepared_float64(features, name, q=q, exact=exact,
                                                        normalize=normalize, device=device,
                                                        norms=norms)]
    return CentredLayers([p[0] for p in parts], torch.stack([p[1] for p in parts]),
                         torch.stack([p[2] for p in parts]), torch.stack(norms))
