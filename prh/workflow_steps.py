"""The data and feature steps of the Snakemake workflow as plain functions.

Each workflow script is a few lines that call one function here or in
:mod:`prh.pairs`; the logic stays in the library, testable without Snakemake.
"""

from __future__ import annotations

import os
from typing import Any, Mapping


def prepare_dataset(dataset: Mapping[str, Any], out: str | os.PathLike) -> None:
    """Write the manifest of one configured dataset: ``source``, ``n_samples``
    and optionally ``path`` and ``options`` (see :func:`prh.datasets.prepare`)."""
    from .datasets import prepare

    options = dict(dataset.get("options") or {})
    if dataset.get("path"):
        options["path"] = dataset["path"]
    manifest = prepare(dataset["source"], dataset["n_samples"], **options)
    manifest.save(out)
    print(f"{out}: {manifest.n} samples of {dataset['source']} ({manifest.content_sha256[:12]})")


def embed(model: Mapping[str, Any], manifest: str | os.PathLike, out: str | os.PathLike,
          *, threads: int | None = None) -> None:
    """Embed a dataset's manifest with one configured model: ``source`` and the
    settings ``batch_size``, ``device``, ``dtype`` (compute), ``storage_dtype``,
    ``pool``. The workflow decides when to rerun, so an existing file is
    always recomputed."""
    from .datasets import load_manifest
    from .embed import embed as run_embed

    res = run_embed(load_manifest(manifest), model["source"], out,
                    batch_size=int(model.get("batch_size") or 32),
                    device=model.get("device") or "auto",
                    model_dtype=model.get("dtype") or "float32",
                    dtype=model.get("storage_dtype") or "float32",
                    pool=model.get("pool"), force=True, progress=False, threads=threads)
    print(f"{out}: {res['n_layers']} layers in {res['seconds']:.1f}s "
          f"(load {res['load_seconds']:.1f}s, forward {res['forward_seconds']:.1f}s)")
