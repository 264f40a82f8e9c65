"""Longest common subsequence and Levenshtein distance of many short lists at once.

kNN lists are short (k is about 10) but there are N of them per layer pair and
thousands of layer pairs (times the permutations of a null), so every list is
processed at once as tensor ops. Lists of up to 62 items use bit-parallel
algorithms: one column of the dynamic programme is a bit vector in an int64,
so a pair of lists costs ky steps of a few integer ops instead of kx * ky cell
updates (LCS: Allison & Dix 1986 / Hyyro 2004; Levenshtein: Myers 1999 in
Hyyro's 2003 formulation). Longer lists fall back to the plain programme.
"""

from __future__ import annotations

import torch


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("sequence batches need at least one dimension (the list)")
    x, y = torch.broadcast_tensors(x[..., :, None], y[..., None, :])
    return x, y


_MAX_BITS = 62  # the bit vectors live in int64, with room for a carry


def _match_masks(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(..., ky) int64: bit a of entry b says x[..., a] == y[..., b]."""
    x, y = torch.broadcast_tensors(x[..., :, None], y[..., None, :])
    masks = torch.zeros(y.shape[:-2] + y.shape[-1:], dtype=torch.int64, device=y.device)
    for a in range(x.shape[-2]):
        masks |= (x[..., a, :] == y[..., a, :]).to(torch.int64) << a
    return masks


def _popcount(v: torch.Tensor, bits: int) -> torch.Tensor:
    out = torch.zeros_like(v)
    for i in range(bits):
        out += (v >> i) & 1
    return out


def lcs_length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Length of the longest common subsequence of x[..., :] and y[..., :].

    Leading dimensions broadcast; returns an int64 tensor of the broadcast shape.
    """
    xx, yy = _check_pair(x, y)
    kx = xx.shape[-2]
    if kx > _MAX_BITS:
        return _lcs_dp(xx == yy)
    full = (1 << kx) - 1
    masks = _match_masks(x, y)
    # v holds a 1 at row a while the column's LCS value has not stepped up there.
    v = torch.full(masks.shape[:-1], full, dtype=torch.int64, device=masks.device)
    for b in range(masks.shape[-1]):
        u = v & masks[..., b]
        v = ((v + u) | (v - u)) & full
    return kx - _popcount(v, kx)


def levenshtein(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Edit distance (insert, delete, substitute; each costs 1) of x[..., :] and y[..., :]."""
    xx, yy = _check_pair(x, y)
    kx = xx.shape[-2]
    if kx > _MAX_BITS:
        return _levenshtein_dp(xx == yy)
    full, high = (1 << kx) - 1, 1 << (kx - 1)
    masks = _match_masks(x, y)
    # vp / vn: rows where the column's value steps up / down by one from the row above.
    vp = torch.full(masks.shape[:-1], full, dtype=torch.int64, device=masks.device)
    vn = torch.zeros_like(vp)
    dist = torch.full_like(vp, kx)
    for b in range(masks.shape[-1]):
        pm = masks[..., b]
        xv = pm | vn
        d0 = (((xv & vp) + vp) ^ vp) | xv
        hp = vn | ~(d0 | vp)
        hn = d0 & vp
        dist += ((hp & high) != 0).to(torch.int64) - ((hn & high) != 0).to(torch.int64)
        hp = ((hp << 1) | 1) & full  # the top row grows by one per column: a +1 enters
        hn = (hn << 1) & full
        vp = (hn | ~(d0 | hp)) & full
        vn = hp & d0
    return dist


def _lcs_dp(eq: torch.Tensor) -> torch.Tensor:
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


def _levenshtein_dp(eq: torch.Tensor) -> torch.Tensor:
    ne = (~eq).to(torch.int64)
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
