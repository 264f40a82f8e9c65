"""The name a reader sees for a model, the same in every figure, table and
report: :func:`display_name` (one model) and :func:`display_names` (a zoo,
where two models never share a name).

- a bundled model (its source is one of prh's offline models): the
  registry's display name (:data:`DISPLAY_NAMES`,
  "EffNet-Lite0", "SmolLM2-135M");
- a hub model (``timm:``/``hf:``) or a key with no known source: the key
  shortened by the paper zoo's naming rules ("vit_large_patch14_dinov2_lvd142m"
  -> "ViT-L/14 DINOv2", "llama_65b" -> "LLaMA-65B"), cut at
  :data:`MAX_LEN` characters;
- a user's own model (``file:``, ``py:``): its key as configured;

then, in one parenthesis, what differs from the trained model ("untrained"
for seeded random weights, with the seed when it is not 0; "weights <file>"
for a local weights file) and any ``extra`` tags (e.g. the size):
"EffNet-Lite0 (untrained, 4.7M)". The tags are never cut.

``entry`` is a model's config entry or what its features file records
(``source``, ``weights``, ``seed``; :func:`prh.plots.data.model_info`), so a
figure drawn from the features files and a table drawn from the config name
a model alike. Torch- and matplotlib-free.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

MAX_LEN = 22

# Readable names for model keys of the paper's model set (hub sources).
_SHORT = (
    (r"^efficientnet_lite(\d+)$", r"EffNet-Lite\1"),
    (r"^minilm_l(\d+)$", r"MiniLM-L\1"),
    (r"^glove_6b_(\d+)d$", r"GloVe-\1d"),
    (r"^open_llama_", "OpenLLaMA-"),
    (r"^llama_", "LLaMA-"),
    (r"^bloomz_", "BLOOMZ-"),
    (r"_224", ""),
    (r"_augreg_in21k$", " IN21k"),
    (r"_dinov2_lvd142m$", " DINOv2"),
    (r"_laion2b_ft_in12k$", " ft12k"),
    (r"_laion2b$", ""),
    (r"_clip", " CLIP"),
    (r"_mae$", " MAE"),
)
_VIT = re.compile(r"^vit_(tiny|small|base|large|huge|giant)_patch(\d+)")
_VIT_SIZE = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H", "giant": "g"}
_USER_PREFIXES = ("file:", "py:")


#: what a reader sees for each bundled model (prh.models.registry.BUNDLED;
#: kept here so that figures name models without importing the model code)
DISPLAY_NAMES = {"efficientnet_lite0": "EffNet-Lite0", "efficientnet_lite1": "EffNet-Lite1",
                 "efficientnet_lite2": "EffNet-Lite2", "minilm_l6": "MiniLM-L6",
                 "smollm2_135m": "SmolLM2-135M", "glove_6b_50d": "GloVe-50d"}


def short_name(model: str, max_len: int = MAX_LEN) -> str:
    """A model key shortened by the naming rules of the paper's zoo; bundled
    models by their display name."""
    if model in DISPLAY_NAMES:
        return DISPLAY_NAMES[model]
    name = _VIT.sub(lambda m: f"ViT-{_VIT_SIZE[m.group(1)]}/{m.group(2)}", model)
    for pattern, repl in _SHORT:
        name = re.sub(pattern, repl, name)
    if name.startswith(("LLaMA-", "OpenLLaMA-", "BLOOMZ-")):
        name = name.upper().replace("LLAMA", "LLaMA").replace("OPENLLaMA", "OpenLLaMA")
    if len(name) > max_len:
        name = name[: max_len - 1] + "…"
    return name


def weights_tag(weights: str | None, seed: int | None = None) -> str:
    """What a name says about a model's weights: "" for the pretrained ones,
    "untrained" for seeded random ones (with the seed when it is not 0)."""
    if weights in (None, "", "pretrained"):
        return ""
    if weights == "random":
        return "untrained" + (f", seed {seed}" if seed not in (None, 0) else "")
    return f"weights {Path(str(weights)).name}"


def base_name(model: str, entry: Mapping[str, Any] | None = None) -> str:
    """The name without tags: registry display name, shortened hub key, or
    the user's key."""
    source = str((entry or {}).get("source") or "")
    if source in DISPLAY_NAMES:
        return DISPLAY_NAMES[source]
    if source.startswith(_USER_PREFIXES):
        return model
    return short_name(model)


def display_name(model: str, entry: Mapping[str, Any] | None = None,
                 extra: Sequence[str] = ()) -> str:
    """The name of configured model ``model`` (its key) with config entry (or
    recorded attributes) ``entry``: "EffNet-Lite0 (untrained)"."""
    entry = entry or {}
    return _tagged(base_name(model, entry), entry, extra)


def display_names(entries: Mapping[str, Mapping[str, Any] | None],
                  extra: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Model key -> display name for a zoo; models whose names would be the
    same (e.g. one bundled model twice with different pooling) keep their keys."""
    extra = extra or {}
    full = {m: display_name(m, e, extra.get(m, ())) for m, e in entries.items()}
    counts: dict[str, int] = {}
    for name in full.values():
        counts[name] = counts.get(name, 0) + 1
    return {m: (_tagged(m, entries[m] or {}, extra.get(m, ())) if counts[name] > 1 else name)
            for m, name in full.items()}


def _tagged(name: str, entry: Mapping[str, Any], extra: Sequence[str]) -> str:
    tags = [t for t in (weights_tag(entry.get("weights"), entry.get("seed")), *extra) if t]
    return f"{name} ({', '.join(tags)})" if tags else name
