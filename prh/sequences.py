"""Longest common subsequence and Levenshtein distance of many short lists at once.

kNN lists are short (k is about 10) but there are N of them per layer pair and
thousands of layer pairs, so the dynamic programme runs over the k x k cells in
Python while every cell is updated for all lists at once as a tensor op.
"""

from __future__ import annotations

import torch


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("sequence batches need at least one dimension (the list)")
    x, y = torch.broadcast_tensors(x[..., :, None], y[..., None, :])
    return x, y


def lcs_length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Length of the longest common subsequence of x[..., :] and y[..., :].

    Leading dimensions broadcast; returns an int64 tensor of the broadcast shape.
    """
    xx, yy = _check_pair(x, y)
    eq = xx == yy  # (..., kx, ky): does x[a] equal y[b]
    kx, ky = eq.shape[-2], eq.shape[-1]
    batch = eq.shape[:-2]
    prev = torch.zeros(*batch, ky + 1, dtype=torch.int64, device=eq.device)
    for a in range(kx):
        cur = torch.zeros_like(prev)
        for b in range(ky):
            take = prev[..., b] + 1
            skip = torch.maximum(prev[..., b + 1], cur[..., b])
            cur[..., b + 1] = torch.where(eq[..., a, b], take, skip)
        prev = cur
    return prev[..., ky]


def levenshtein(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Edit distance (insert, delete, substitute; each costs 1) of x[..., :] and y[..., :]."""
    xx, yy = _check_pair(x, y)
    ne = (xx != yy).to(torch.int64)
    kx, ky = ne.shape[-2], ne.shape[-1]
    batch = ne.shape[:-2]
    prev = torch.arange(ky + 1, dtype=torch.int64, device=ne.device).expand(*batch, ky + 1).clone()
    for a in range(kx):
        cur = torch.empty_like(prev)
        cur[..., 0] = a + 1
        for b in range(ky):
            cur[..., b + 1] = torch.minimum(
                torch.minimum(prev[..., b + 1] + 1, cur[..., b] + 1),
                prev[..., b] + ne[..., a, b],
            )
        prev = cur
    return prev[..., ky]
