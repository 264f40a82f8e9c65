"""Approximate kNN (prh.sweep.approximate): the FAISS IVF lists against exact
search, and recall_at_k against lists whose recall is known."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from prh.metrics import knn_from_gram, ranking_gram
from prh.preprocess import centre_layer, l2_normalize_
from prh.sweep.approximate import SearchInfo, default_nlist, knn_approximate, recall_at_k

REPO = Path(__file__).resolve().parents[1]


def normalised(n: int, d: int, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return l2_normalize_(torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32)) + shift)


def mixture(n: int, d: int, clusters: int, spread: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def library_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """What a neighbour is in the rest of the library (prh.sweep.knn)."""
    return knn_from_gram(ranking_gram(x)[0], k)[0]


@pytest.mark.parametrize("shift", [0.0, 2.0])  # 2.0: rows far from centred, mean cosine ~0.8
def test_tiny_n_is_exact_and_matches_the_library(shift):
    x = normalised(60, 12, shift=shift)
    assert default_nlist(60) == 1  # one cell: every row scans all rows
    got, info = knn_approximate(x, 5, return_info=True)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.shape == (60, 5)
    assert torch.equal(got, library_knn(x, 5))
    assert info.nlist == 1 and info.nprobe == 1 and info.fallback_rows == 0
    assert recall_at_k(x, got, 5, n_rows=60) == 1.0
    # centred rows (as the sweep stores them) give the same lists: distances ignore a shift
    assert torch.equal(knn_approximate(centre_layer(x)[0], 5), got)
    # numpy in, numpy out
    as_np = knn_approximate(x.numpy(), 5)
    assert isinstance(as_np, np.ndarray) and np.array_equal(as_np, got.numpy())


def test_every_cell_probed_is_exact():
    x = normalised(2000, 16, seed=1)
    got = knn_approximate(x, 7, nlist=16, nprobe=16)
    assert recall_at_k(x, got, 7, rows=np.arange(2000)) == 1.0
    assert torch.equal(got, library_knn(x, 7))


@pytest.fixture(scope="module")
def clustered():
    x = mixture(20000, 32, clusters=100, spread=0.6)
    got, info = knn_approximate(x, 10, seed=0, return_info=True)
    return x, got, info


def test_clustered_recall_reaches_the_target(clustered):
    x, got, info = clustered
    assert isinstance(info, SearchInfo)
    assert info.tuned_recall >= 0.95 and 1 <= info.nprobe < info.nlist
    # measured on rows the tuning did not see
    assert recall_at_k(x, got, 10, n_rows=2000, seed=7) >= 0.95
    # a higher target scans more cells and finds more
    better, more = knn_approximate(x, 10, seed=0, recall=0.99, return_info=True)
    assert more.nprobe > info.nprobe
    assert recall_at_k(x, better, 10, seed=7) > recall_at_k(x, got, 10, seed=7)


def test_lists_hold_k_distinct_others_and_are_deterministic(clustered):
    x, got, _ = clustered
    n = len(x)
    assert got.shape == (n, 10) and got.min() >= 0 and got.max() < n
    assert not (got == np.arange(n)[:, None]).any()
    assert (np.diff(np.sort(got, axis=1), axis=1) > 0).all()
    again = knn_approximate(x[:5000], 10, seed=3)
    assert np.array_equal(again, knn_approximate(x[:5000], 10, seed=3))


def test_recall_detects_a_wrong_index(clustered):
    x, got, _ = clustered
    shuffled = got[np.random.default_rng(0).permutation(len(x))]
    assert recall_at_k(x, shuffled, 10) < 0.02


def test_recall_counts_self_repeats_and_missing_entries_as_missed():
    x = normalised(300, 8, seed=2)
    exact = library_knn(x, 4).numpy()
    rows = np.arange(300)
    assert recall_at_k(x, exact, 4, rows=rows) == 1.0
    with_self = exact.copy()
    with_self[:, 0] = rows
    assert recall_at_k(x, with_self, 4, rows=rows) == 0.75
    repeated = np.repeat(exact[:, :1], 4, axis=1)
    assert recall_at_k(x, repeated, 4, rows=rows) == 0.25
    missing = exact.copy()
    missing[:, 3] = -1
    assert recall_at_k(x, missing, 4, rows=rows) == 0.75
    # only the first k columns are read
    assert recall_at_k(x, np.concatenate([exact, exact[:, ::-1]], axis=1), 4, rows=rows) == 1.0


def test_ties_at_the_kth_score_count_as_found():
    # rows on a circle: the row at angle 0 has two neighbours at +-theta, equally near
    angles = np.array([0.0, 0.3, -0.3, 1.5, 2.5, -2.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    exact = library_knn(torch.from_numpy(x), 1).numpy()
    other = exact.copy()
    other[0, 0] = 2 if exact[0, 0] == 1 else 1
    assert recall_at_k(x, other, 1, rows=[0]) == 1.0
    other[0, 0] = 3
    assert recall_at_k(x, other, 1, rows=[0]) == 0.0


def test_duplicate_rows():
    base = normalised(400, 10, seed=3).numpy()
    # each row three times, and row 0 twelve times more: more copies than k
    x = np.concatenate([base, base, base, np.repeat(base[:1], 12, axis=0)])
    n, k = len(x), 5
    got = knn_approximate(x, k)
    assert not (got == np.arange(n)[:, None]).any()
    assert (np.diff(np.sort(got, axis=1), axis=1) > 0).all()
    copies = {i: np.flatnonzero((x == x[i]).all(axis=1)) for i in range(n)}
    for i in range(n):
        want = min(k, len(copies[i]) - 1)  # the other copies are nearest, at distance 0
        assert set(got[i, :want]) <= set(copies[i]) - {i}, i
    assert recall_at_k(x, got, k, rows=np.arange(n)) >= 0.95
    # every cell scanned: all lists exact, whichever of the tied copies each holds
    every = knn_approximate(x, k, nlist=8, nprobe=8)
    assert recall_at_k(x, every, k, rows=np.arange(n)) == 1.0
    assert not (every == np.arange(n)[:, None]).any()


def test_exact_fn_replaces_the_brute_force():
    x = normalised(200, 6, seed=4).numpy()
    got = knn_approximate(x, 3)
    calls = []

    def cosine(rows_x, rows):
        calls.append(len(rows))
        return rows_x[rows] @ rows_x.T

    assert recall_at_k(x, got, 3, n_rows=50, exact_fn=cosine) == recall_at_k(x, got, 3, n_rows=50)
    assert sum(calls) == 50
    with pytest.raises(ValueError, match="exact_fn: returned shape"):
        recall_at_k(x, got, 3, n_rows=5, exact_fn=lambda a, r: a @ a.T)


@pytest.mark.parametrize("call, match", [
    (lambda x: knn_approximate(x, 40), r"k=40: need an integer 1 <= k <= N - 1 = 39"),
    (lambda x: knn_approximate(x, 0), r"k=0"),
    (lambda x: knn_approximate(x, 2.5), r"k=2.5"),
    (lambda x: knn_approximate(x[0], 2), r"x: expected \(N, D\) rows"),
    (lambda x: knn_approximate(x.astype(np.int64), 2), r"x: expected floating rows"),
    (lambda x: knn_approximate(np.where(np.arange(40)[:, None] == 7, np.nan, x), 2),
     r"x: row 7 is not finite"),
    (lambda x: knn_approximate(x, 2, recall=1.5), r"recall=1.5"),
    (lambda x: knn_approximate(x, 2, nlist=2, nprobe=3), r"nprobe=3: need 1 <= nprobe <= nlist = 2"),
    (lambda x: knn_approximate(x, 2, threads=0), r"threads=0"),
    (lambda x: recall_at_k(x, np.zeros((40, 1), dtype=np.int64), 2),
     r"approx_idx: expected shape \(40, >= 2\)"),
    (lambda x: recall_at_k(x, np.zeros((40, 2), dtype=np.int64), 40), r"k=40"),
    (lambda x: recall_at_k(x, np.zeros((40, 2), dtype=np.int64), 2, rows=[40]), r"rows:"),
])
def test_arguments_are_checked_in_one_line(call, match):
    x = normalised(40, 4).numpy()
    with pytest.raises(ValueError, match=match) as err:
        call(x)
    assert "\n" not in str(err.value)


def test_threads_are_restored():
    import faiss

    before = faiss.omp_get_max_threads()
    knn_approximate(normalised(100, 4), 3, threads=1)
    assert faiss.omp_get_max_threads() == before


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    return res.stdout


def test_importing_the_module_loads_neither_faiss_nor_torch():
    out = _run("import sys, prh.sweep, prh.sweep.approximate\n"
               "print(sorted({'faiss', 'torch'} & set(sys.modules)))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("first", ["torch", "faiss"])
def test_faiss_and_torch_share_a_process(first):
    # each wheel ships its own OpenMP runtime; both orders must import and run threaded work
    second = "faiss" if first == "torch" else "torch"
    out = _run(f"import {first}, {second}\n"
               "import numpy as np, torch\n"
               "torch.set_num_threads(2)\n"
               "from prh.sweep.approximate import knn_approximate, recall_at_k\n"
               "x = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)\n"
               "got = knn_approximate(x, 5, threads=2, nlist=8, nprobe=8)\n"
               "y = torch.from_numpy(x) @ torch.from_numpy(x).T\n"
               "print(recall_at_k(x, got, 5), torch.get_num_threads())")
    assert out.split() == ["1.0", "2"]
