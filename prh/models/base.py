"""The one interface every model family implements.

An :class:`Embedder` turns a batch of inputs (PIL images for vision models,
caption strings for language models) into one pooled vector per sample per
layer. The embedding loop (:mod:`prh.embed`) only talks to this interface, so
a new model family is one new subclass in one file plus a line in
:mod:`prh.models.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .errors import ModelError  # noqa: F401  (re-exported: families raise it)


@dataclass
class BatchFeatures:
    """Pooled features of one batch: ``layers[l]`` is (B, D_l); ``bpb`` (B,) or None."""

    layers: list[torch.Tensor]
    bpb: torch.Tensor | None = None


class Embedder(ABC):
    """A model that gives per-layer pooled features.

    Lifecycle: construct (cheap, no weights), ``load(device, dtype)``, then
    ``embed_batch`` as often as needed. ``layer_names`` and ``param_count`` are
    valid after ``load``.
    """

    #: "vision" or "language"
    modality: str = ""
    #: pooling names this family accepts; the first is the default
    pools: tuple[str, ...] = ()
    #: whether ``embed_batch`` returns bits per byte (causal LMs)
    has_bpb: bool = False
    #: None: the pretrained weights; "random": seeded random initialisation
    #: (an untrained baseline, see :meth:`use_random_weights`); else the path
    #: of a local weights file or folder (:meth:`use_weights_file`)
    weights: str | None = None
    #: seed of the random initialisation (None with pretrained weights)
    seed: int | None = None
    #: language models that cut captions to a token limit: the limit and the
    #: number of captions cut since ``load`` (None: the family cuts nothing)
    max_tokens: int | None = None
    n_truncated: int | None = None
    #: the py: file whose factory made this embedder (None for prh's own)
    user_file: str | None = None

    def __init__(self, name: str, pool: str | None = None):
        self.name = name
        pool = pool or self.pools[0]
        if pool not in self.pools:
            raise ModelError(f"model {name}: pooling {pool!r} is not supported; use one of {', '.join(self.pools)}")
        self.pool = pool
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    @abstractmethod
    def load(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        """Load weights onto ``device`` in eval mode."""

    @property
    @abstractmethod
    def layer_names(self) -> list[str]:
        """One name per output layer, in order."""

    @property
    @abstractmethod
    def param_count(self) -> int:
        """Number of parameters of the loaded model."""

    @abstractmethod
    def embed_batch(self, batch: Sequence[Any]) -> BatchFeatures:
        """Pooled features of one batch; every tensor has B rows, on any device."""

    def use_random_weights(self, seed: int = 0) -> None:
        """Build the model with seeded random weights instead of loading the
        pretrained ones (an untrained baseline); call before ``load``.

        Families that support it override this; the default refuses in one
        line naming the model.
        """
        raise ModelError(f"model {self.name}: weights 'random' is not supported for "
                         f"{self.modality or 'this'} models; untrained baselines are vision "
                         "models only (a bundled efficientnet_lite* or timm:<name>)")

    def use_weights_file(self, path: str) -> None:
        """Load the weights from a local file or folder instead of the hub;
        call before ``load``. Families that can override this."""
        raise ModelError(f"model {self.name}: weights {path!r}: a local weights file is for "
                         "timm:, hf: and py: sources; bundled models ship their own weights")

    def weights_attrs(self) -> dict[str, Any]:
        """What the features file records about the weights: ``weights``
        ("pretrained", "random" or the local path) and, for random weights,
        ``seed``."""
        if self.weights is None:
            return {"weights": "pretrained"}
        if self.weights != "random":
            return {"weights": str(self.weights)}
        return {"weights": self.weights, "seed": int(self.seed if self.seed is not None else 0)}

    def versions(self) -> dict[str, str]:
        """Versions of the libraries this family depends on (recorded in the HDF5 file)."""
        return {"torch_version": torch.__version__}

    def file_attrs(self) -> dict[str, Any]:
        """Model-specific attributes recorded in the HDF5 file (valid after ``load``)."""
        return {}


def check_features(feats: Any, n_rows: int, n_layers: int, who: str) -> None:
    """Raise a one-line ModelError naming ``who`` unless ``feats`` is what
    ``embed_batch`` promises for a batch of ``n_rows``: BatchFeatures with
    ``n_layers`` 2-D tensors (or arrays) of ``n_rows`` rows each."""
    expected = f"expected BatchFeatures (prh.models.base) with {n_layers} (B, D) tensors, one per layer"
    if not isinstance(feats, BatchFeatures):
        raise ModelError(f"{who}: embed_batch returned {_describe(feats)}; {expected}")
    layers = feats.layers
    if not isinstance(layers, (list, tuple)) or len(layers) != n_layers:
        got = f"{len(layers)} layers" if isinstance(layers, (list, tuple)) else _describe(layers)
        raise ModelError(f"{who}: embed_batch returned BatchFeatures with {got} "
                         f"({n_layers} layer names); {expected}")
    for i, a in enumerate(layers):
        if not isinstance(a, (torch.Tensor, np.ndarray)) or a.ndim != 2 or a.shape[0] != n_rows:
            raise ModelError(f"{who}: layer {i} of embed_batch is {_describe(a)} for a batch of "
                             f"{n_rows}; expected a ({n_rows}, D) tensor")
    bpb = feats.bpb
    if bpb is not None and (not isinstance(bpb, (torch.Tensor, np.ndarray))
                            or tuple(bpb.shape) != (n_rows,)):
        raise ModelError(f"{who}: bpb of embed_batch is {_describe(bpb)}; expected ({n_rows},) or None")


def _describe(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"a {type(value).__name__} of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def count_params(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
