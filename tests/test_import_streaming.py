"""A file: source is imported layer by layer in blocks of rows: memory holds
about one block whatever the file's size, the values arrive unchanged from
every layout numpy and HDF5 write, and damage found in a late block still
leaves no output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from prh.formats import features as storage
from prh.formats import user_features as uf

REPO = Path(__file__).resolve().parents[1]
N = 37
IDS = [f"s{i}" for i in range(N)]


def _write(path: Path, layers: list[np.ndarray], ids=IDS) -> Path:
    """``layers`` as a features file of ``path``'s format; a .npy holds them
    stacked, so they must share a width."""
    if path.suffix == ".npz":
        np.savez(path, sample_ids=np.array(ids), **{f"l{i}": a for i, a in enumerate(layers)})
    elif path.suffix == ".npy":
        np.save(path, np.stack(layers) if len(layers) > 1 else layers[0])
        uf.ids_file(path).write_text("\n".join(ids) + "\n")
    else:
        with h5py.File(path, "w") as f:
            f["sample_ids"] = np.array(ids, dtype="S")
            for i, a in enumerate(layers):
                f.create_dataset(f"feats/{i}", data=a,
                                 chunks=(max(1, min(len(a) // 5, 256)), a.shape[1]))
    return path


def _import(src: Path, out: Path, ids=IDS) -> dict:
    return uf.import_features(src, out, model="m", modality="vision", manifest_ids=ids,
                              manifest="manifest.json", dataset="d", manifest_sha256="abc")


LAYOUTS = {
    "float64": lambda a: a,
    "float32": lambda a: a.astype(np.float32),
    "big-endian": lambda a: a.astype(">f4"),
    "int16": lambda a: (a * 100).astype(np.int16),
    "fortran": np.asfortranarray,
}


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_blocks_of_a_few_rows_give_every_value_of_every_layout(tmp_path, monkeypatch, suffix,
                                                               layout):
    # 100 bytes: a block of two or three rows, so every layer takes many
    monkeypatch.setattr(uf, "BLOCK_BYTES", 100)
    rng = np.random.default_rng(0)
    layers = [LAYOUTS[layout](rng.standard_normal((N, 5))) for _ in range(3)]
    src = _write(tmp_path / f"src{suffix}", layers)
    if layout == "fortran" and suffix == ".npy":  # the stacked array itself in Fortran order
        np.save(src, np.asfortranarray(np.stack(layers)))
        assert not np.load(src, mmap_mode="r").flags.c_contiguous
    out = tmp_path / "out.h5"
    assert _import(src, out) == {"n_layers": 3}
    for got, want in zip(storage.read_features(out), layers):
        np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))
    assert storage.read_metadata(out)["sample_ids"] == IDS


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_nan_in_the_last_block_of_the_last_layer_leaves_no_output(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(uf, "BLOCK_BYTES", 100)
    layers = [np.ones((N, 5), np.float32), np.ones((N, 5), np.float32)]
    layers[1][N - 1, 4] = np.inf
    src = _write(tmp_path / f"src{suffix}", layers)
    out = tmp_path / "out.h5"
    with pytest.raises(ValueError, match=rf"^features file {src}: layer 1 has NaN or infinite "
                                         rf"values \(rows \d+\.\.{N}\)$"):
        _import(src, out)
    assert set(tmp_path.iterdir()) == {src, *([uf.ids_file(src)] if suffix == ".npy" else [])}


def test_npz_member_damaged_after_its_first_blocks_is_one_line_and_no_output(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(uf, "BLOCK_BYTES", 1000)
    layers = [np.arange(N * 50, dtype=np.float32).reshape(N, 50)] * 2
    src = _write(tmp_path / "src.npz", layers)  # stored, not compressed: bytes as written
    data = bytearray(src.read_bytes())
    at = data.rindex(layers[1][N - 2].tobytes())  # the second layer's next-to-last row
    data[at] ^= 0xFF
    src.write_bytes(bytes(data))
    out = tmp_path / "out.h5"
    with pytest.raises(ValueError) as err:
        _import(src, out)
    msg = str(err.value)
    assert msg.startswith(f"features file {src}: not a readable .npz") and "CRC" in msg, msg
    assert "\n" not in msg and not out.exists()


# Run in a fresh process: tracemalloc counts numpy's buffers, and nothing of
# the test session's own allocations; the modules the import uses are loaded
# first. Prints the traced peak in bytes.
MEASURE = """
import sys, tracemalloc
import h5py
from prh.formats import features, user_features as uf
src, n, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if hasattr(uf, "BLOCK_BYTES"):
    uf.BLOCK_BYTES = block
ids = [f"s{i}" for i in range(n)]
tracemalloc.start()
uf.import_features(src, src + ".out.h5", model="m", modality="vision", manifest_ids=ids,
                   manifest="manifest.json", dataset="d", manifest_sha256="abc")
print(tracemalloc.get_traced_memory()[1])
"""


def traced_peak(src: Path, n: int, block: int, root: Path = REPO) -> int:
    """The import's peak of traced memory, in bytes, with ``root``'s prh."""
    res = subprocess.run([sys.executable, "-c", MEASURE, str(src), str(n), str(block)],
                         check=True, capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    return int(res.stdout.split()[-1])


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_import_holds_about_one_block_of_a_file_32_times_larger(tmp_path, suffix):
    """Two layers of 16 MiB (float32) in blocks of 1 MiB: the import's peak
    stays under an eighth of the file. Reading the file whole, as imports
    did before, peaks above the file's size (every layer at once, and a
    NaN check as large as a quarter of it)."""
    n, d, block = 8192, 512, 1 << 20
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((n, d), dtype=np.float32) for _ in range(2)]
    src = _write(tmp_path / f"big{suffix}", layers, ids=[f"s{i}" for i in range(n)])
    size = sum(a.nbytes for a in layers)
    peak = traced_peak(src, n, block)
    assert peak < size / 8, f"{suffix}: peak {peak / 2**20:.1f} MiB of a {size / 2**20:.0f} MiB file"
    got = storage.read_features(f"{src}.out.h5")
    assert all(np.array_equal(a, b) for a, b in zip(got, layers))
