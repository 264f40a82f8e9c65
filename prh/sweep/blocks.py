"""How every family's sweep cuts its work: blocks of X's layers under a memory
budget, reads of entry-major copies, and one CPU thread for many small ops."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

_BLOCK_BYTES = int(os.environ.get("PRH_SWEEP_BLOCK_BYTES", 256 * 2**20))


def layer_blocks(n_rows: int, bytes_per_row: int) -> Iterator[slice]:
    """Slices of ``n_rows`` layers whose temporaries, ``bytes_per_row`` a
    layer, stay under ``PRH_SWEEP_BLOCK_BYTES`` (default 256 MiB)."""
    step = max(1, _BLOCK_BYTES // max(1, bytes_per_row))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def lookup(entries: torch.Tensor, lin: torch.Tensor) -> torch.Tensor:
    """entries (N*N, Ly) (see LayerCache.by_entry) read at linear indices lin
    (bx, N, k) -> (bx, Ly, N, k), a strided view."""
    got = entries.index_select(0, lin.reshape(-1)).view(*lin.shape, entries.shape[1])
    return got.permute(0, 3, 1, 2)


def sample_order(s, perm: torch.Tensor | None) -> torch.Tensor:
    """Which original sample sits at each position of Y (a LayerCache) after ``perm``."""
    return torch.arange(s.n, device=s.device) if perm is None else perm


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Torch ops on one thread inside. A permutation null on a CPU is
    thousands of small ops per pair (cache-sized blocks for CKA, O(N k)
    lookups for kNN metrics), each too short to amortise waking a second
    thread: on the project's shared, busy 2-core machine the waits at every
    op's join made nulls 5-20x slower on two threads than on one
    (benchmarks/bench_calibration.py); pair jobs run side by side anyway."""
    before = torch.get_num_threads()
    if device.type == "cpu" and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
