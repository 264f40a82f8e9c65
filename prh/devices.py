"""The one device resolver of embedding and alignment jobs."""

from __future__ import annotations

from typing import Sequence

import torch

DEVICE_HELP = "use auto, cpu, cuda, cuda:<index> or mps"


def resolve_device(device: str | torch.device | None = "auto", *,
                   accelerators: Sequence[str] = ("cuda", "mps")) -> torch.device:
    """A torch device from a setting. ``auto`` (or None) takes the first of
    ``accelerators`` that is available, else the CPU; a named accelerator that
    is not available is a one-line error rather than a crash in the first
    kernel. Alignment passes ``accelerators=("cuda",)``: its float64 kernel
    terms do not run on Apple's MPS."""
    if device is None or str(device) == "auto":
        for kind in accelerators:
            if kind == "cuda" and torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if kind == "mps" and mps is not None and mps.is_available():
                return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err}); {DEVICE_HELP}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this "
                         "machine; use cpu or auto")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} requested but MPS is not available on this "
                             "machine; use cpu or auto")
    return dev
