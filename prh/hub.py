"""Hub models are checked when the DAG is built, not in the first job.

A ``timm:`` or ``hf:`` model whose features are still to be computed needs
its weights from the Hugging Face hub or the local hub cache. Without either,
every embedding job would fail after Snakemake had planned the run, and
without ``HF_HUB_OFFLINE=1`` each failure would spend tens of seconds on
retries. :func:`check` asks the cache first and the hub once (a few seconds,
no retries), and stops the run with one line naming the models and what to
do. Torch-free; called from the workflow with the models that need the hub
(:meth:`prh.config.Config.hub_models`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

# Files one of which a cached hub repository holds (config for transformers,
# weights for timm's hub repositories).
CACHE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin",
               "open_clip_pytorch_model.bin")
TIMEOUT_S = 3.0


class HubError(RuntimeError):
    """Hub models that cannot be had; the message says which and what to do."""


def repo_id(kind: str, name: str) -> str | None:
    """The hub repository of a ``timm``/``hf`` source, or None for a local folder."""
    if kind == "hf":
        if name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir():
            return None
        return name
    if kind == "timm":
        return f"timm/{name}"
    return None


def model_repo(kind: str, name: str, weights: str | None) -> str | None:
    """The hub repository a configured model loads from: a ``timm:``/``hf:``
    source without a local folder and without a weights file (``weights``:
    None or pretrained); None for every other model."""
    if kind not in ("timm", "hf") or weights not in (None, "pretrained"):
        return None
    return repo_id(kind, name)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cached(repo: str, cache_dir: str | os.PathLike | None = None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache_dir), str)
               for f in CACHE_FILES)


def reachable(timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """One request to the hub's endpoint, no retries: (reachable, why not)."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint + "/api/models?limit=1",
                                                      method="HEAD"), timeout=timeout)
        return True, ""
    except urllib.error.HTTPError:
        return True, ""  # it answered
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return False, f"{endpoint} did not answer within {timeout:g} s ({reason})"


def check(models: Mapping[str, str], cache_dir: str | os.PathLike | None = None) -> None:
    """``models``: config name -> hub repository. Raises :class:`HubError`
    when one is neither cached nor reachable."""
    missing = {m: r for m, r in models.items() if not cached(r, cache_dir)}
    if not missing:
        return
    if offline():
        why = "HF_HUB_OFFLINE is set"
    else:
        ok, why = reachable()
        if ok:
            return
    names = ", ".join(f"{m} ({r})" for m, r in missing.items())
    raise HubError(f"hub model(s) not in the local cache and the hub cannot be reached "
                   f"({why}): {names}; download them where the hub is reachable (the cache "
                   f"is HF_HUB_CACHE, default ~/.cache/huggingface/hub), give a local folder "
                   f"or weights file (`weights:`), or drop the model")
