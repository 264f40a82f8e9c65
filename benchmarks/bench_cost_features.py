"""Fit the features representation's cost constants (prh/config/cost_features.py)
from its parts, timed on a few shapes, and store them in prh/config/cost.yaml
(``features:``).

Run by hand (not part of the tests), from the checkout root:

``PYTHONPATH=. .venv/bin/python benchmarks/bench_cost_features.py [--shapes 10000:64 ...] [--write]``
(default shapes: 10^4:64, 2x10^4:64, 10^4:256, 4x10^4:32, 10^5:64)

Each shape N:D runs in a fresh process, one thread, CPU seconds of the
process (time.process_time), on two random models of one D-wide layer that
share a latent (k = 10, the wide lists K' = 3k that the workflow stores, 10
permutations). Parts: preprocessing, the search of K' and the k-lists read
from it, the file written and read, the CKAs' kernel terms and cross-
covariance, each kNN metric's per-model terms, sweep and permuted sweep, a
CKA null, a 5-group jackknife resample's lists. Each constant is a least
squares fit through the origin of its part's seconds on its work count
(docs/large-n.md, "Cost"); the search's two (N^2 D products, N^2 ranking
values) are fitted together. The residuals (fitted / measured per shape)
are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

K, WIDE, PERMS = 10, 30, 10
KNN_METRICS = ("mutual_knn", "cknna")


def _cpu(fn):
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def measure(n: int, d: int) -> dict:
    import torch

    from prh.formats.layer_cache import load_layer_cache, save_layer_cache
    from prh.inference.resampling import resample_indices
    from prh.sweep.dispatch import permuted_sweeps, sweep
    from prh.sweep.representation import FeatureCache

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 8))
    feats = [(latent @ rng.normal(size=(8, d)) + rng.standard_t(4, size=(n, d)))
             .astype(np.float32)[:, None, :] for _ in range(2)]
    r: dict = {"n": n, "d": d, "load": os.getloadavg()[0]}
    r["prepare"], caches = _cpu(lambda: [FeatureCache.from_features(f, device="cpu")
                                         for f in feats])
    r["prepare"] /= 2
    fx, fy = caches
    r["search"], _ = _cpu(lambda: fx._search([WIDE], None))
    fy._search([WIDE], None)
    r["derive"], _ = _cpu(lambda: fx._read_from_wider([K]))
    fy._read_from_wider([K])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.h5")
        r["file"], _ = _cpu(lambda: save_layer_cache(fx, path, topk=[K, WIDE]))
        r["file_bytes"] = os.path.getsize(path)
        r["load_s"], _ = _cpu(lambda: load_layer_cache(path))
    r["kernel"], _ = _cpu(lambda: (fx.kernel_terms("ip", 1.0), fy.kernel_terms("ip", 1.0)))
    r["kernel"] /= 2
    r["cka"], _ = _cpu(lambda: sweep(fx, fy, "cka"))
    perms = torch.stack([torch.from_numpy(np.random.default_rng(i).permutation(n))
                         for i in range(PERMS)])
    r["cka_null"], _ = _cpu(lambda: permuted_sweeps(fx, fy, "cka", perms))
    r["cka_null"] /= PERMS
    for m in KNN_METRICS:
        terms = (lambda c: c.cknna_terms(K)) if m == "cknna" else (lambda c: c.knn(K))
        r[f"{m}_layer"], _ = _cpu(lambda: (terms(fx), terms(fy)))
        r[f"{m}_layer"] /= 2
        r[f"{m}_sweep"], _ = _cpu(lambda: sweep(fx, fy, m, topk=K))
        r[f"{m}_null"], _ = _cpu(lambda: permuted_sweeps(fx, fy, m, perms, topk=K))
        r[f"{m}_null"] /= PERMS
    idx = torch.from_numpy(resample_indices(n, "jackknife", 5, seed=0)[0])
    r["resample_n"] = len(idx)
    r["resample"], _ = _cpu(lambda: fx.resample(idx).neighbours(K))
    return r


def lstsq(rows, y) -> np.ndarray:
    """Non-negative coefficients minimising the relative errors (each shape
    weighs alike, whatever its size: the work grows 100-fold over them)."""
    a, b = np.asarray(rows, dtype=float), np.asarray(y, dtype=float)
    w = 1.0 / np.maximum(b, 1e-9)
    return np.clip(np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0], 0.0, None)


def fit(results: list[dict]) -> tuple[dict, list[str]]:
    lines, c = [], {}

    def one(name, units, y):
        coef = lstsq([[u] for u in units], y)
        c[name] = float(coef[0])
        lines.append(f"{name:>18} {c[name]:.3e}  fitted/measured "
                     + " ".join(f"{c[name] * u / t:.2f}" for u, t in zip(units, y) if t > 0))

    n = [r["n"] for r in results]
    d = [r["d"] for r in results]
    one("prepare", [a * b for a, b in zip(n, d)], [r["prepare"] for r in results])
    rows = [[a * a * b, a * a] for a, b in zip(n, d)]
    c["product"], c["rank"] = (float(v) for v in lstsq(rows, [r["search"] for r in results]))
    lines.append(f"{'product, rank':>18} {c['product']:.3e} {c['rank']:.3e}  fitted/measured "
                 + " ".join(f"{(c['product'] * u[0] + c['rank'] * u[1]) / r['search']:.2f}"
                            for u, r in zip(rows, results)))
    one("derive", [a * WIDE for a in n], [r["derive"] for r in results])
    c["file"] = float(np.median([r["file"] for r in results]))
    one("load", [r["file_bytes"] for r in results], [r["load_s"] for r in results])
    # a layer's kernel terms (its covariance, row sums, squared norms) and a
    # cross-covariance (a CKA permutation's: the permuted rows gathered too):
    # N D_x D_y float64 products and N (D_x + D_y) rows converted to float64
    for name, key in (("kernel", "kernel"), ("cov", "cka_null")):
        rows = [[a * b * b, a * b] for a, b in zip(n, d)]
        y = [r[key] for r in results]
        c[name], c[f"{name}_rows"] = (float(v) for v in lstsq(rows, y))
        lines.append(f"{name + ', rows':>18} {c[name]:.3e} {c[name + '_rows']:.3e}  "
                     "fitted/measured " + " ".join(
                         f"{(c[name] * u[0] + c[name + '_rows'] * u[1]) / t:.2f}"
                         for u, t in zip(rows, y)))
    c["metrics"] = {}
    for m in KNN_METRICS:
        t = {}
        for part, key in (("layer", f"{m}_layer"), ("sweep", f"{m}_sweep"),
                          ("null", f"{m}_null")):
            units = [a * K * (1 if part == "layer" else K) for a in n]
            one(f"{m} {part}", units, [r[key] for r in results])
            t[part] = c.pop(f"{m} {part}")
        t["call"] = 0.0
        c["metrics"][m] = t
    return c, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=["10000:64", "20000:64", "10000:256",
                                                     "40000:32", "100000:64"])
    ap.add_argument("--write", action="store_true", help="store the constants in cost.yaml")
    ap.add_argument("--json", default=None, help="also keep the measurements here")
    ap.add_argument("--from-json", default=None, help="fit these measurements, measure nothing")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        n, d = (int(v) for v in args.part.split(":"))
        print(json.dumps(measure(n, d)))
        return
    if args.from_json:
        results = json.loads(open(args.from_json).read())
    else:
        results = []
        for shape in args.shapes:
            out = subprocess.run([sys.executable, __file__, "--part", shape],
                                 capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"measured N:D {shape} (load {results[-1]['load']:.1f})", flush=True)
            if args.json:
                open(args.json, "w").write(json.dumps(results, indent=1))
    constants, lines = fit(results)
    print("\n".join(lines))
    if args.write:
        from prh.config import cost

        loads = [r["load"] for r in results]
        head = [ln[2:] for ln in cost.CONSTANTS_PATH.read_text().splitlines()[1:]
                if ln.startswith("# ") and not ln.startswith("# CPU seconds per unit")]
        note = (" ".join(head).split("; the features representation")[0].rstrip(".")
                + f"; the features representation: benchmarks/bench_cost_features.py on "
                f"{len(results)} shapes, 1-minute load averages {min(loads):.1f}-{max(loads):.1f}")
        import textwrap

        all_c = {**cost.constants(), "features": constants}
        cost.write_constants(all_c, note="\n# ".join(textwrap.wrap(note, 76)))
        print(f"wrote {cost.CONSTANTS_PATH}")


if __name__ == "__main__":
    main()
