"""prh's own cache folder, for what it unpacks or converts once and reads on
every later run: the emoji package's images (:mod:`prh.datasets.emoji`),
hub datasets (:mod:`prh.datasets.huggingface`) and de-quantised GGUF models
(:mod:`prh.models.gguf`). A leaf: it imports nothing from prh."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$PRH_CACHE``, else ``$XDG_CACHE_HOME/prh``, else ``~/.cache/prh``."""
    if os.environ.get("PRH_CACHE"):
        return Path(os.environ["PRH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "prh"
    return Path.home() / ".cache" / "prh"
