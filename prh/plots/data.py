"""What the figures read: alignment matrices, model attributes, competence.

Only small things are read from a features file: its root attributes
(``param_count``, ``modality``, ``weights`` and ``seed``), ``layer_names``
and, for causal language models, ``bpb`` (bits per byte of each caption);
never the features.

Models are named by :func:`prh.naming.display_name` from what their features
file records (source, weights, seed): "EffNet-Lite0 (untrained)" for an
untrained baseline, as the tables name it from the config; competence is
:mod:`prh.competence`'s.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..formats.features import read_metadata

MODALITY_ORDER = ("vision", "language")


def load_alignment(path: str | os.PathLike) -> dict[str, Any]:
    """``alignment.h5`` (:func:`prh.formats.alignment.read_alignment`)."""
    from ..formats.alignment import read_alignment

    return read_alignment(path)


def metric_of(data: Mapping[str, Any], metric: str, source: str | os.PathLike) -> dict[str, Any]:
    if metric not in data["metrics"]:
        raise ValueError(f"{source} has no metric {metric!r}; it has: "
                         + ", ".join(data["metrics"]))
    return data["metrics"][metric]


def has_calibration(m: Mapping[str, Any]) -> bool:
    """True when a metric group holds calibrated scores with at least one value."""
    cal = m.get("calibrated")
    return cal is not None and bool(np.isfinite(np.asarray(cal, dtype=float)).any())


def p_values(m: Mapping[str, Any]) -> tuple[np.ndarray | None, str]:
    """The p-values to judge significance by: BH-adjusted when present."""
    for key, label in (("p_bh", "p_BH"), ("p_value", "p")):
        if m.get(key) is not None:
            return np.asarray(m[key], dtype=float), label
    return None, ""


@dataclass(frozen=True)
class Significance:
    """What a figure may say about chance: ``pairs`` with a score, how many
    of them are ``calibrated`` (have a p-value) and how many of those are
    not significant; ``not_significant``: the mask to mark (False where there
    is no p-value)."""

    pairs: int
    calibrated: int
    n_not_significant: int
    not_significant: np.ndarray


def significance(score: np.ndarray, p: np.ndarray | None, alpha: float, *,
                 symmetric: bool = False) -> Significance:
    """Counts over the cells with a finite score (each unordered pair once
    for a ``symmetric`` matrix); cells without a p-value are not calibrated."""
    score = np.asarray(score, dtype=float)
    have = np.isfinite(score)
    p = np.full(score.shape, np.nan) if p is None else np.asarray(p, dtype=float)
    cal = have & np.isfinite(p)
    ns = cal & (np.where(cal, p, 0.0) > alpha)
    count = have.copy()
    if symmetric and score.ndim == 2 and score.shape[0] == score.shape[1]:
        count &= np.triu(np.ones(score.shape, dtype=bool), 1)
    return Significance(int(count.sum()), int((cal & count).sum()), int((ns & count).sum()), ns)


def significance_note(sig: Significance, p_label: str, alpha: float, marked: str) -> str:
    """The sentence a figure prints about chance, from what it shows:
    ``marked`` names how non-significant points look ("hatched, n.s.")."""
    if sig.calibrated == 0:
        return ("not calibrated: no pair has a permutation null, so these scores are not "
                "compared with chance")
    if sig.n_not_significant:
        text = (f"{marked}: {p_label} > α = {alpha:g}, not above the permutation null "
                f"({sig.n_not_significant} of {sig.calibrated} calibrated pairs)")
    elif sig.calibrated == 1:
        text = f"the calibrated pair is above its permutation null ({p_label} ≤ α = {alpha:g})"
    else:
        text = (f"each of the {sig.calibrated} calibrated pairs is above its permutation null "
                f"({p_label} ≤ α = {alpha:g})")
    rest = sig.pairs - sig.calibrated
    if rest:
        text += (f"; {rest} of the {sig.pairs} pairs are not calibrated (no permutation null, "
                 "not compared with chance)")
    return text


@dataclass(frozen=True)
class ModelInfo:
    name: str
    modality: str | None
    param_count: int | None
    #: None for the pretrained weights, "random" for an untrained baseline
    weights: str | None = None
    seed: int | None = None
    #: the source the features were made from (features attribute ``source``
    #: for imported files, else ``model``)
    source: str | None = None

    @property
    def untrained(self) -> bool:
        return self.weights == "random"

    @property
    def entry(self) -> dict[str, Any]:
        """What :func:`prh.naming.display_name` reads, as a config entry holds it."""
        return {"source": self.source, "weights": self.weights, "seed": self.seed}

    def label(self, extra: Sequence[str] = ()) -> str:
        """The model's name in figures, "(untrained)" for random weights."""
        from ..naming import display_name
        return display_name(self.name, self.entry, extra)


def labels_of(models: Sequence[str], info: Mapping[str, ModelInfo],
              extra: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Model -> figure label (:func:`prh.naming.display_names`: no two alike);
    models without info are named by their key."""
    from ..naming import display_names
    return display_names({m: info[m].entry if m in info else None for m in models}, extra)


def model_info(name: str, features: str | os.PathLike | None,
               modality: str | None = None) -> ModelInfo:
    """A model's modality, size and weights from its features file's attributes."""
    count = weights = seed = source = None
    if features is not None:
        meta = read_metadata(features)
        modality = modality or meta.get("modality")
        source = str(meta.get("source") or meta.get("model") or "") or None
        if "param_count" in meta:
            try:
                count = int(meta["param_count"])
            except (TypeError, ValueError):
                raise ValueError(f"{features}: attribute param_count "
                                 f"{meta['param_count']!r} is not a number") from None
        if str(meta.get("weights", "")) not in ("", "pretrained"):
            weights = str(meta["weights"])
            seed = int(meta["seed"]) if "seed" in meta else None
    return ModelInfo(name, modality, count, weights, seed, source)


def order_models(models: Sequence[str], info: Mapping[str, ModelInfo]) -> list[int]:
    """Indices of ``models`` grouped by modality (vision, then language, then
    any other) and by size within a group (unknown sizes last), ties in the
    given order."""
    def key(i: int):
        mi = info.get(models[i])
        mod = mi.modality if mi else None
        group = MODALITY_ORDER.index(mod) if mod in MODALITY_ORDER else len(MODALITY_ORDER)
        size = mi.param_count if mi and mi.param_count is not None else math.inf
        return (group, size, i)

    return sorted(range(len(models)), key=key)


def layer_names(features: str | os.PathLike | None, n_layers: int) -> list[str]:
    """The layer names of a features file, or layer indices when there is no
    file or it does not match the score matrix."""
    if features is not None:
        names = read_metadata(features)["layer_names"]
        if names:
            if len(names) == n_layers:
                return names
            raise ValueError(f"{features} lists {len(names)} layers but the pair file's "
                             f"score matrix has {n_layers}; rerun the pair job")
    return [str(i) for i in range(n_layers)]


