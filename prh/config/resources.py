"""What each job asks of the machine: a config's numbers (samples, layer
counts, metrics, permutations, resamples) through the cost model of
:mod:`prh.config.cost`. A mixin of :class:`prh.config.Config`.
"""

from __future__ import annotations

import math
from functools import cached_property

from ..metric_info import get_metric, interval_scheme
from . import cost


class Resources:
    """Threads, memory, runtime and GPUs of the configured jobs."""

    def n_samples(self, dataset: str) -> int:
        return self.raw["datasets"][dataset]["n_samples"]

    def model_layers(self, model: str) -> int:
        """The layer count the cost model uses: the model's ``n_layers``, else
        the bundled registry's count, else DEFAULT_LAYERS (hub, file: and py:
        models: their counts are known only once embedded)."""
        return self._layer_counts[model]

    @cached_property
    def _layer_counts(self) -> dict[str, int]:
        return {m: self._model_layers(m) for m in self.models}

    def _model_layers(self, model: str) -> int:
        entry = self.raw["models"][model]
        if entry.get("n_layers"):
            return int(entry["n_layers"])
        source = self.source(model)
        if source.kind == "bundled":
            from ..models.registry import BUNDLED

            return BUNDLED[source.name].layers
        return cost.DEFAULT_LAYERS

    def embed_resources(self, model: str) -> dict[str, int]:
        s = self.model(model)
        return {"threads": s["threads"], "mem_mb": s["mem_mb"], "runtime": s["runtime"],
                "gpu": s.get("gpus", 0 if s["device"] == "cpu" else 1)}

    @property
    def alignment_gpus(self) -> int:
        return 0 if self.alignment["device"] == "cpu" else 1

    def kernel_mem_mb(self, dataset: str, copies: int) -> int:
        """Memory for ``copies`` float64 N x N matrices per layer for up to
        DEFAULT_LAYERS layers, plus the interpreter and torch."""
        return math.ceil(cost.resident_mb(self.n_samples(dataset), cost.DEFAULT_LAYERS, copies))

    def _resident_mb(self, n: int, layers: int) -> float:
        """A pair or block job's MB for ``layers`` layers held at once (each
        layer kept too when stats files keep layers for SVCCA's resamples)."""
        return cost.resident_mb(n, layers, kept_width=cost.KEPT_WIDTH if self.keep_layers() else 0)

    @cached_property
    def _sweep_terms(self) -> dict[bool, tuple[tuple[int, float, float, int], ...]]:
        """calibrated -> (orders, sweep seconds, permutation fraction, K) per
        metric (:func:`prh.config.cost.pair_work_s`); every calibrated pair has
        the same calibration settings."""
        out = {}
        for calibrated in (False, True):
            k = self.calibration["n_permutations"] if calibrated else 0
            chosen = self.calibrated_metrics() if calibrated else []
            out[calibrated] = tuple(
                (1 if get_metric(m).symmetric else 2, *cost.metric_cost(m)[:2],
                 k if m in chosen else 0) for m in self.metrics)
        return out

    def _pair_work_s(self, n: int, lx: int, ly: int, calibrated: bool) -> float:
        return cost.pair_work_s(n, lx, ly, self._sweep_terms[calibrated])

    def pair_cost(self, dataset: str, x: str, y: str) -> dict[str, float]:
        """The pair job's cost model (docs/cluster.md, "Cluster requests"):
        estimated seconds and MB of one pair job, and the requests made of them.

        Time: START_S plus the pair's sweeps (:func:`prh.config.cost.pair_work_s`).
        Memory: :func:`prh.config.cost.resident_mb` for the layers of both
        models. Requests: :func:`prh.config.cost.requests`."""
        n = self.n_samples(dataset)
        lx, ly = self.model_layers(x), self.model_layers(y)
        seconds = cost.START_S + self._pair_work_s(n, lx, ly, self.calibrated_pair(x, y))
        mb = self._resident_mb(n, lx + ly)
        return {"layers_x": lx, "layers_y": ly, "seconds": seconds, "mb": mb,
                **cost.requests(seconds, mb)}

    def block_cost(self, dataset: str, block: str) -> dict[str, float]:
        """A block job's cost: the pair cost model summed over its pairs (one
        START_S: the job starts once and reads each stats file once). Memory:
        the layers of the models whose stats are loaded at once, at most; the
        step loads a model at its first pair and drops it after its last, in
        the order of :meth:`block_pairs`."""
        costs = self._block_costs[dataset]
        if block not in costs:
            self.block_pairs(block)  # refuses an unknown block
        return costs[block]

    @cached_property
    def _block_costs(self) -> dict[str, dict[str, dict[str, float]]]:
        # every block job's resources are asked for when planning, twice each
        out: dict[str, dict[str, dict[str, float]]] = {}
        for dataset in self.datasets:
            n = self.n_samples(dataset)
            out[dataset] = {}
            for block, pairs in self._blocks.items():
                seconds = cost.START_S + sum(
                    self._pair_work_s(n, self.model_layers(x), self.model_layers(y),
                                      self.calibrated_pair(x, y)) for x, y in pairs)
                layers = cost.peak_loaded(pairs, self.model_layers)
                mb = self._resident_mb(n, layers)
                out[dataset][block] = {"pairs": len(pairs), "layers": layers,
                                       "seconds": seconds, "mb": mb,
                                       **cost.requests(seconds, mb)}
        return out

    def block_resources(self, dataset: str, block: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a block job (:meth:`block_cost`)."""
        c = self.block_cost(dataset, block)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def pair_resources(self, dataset: str, x: str, y: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a pair job (:meth:`pair_cost`)."""
        c = self.pair_cost(dataset, x, y)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def statistics_resources(self, dataset: str) -> dict[str, int]:
        """The statistics job's cost model: each metric's R resamples re-score
        every statistics pair (METRIC_COST's resample column), all models' stats
        held at once."""
        n = self.n_samples(dataset)
        method = self.calibration["interval_method"]
        terms = [(1 if get_metric(m).symmetric else 2, cost.metric_cost(m)[0],
                  cost.metric_cost(m)[2], interval_scheme(m, method)[1])
                 for m in self.calibrated_metrics()]
        seconds = cost.statistics_s(
            n, [(self.model_layers(x), self.model_layers(y)) for x, y in self.statistics_pairs()],
            terms)
        layers = sum(self.model_layers(m) for m in self.statistics_models())
        r = cost.requests(seconds, cost.resident_mb(n, layers))
        return {"mem_mb": r["mem_mb"], "runtime": r["runtime"]}
