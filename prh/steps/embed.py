"""Step of rule ``embed_model``: a dataset's manifest through one model, or,
for a ``file:`` source, the user's precomputed features checked against the
manifest and imported."""

from __future__ import annotations

import os
from typing import Any, Mapping


def run(model: Mapping[str, Any], manifest: str | os.PathLike, out: str | os.PathLike,
        *, name: str, threads: int | None = None) -> None:
    """Embed a manifest with one configured model: ``source`` and the settings
    ``batch_size``, ``device``, ``dtype`` (compute), ``storage_dtype`` and
    ``pool`` (:meth:`prh.config.Config.embed_params`; every key required, its
    default lives in the config schema), ``weights`` (with ``seed`` for
    random ones) where set, and ``options`` for py: sources. The workflow
    decides when to rerun, so an existing file is always recomputed."""
    from ..datasets import load_manifest
    from ..models.registry import parse_source

    source = parse_source(model["source"], model["modality"])
    m = load_manifest(manifest)
    if source.kind == "file":
        from ..formats.user_features import import_features

        res = import_features(source.path, out, model=name, modality=model["modality"],
                              manifest_ids=m.ids, manifest=manifest, dataset=m.dataset,
                              manifest_sha256=m.content_sha256,
                              layer_names=model.get("layer_names"), dtype=model["storage_dtype"],
                              source=source.text)
        print(f"{out}: {res['n_layers']} layers imported from {source.path}")
        return
    # torch only from here: importing precomputed features needs none
    from ..devices import resolve_device
    from ..embed import embed
    from ..jobio import publish
    from ..reruns import backup_path

    resolve_device(model["device"])  # a setting that cannot run fails before any reuse
    # The features of an earlier run, kept by the workflow when Snakemake
    # removed them, are reused if they are this model's, manifest's and
    # settings', else recomputed in their place (prh.reruns).
    prev = backup_path(out)
    reuse = prev.exists()
    res = embed(m, model["source"], prev if reuse else out,
                batch_size=int(model["batch_size"]), device=model["device"],
                model_dtype=model["dtype"], dtype=model["storage_dtype"],
                pool=model["pool"], force=not reuse, progress=False, threads=threads,
                weights=model.get("weights"), seed=model.get("seed"),
                modality=model["modality"], options=model.get("options"))
    if reuse:
        publish(prev, out)
    if res.get("skipped"):
        print(f"{out}: the previous features match these settings; put back")
        return
    print(f"{out}: {res['n_layers']} layers in {res['seconds']:.1f}s "
          f"(load {res['load_seconds']:.1f}s, forward {res['forward_seconds']:.1f}s)")
