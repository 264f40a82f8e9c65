"""Models that turn images or captions into per-layer pooled features.

:mod:`.base` holds the interface, :mod:`.registry` the names, and one module
per family implements it (:mod:`.vision` for timm, :mod:`.language` for
transformers and GloVe, :mod:`.gguf` for causal LMs shipped as GGUF files).
Importing this package does not import torch-heavy families;
:func:`get_embedder` does so on demand.
"""

from .registry import BUNDLED, get_embedder, known_models  # noqa: F401
