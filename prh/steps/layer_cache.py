"""Step of rule ``layer_cache``: one model's per-layer alignment work.

Clamping, normalising, Gram matrices, kNN lists and SVCCA bases are computed
once per model here, so that each pair job only combines two layer caches.

Outliers are clamped as the paper does (docs/metrics.md): a model whose layers
all share one width (a transformer's hidden states) gets one threshold over
all its layers, as an N x L x D block; a model whose widths differ (a CNN's
blocks) one threshold per layer. The layer cache records which (``clamp``).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

log = logging.getLogger(__name__)


def run(features: str | os.PathLike, out: str | os.PathLike, *, q: float, exact: bool,
        normalize: bool, topk: Sequence[int], cca_dims: Sequence[int], layers: bool,
        device: str, manifest: str | os.PathLike | None = None,
        model: Sequence[str] | None = None, representation: str = "dense",
        subset_topk: Sequence[int] = (), knn: str = "exact") -> None:
    """Preprocess one model's features and write its layer cache.

    ``layers`` keeps the preprocessed layers too: SVCCA on resamples
    and sample subsets must recompute its bases from them. With ``manifest``,
    the features' sample ids (order included) and manifest hash must be the
    manifest's; with ``model`` (the names the model's embedder may record),
    the features must be that model's. The layer cache records the sample ids
    and their provenance (:mod:`prh.provenance`). ``representation``
    "features" keeps the layers and kNN lists instead of N x N Gram matrices
    (:mod:`prh.sweep.representation`; the layers are then always kept), and
    with it the wider kNN lists ``subset_topk`` that resamples read their
    lists from (:mod:`prh.sweep.subsets`; a dense cache gathers its Gram
    matrices instead and ignores them); there ``knn`` "approximate" searches
    the lists with a FAISS index, and their recall@k against exact search,
    measured on a sample of rows, goes to the layer cache and one log line
    per layer and k.
    """
    if knn != "exact" and representation != "features":
        raise ValueError(f"knn={knn!r} searches the features representation's lists; "
                         f"{out} is {representation}: use representation features or knn exact")
    from ..sweep.cache import LayerCache
    from ..sweep.representation import FeatureCache
    from ..formats.features import read_features, read_metadata
    from ..formats.layer_cache import save_layer_cache
    from ..provenance import ProvenanceError, check_same_samples, record

    import numpy as np

    meta = read_metadata(features)
    ids = meta["sample_ids"]
    manifest_sha = meta.get("manifest_sha256", "")
    if model and meta.get("model") not in (None, "") and meta["model"] not in model:
        raise ProvenanceError(f"{features} holds the features of model {meta['model']!r}, "
                              f"not {model[0]!r}; delete it and rerun to embed {model[0]!r}")
    if manifest is not None:
        from ..datasets import load_manifest

        m = load_manifest(manifest)
        check_same_samples(ids, features, m.ids, manifest,
                           what="delete the features file and rerun to embed the manifest's samples")
        if manifest_sha != m.content_sha256:
            raise ProvenanceError(f"{features} was embedded from manifest {str(manifest_sha)[:12] or '<none>'}, "
                                  f"{manifest} is {m.content_sha256[:12]}; delete the features "
                                  "file and rerun to embed the current manifest")
    check_cca_dims(cca_dims, features, len(ids) if ids else None, meta["widths"],
                   meta["layer_names"])
    feats = read_features(features)
    if ids and len(ids) != feats[0].shape[0]:
        raise ProvenanceError(f"{features}: {len(ids)} sample ids for {feats[0].shape[0]} rows")
    mode = clamp_mode([f.shape[1] for f in feats])
    block = np.stack(feats, axis=1) if mode == "model" else feats
    del feats
    if representation == "features":
        cache = FeatureCache.from_features(block, name=str(features), q=q, exact=exact,
                                           normalize=normalize, device=device, knn=knn)
    else:
        cache = LayerCache.from_features(block, name=str(features), q=q, exact=exact,
                                         normalize=normalize, device=device)
    del block
    if representation == "features":
        topk = sorted({*topk, *subset_topk})
    save_layer_cache(cache, out, topk=list(topk), cca_dims=list(cca_dims), layers=layers,
                     attrs={"q": q, "exact": exact, "normalize": normalize, "clamp": mode,
                            "features": str(features), **record(manifest_sha, ids)},
                     sample_ids=ids)
    if knn != "exact":
        log_recall(cache, meta["layer_names"])


def log_recall(cache, layer_names: Sequence[str]) -> None:
    """One line per layer and k: the recall@k of its approximate lists and
    the index that found them."""
    from ..sweep.approximate import RECALL_ROWS

    names = list(layer_names) if len(layer_names) == cache.n_layers else \
        [f"layer.{i}" for i in range(cache.n_layers)]
    rows = min(RECALL_ROWS, cache.n)
    for k, recall in sorted(cache.knn_recall.items()):
        index = cache.knn_index[k]
        for l, name in enumerate(names):
            log.info("recall@%d of the approximate kNN lists (layer %s): %.3f on %d rows "
                     "(IVF index: nlist %d, nprobe %d)", k, name, float(recall[l]), rows,
                     index["nlist"][l], index["nprobe"][l])


def check_cca_dims(cca_dims: Sequence[int], features: str | os.PathLike, n: int | None,
                   widths: Sequence[int], layer_names: Sequence[str]) -> None:
    """SVCCA keeps ``cca_dim`` directions of each layer, so it must be at most
    N and the width of every layer; the widths are known first here (hub
    models' are not known when the config is read). A one-line ValueError
    names the parameter, its value, the features file and the narrowest layer."""
    if not cca_dims or not widths:
        return
    names = list(layer_names) if len(layer_names) == len(widths) else \
        [f"layer.{i}" for i in range(len(widths))]
    narrow = min(range(len(widths)), key=lambda i: widths[i])
    limit = min(widths[narrow], n) if n else widths[narrow]
    too_big = max(cca_dims)
    if too_big > limit:
        raise ValueError(f"metrics.svcca.cca_dim: {too_big} exceeds what {features} allows: "
                         f"its narrowest layer {names[narrow]!r} has width {widths[narrow]}"
                         f"{f' and it has N={n} samples' if n else ''}; "
                         f"lower cca_dim to at most {limit}")


def clamp_mode(widths: Sequence[int]) -> str:
    """"model" (one threshold over all layers) when every layer has the same
    width and there are several, else "layer" (one per layer)."""
    return "model" if len(widths) > 1 and len(set(widths)) == 1 else "layer"
