"""Step of rule ``prepare_dataset``: write one configured dataset's manifest."""

from __future__ import annotations

import os
from typing import Any, Mapping


def run(dataset: Mapping[str, Any], out: str | os.PathLike) -> None:
    """Write the manifest of one configured dataset: ``source``, ``n_samples``
    and optionally ``path`` and ``options`` (see :func:`prh.datasets.prepare`)."""
    from ..datasets import prepare

    options = dict(dataset.get("options") or {})
    if dataset.get("path"):
        options["path"] = dataset["path"]
    manifest = prepare(dataset["source"], dataset["n_samples"], **options)
    manifest.save(out)
    print(f"{out}: {manifest.n} samples of {dataset['source']} ({manifest.content_sha256[:12]})")
