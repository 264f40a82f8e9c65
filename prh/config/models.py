"""The models' settings: sources, modalities, what an embedding depends on
and reads, and which models need the hub. A mixin of
:class:`prh.config.Config`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from .paths import features_path
from .schema import ConfigError

# Keys of a model's settings that change what its features file holds; the
# others only schedule the job, so editing them reruns nothing.
EMBED_RESULT_KEYS = ("source", "modality", "batch_size", "device", "dtype", "storage_dtype",
                     "pool")


class Models:
    """The configured models (``models`` and ``embedding``)."""

    def source(self, model: str):
        """The model's parsed source (:func:`prh.models.registry.parse_source`)."""
        from ..models.registry import ModelError, parse_source

        try:
            entry = self.raw["models"][model]
            return parse_source(entry["source"], entry.get("modality"))
        except ModelError as err:
            raise ConfigError(f"config: models.{model}.source: {err}") from None

    def modality(self, model: str) -> str:
        return self._modalities[model]

    @cached_property
    def _modalities(self) -> dict[str, str]:
        # asked once per pair when planning; parsing the source is the slow part
        return {m: self.source(m).modality for m in self.models}

    def model(self, model: str) -> dict[str, Any]:
        """A model's settings: the ``embedding`` block, then its own keys, its
        modality from its source."""
        entry = self.raw["models"][model]
        return {**self.raw["embedding"], **entry, "modality": self.modality(model)}

    def embed_params(self, model: str) -> dict[str, Any]:
        """Only what changes a model's features, so other edits do not rerun it."""
        s = self.model(model)
        params = {k: s[k] for k in EMBED_RESULT_KEYS}
        from ..models.registry import check_weights

        weights, seed = check_weights(model, s.get("weights"), s.get("seed"))
        if weights is not None:  # pretrained models keep the params they always had
            params.update(weights=weights)
            if seed is not None:
                params.update(seed=seed)
        for key in ("layer_names", "options"):
            if key in s:
                params[key] = s[key]
        return params

    def feature_model_names(self, model: str) -> list[str]:
        """The names a model's features file may record as its ``model``
        (the source as written, its registry name, and for imported or
        user-built features the config name): the layer cache job refuses a
        features file that records another."""
        src = self.source(model)
        return list(dict.fromkeys([str(src.text), str(src.name), model]))

    def embed_inputs(self, model: str) -> list[str]:
        """Local files a model's features come from (a features file, the
        user's Python file, a weights file), so that editing one reruns it."""
        source = self.source(model)
        weights = self.raw["models"][model].get("weights")
        paths = [source.path] if source.path else []
        if weights not in (None, "pretrained", "random") and Path(weights).is_file():
            paths.append(weights)
        return paths

    def modalities(self) -> dict[str, str]:
        return {m: self.modality(m) for m in self.models}

    def hub_models(self, exists=None) -> dict[str, str]:
        """Model -> hub repository, for the models that load from the hub
        (:func:`prh.hub.model_repo`) and whose features are still missing for
        some dataset."""
        import os

        from ..hub import model_repo

        exists = exists or os.path.exists
        out = {}
        for m in self.models:
            src = self.source(m)
            repo = model_repo(src.kind, src.name, self.raw["models"][m].get("weights"))
            if repo and not all(exists(features_path(d, m)) for d in self.datasets):
                out[m] = repo
        return out
