"""A generative model of paired features, for measuring what the statistics do.

Real embeddings give one sample set; whether an interval covers 95 % of the
time can only be seen where independent sample sets of the same size can be
drawn at will. :class:`SimulatedPopulation` is such a source: each sample has
a shared latent z (what every model sees, the "reality" of the Platonic
representation hypothesis) and, per model, a private latent u (what only that
model encodes) plus isotropic noise. Layer l of a model mixes them as

    x_l = sqrt(w_l) z A_l + sqrt(1 - w_l) (u B_l + noise) / scale

with fixed loadings A_l, B_l (the "population", set by the population's seed)
and a shared-signal weight w_l = strength * ((l + 1) / L) ** depth_power that
rises with depth, so one layer pair is the best and the layer x layer
matrices have structure. A model's ``strength`` plays the part of competence:
more shared signal, more alignment. Optional clusters in z give the lumpy
neighbourhoods of real data. Draws are independent given their seeds.

:func:`measure_coverage` draws many sample sets, scores every metric on each,
builds the intervals of :func:`prh.calibration.score_intervals` on each, and
counts how often they cover the metric's mean score at that N (its sampling
distribution's centre, known here by Monte Carlo): the estimand of an interval
at fixed N, since kNN metrics at fixed k change with N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class SimulatedModel:
    """One model of the population: its layers' widths and its shared signal."""

    name: str
    n_layers: int = 4
    dim: int = 32
    strength: float = 0.6      # shared-signal weight of the last layer, in [0, 1]
    private_rank: int = 8
    depth_power: float = 1.0


@dataclass(frozen=True)
class SimulatedPopulation:
    """Models sharing a latent; :meth:`draw` gives N independent paired samples."""

    models: tuple[SimulatedModel, ...]
    shared_rank: int = 8
    clusters: int = 0          # 0: Gaussian z; else z = a cluster centre + spread
    cluster_spread: float = 0.5
    noise: float = 0.5
    seed: int = 0
    _loadings: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be distinct, got {names}")
        for m in self.models:
            if not 0.0 <= m.strength <= 1.0:
                raise ValueError(f"strength of {m.name!r} must be in [0, 1], got {m.strength}")
        rng = np.random.default_rng(self.seed)
        self._loadings["centres"] = rng.normal(size=(max(self.clusters, 1), self.shared_rank))
        for m in self.models:
            base = rng.normal(size=(self.shared_rank, m.dim))
            layers = []
            for l in range(m.n_layers):
                a = base + 0.7 * rng.normal(size=base.shape)
                b = rng.normal(size=(m.private_rank, m.dim))
                layers.append((a / np.sqrt(self.shared_rank), b / np.sqrt(m.private_rank)))
            self._loadings[m.name] = layers

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def weights(self, name: str) -> np.ndarray:
        m = self._model(name)
        return m.strength * ((np.arange(m.n_layers) + 1) / m.n_layers) ** m.depth_power

    def _model(self, name: str) -> SimulatedModel:
        for m in self.models:
            if m.name == name:
                return m
        raise ValueError(f"unknown model {name!r}; the population has {self.names}")

    def draw(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """{model: (n, layers, dim) float32} for n fresh samples (seeded)."""
        rng = np.random.default_rng([self.seed, seed])
        if self.clusters:
            centres = self._loadings["centres"]
            z = centres[rng.integers(0, self.clusters, size=n)]
            z = z + self.cluster_spread * rng.normal(size=z.shape)
        else:
            z = rng.normal(size=(n, self.shared_rank))
        out = {}
        for m in self.models:
            u = rng.normal(size=(n, m.private_rank))
            layers = []
            for (a, b), w in zip(self._loadings[m.name], self.weights(m.name)):
                own = u @ b + self.noise * rng.normal(size=(n, m.dim))
                own /= np.sqrt(1.0 + self.noise**2)
                layers.append(np.sqrt(w) * (z @ a) + np.sqrt(1.0 - w) * own)
            out[m.name] = np.stack(layers, axis=1).astype(np.float32)
        return out


def default_population(n_models: int = 2, seed: int = 0, n_layers: int = 4, dim: int = 32,
                       clusters: int = 10) -> SimulatedPopulation:
    """Two models ("a", "b") of moderate alignment, or ``n_models`` of rising strength."""
    if n_models == 2:
        models = (SimulatedModel("a", n_layers, dim, 0.6), SimulatedModel("b", n_layers, dim, 0.5))
    else:
        strengths = np.linspace(0.3, 0.7, n_models)
        models = tuple(SimulatedModel(f"m{i}", n_layers, dim, float(s))
                       for i, s in enumerate(strengths))
    return SimulatedPopulation(models, clusters=clusters, seed=seed)


def measure_coverage(population: SimulatedPopulation, pair: tuple[str, str],
                     metrics: Mapping[str, Mapping[str, Any]], *, n: int, reps: int,
                     methods: Sequence[str] = ("auto",), level: float = 0.95,
                     aggregate: str = "max", n_resamples: int | None = None,
                     truth_reps: int = 0, seed: int = 0,
                     progress: Callable[[Iterable], Iterable] | None = None,
                     ) -> list[dict[str, Any]]:
    """Monte Carlo coverage of nominal ``level`` intervals, per metric and method.

    Draws ``reps`` independent sample sets of size ``n`` (plus ``truth_reps``
    more scored only, to pin the mean down), scores ``pair`` with every metric
    and builds each method's interval on each set. The truth is the mean score
    over all draws. Returns one row per (metric, method): coverage, the
    shares of misses with the interval ``below`` and ``above`` the truth, the
    mean interval width, the Monte Carlo sd of
    the score and the mean of the intervals' standard errors (their ratio says
    whether the width is right), and the Monte Carlo standard error of the
    coverage itself.
    """
    import torch

    from .inference.statistics import score_intervals
    from .scoring import aggregate as agg
    from .sweep.cache import LayerCache
    from .sweep.dispatch import sweep

    x, y = pair
    scores = {m: [] for m in metrics}
    found = {(m, meth): [] for m in metrics for meth in methods}
    draws = range(reps + truth_reps)
    for r in (progress(draws) if progress else draws):
        data = population.draw(n, seed=1_000_003 * seed + r)
        sx = LayerCache.from_features(data[x], device="cpu")
        sy = LayerCache.from_features(data[y], device="cpu")
        for m, p in metrics.items():
            scores[m].append(agg(sweep(sx, sy, m, **p), aggregate))
        if r >= reps:
            continue
        for meth in methods:
            got = score_intervals(sx, sy, metrics, method=meth, level=level, aggregates=[aggregate],
                                  n_resamples=n_resamples, seed=seed * 7919 + r)
            for m in metrics:
                found[(m, meth)].append(got[("xy", m)][aggregate])
        del sx, sy
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    rows = []
    for m in metrics:
        s = np.asarray(scores[m])
        truth = float(s.mean())
        for meth in methods:
            iv = found[(m, meth)]
            low = np.array([i["low"] for i in iv])
            high = np.array([i["high"] for i in iv])
            se = np.array([i["se"] for i in iv])
            cover = float(np.mean((low <= truth) & (truth <= high)))
            rows.append({
                "metric": m, "method": iv[0]["method"], "n": n, "reps": reps,
                "coverage": cover, "below": float(np.mean(high < truth)),
                "above": float(np.mean(low > truth)),
                "mc_se": float(np.sqrt(level * (1 - level) / reps)),
                "width": float(np.mean(high - low)), "truth": truth,
                "sd": float(s[:reps].std(ddof=1)), "mean_se": float(se.mean()),
            })
    return rows
