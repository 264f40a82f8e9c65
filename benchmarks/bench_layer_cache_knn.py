"""One layer_cache job of the features representation, exact or approximate kNN.

Run by hand (not part of the tests):
``PYTHONPATH=. .venv/bin/python benchmarks/bench_layer_cache_knn.py --n 1e5 --knn exact
approximate``

Writes one model's features file (N x D, one layer) to a temporary folder,
then, per ``--knn`` method, runs :func:`prh.steps.layer_cache.run` in a fresh
process as the workflow's rule does (its log through
:func:`prh.jobio.logged`, torch's threads set to ``--threads``) and reports
the job's wall time (the process's, imports included), its peak RSS
(``ru_maxrss``), the layer
cache's size and, for approximate, the recall@k lines of the job's log.

Data (``--data``): ``mixture``, 100 Gaussian clusters (centres N(0, I),
noise 0.6 N(0, I)), what benchmarks/bench_knn_search.py measures; ``latent``,
an 8-dimensional latent through a random map plus Student-t noise, what
benchmarks/bench_large_n.py scores (the noise fills every direction: few
rows share a cell, the hard case for an inverted-file index).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = """
import resource, sys
from prh.jobio import logged, set_threads
from prh.steps import layer_cache
features, out, log, knn, topk, threads = sys.argv[1:7]
with logged(log):
    set_threads(int(threads))
    layer_cache.run(features, out, q=0.95, exact=False, normalize=True, topk=[int(topk)],
                    cca_dims=[], layers=True, device="cpu", representation="features", knn=knn)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def data(kind: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "mixture":
        centres = rng.standard_normal((100, d)).astype(np.float32)
        rows = centres[rng.integers(0, 100, n)]  # before the noise: the data docs/large-n.md reports
        return rows + 0.6 * rng.standard_normal((n, d), dtype=np.float32)
    latent = rng.normal(size=(n, 8))
    return (latent @ rng.normal(size=(8, d)) + rng.standard_t(4, size=(n, d))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=float, default=1e5)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--knn", nargs="+", default=["approximate"], choices=["exact", "approximate"])
    ap.add_argument("--data", nargs="+", default=["mixture"], choices=["mixture", "latent"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    n = int(args.n)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from file_factories import write_features

    print(f"N={n} D={args.d} topk={args.topk} threads={args.threads} one layer; "
          f"load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.data:
            feats = write_features(os.path.join(tmp, f"{kind}.h5"), [data(kind, n, args.d)])
            for knn in args.knn:
                out, log = (os.path.join(tmp, f"{kind}.{knn}.{ext}") for ext in ("h5", "log"))
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", CHILD, str(feats), out, log, knn,
                                       str(args.topk), str(args.threads)], capture_output=True,
                                      text=True)
                wall = time.perf_counter() - t0
                text = open(log).read() if os.path.exists(log) else ""
                if proc.returncode:
                    sys.exit(f"{kind} {knn}: failed\n{text}{proc.stderr}")
                peak = int(proc.stdout.split()[-1]) / 1024
                print(f"{kind:>8} {knn:>12}: {wall:7.1f} s wall, peak RSS {peak:6.0f} MB, "
                      f"file {os.path.getsize(out) / 2**20:.1f} MiB")
                for line in re.findall(r"recall@.*", text):
                    print(f"{'':>23}{line}")


if __name__ == "__main__":
    main()
