"""Step of rule ``embed_model``: a dataset's manifest through one model."""

from __future__ import annotations

import os
from typing import Any, Mapping


def run(model: Mapping[str, Any], manifest: str | os.PathLike, out: str | os.PathLike,
        *, threads: int | None = None) -> None:
    """Embed a manifest with one configured model: ``source`` and the settings
    ``batch_size``, ``device``, ``dtype`` (compute), ``storage_dtype`` and
    ``pool`` (:meth:`prh.config.Config.embed_params`; every key required, its
    default lives in the config schema), and for an untrained baseline
    ``weights`` ("random") with its ``seed``. The workflow decides when to rerun,
    so an existing file is always recomputed."""
    from ..datasets import load_manifest
    from ..embed import embed

    res = embed(load_manifest(manifest), model["source"], out,
                batch_size=int(model["batch_size"]), device=model["device"],
                model_dtype=model["dtype"], dtype=model["storage_dtype"],
                pool=model["pool"], force=True, progress=False, threads=threads,
                weights=model.get("weights"), seed=model.get("seed"))
    print(f"{out}: {res['n_layers']} layers in {res['seconds']:.1f}s "
          f"(load {res['load_seconds']:.1f}s, forward {res['forward_seconds']:.1f}s)")
