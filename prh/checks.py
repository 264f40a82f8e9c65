"""Input checks shared by the metrics and the layer sweep.

Every check raises a ``ValueError`` whose message names the argument and the
offending value, in the style of scikit-learn's ``check_array``: callers and
workflow logs then say what to fix without a traceback hunt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} of shape {tuple(shape)}" if shape is not None else type(x).__name__


def as_tensor(x: Any, name: str, *, ndim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Return ``x`` as a finite float32 torch tensor with ``ndim`` dimensions."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise ValueError(
            f"{name} must be a numpy array or torch tensor, got {_describe(x)}"
        )
    if t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-dimensional, got shape {tuple(t.shape)}"
        )
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    t = t.to(device=device if device is not None else t.device, dtype=torch.float32)
    # A sum is a cheap screen (NaN and Inf propagate); only when it is not
    # finite (which overflow alone can cause) are the elements counted.
    if not bool(torch.isfinite(t.sum())) and (bad := int((~torch.isfinite(t)).sum())):
        raise ValueError(
            f"{name} contains {bad} NaN or Inf values; clean or drop those samples first"
        )
    return t


def check_same_n(a: torch.Tensor, b: torch.Tensor, name_a: str = "A", name_b: str = "B") -> int:
    """Both inputs must describe the same N samples (row n of each is datum n)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples (rows): "
            f"{name_a} has {a.shape[0]}, {name_b} has {b.shape[0]}"
        )
    return int(a.shape[0])


def check_int(value: Any, name: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={value} is out of range: it must be {bounds}")
    return value


def check_float(value: Any, name: str, *, low: float, high: float | None = None,
                low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not np.isfinite(value) or too_low or (high is not None and value > high):
        lo = f"> {low}" if low_open else f">= {low}"
        bounds = lo if high is None else f"{lo} and <= {high}"
        raise ValueError(f"{name}={value!r} is out of range: it must be {bounds}")
    return value


def check_topk(topk: Any, n: int, *, low: int = 1, name: str = "topk") -> int:
    """k nearest neighbours need 1 <= k <= N - 1 (a sample is not its own neighbour)."""
    if n - 1 < low:
        raise ValueError(f"{name}={topk!r} needs at least {low + 1} samples, got N={n}")
    return check_int(topk, name, low=low, high=n - 1)
