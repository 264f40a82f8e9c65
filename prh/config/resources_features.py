"""What the jobs of a dataset in the features representation ask for: the
config's numbers through :mod:`prh.config.cost_features` (docs/large-n.md,
"Cost"). A mixin of :class:`prh.config.Config` placed before
:class:`prh.config.resources.Resources`: each job's cost is answered here for
a features dataset and passed on to the dense model for any other.
"""

from __future__ import annotations

from functools import cached_property

from . import cost
from . import cost_features as fcost


class FeatureResources:
    """Seconds and MB of the layer cache, pair, block, statistics and
    sample-size jobs when the layer caches hold rows and kNN lists."""

    def _features(self, dataset: str) -> list[int] | None:
        """Every k whose kNN lists a features layer cache of ``dataset`` stores
        (the metrics' and the wider ones for subsets); None for dense."""
        return self._stored_lists[dataset]

    @cached_property
    def _stored_lists(self) -> dict[str, list[int] | None]:
        out = {}
        for d in self.datasets:
            p = self.layer_cache_params(d)
            out[d] = (sorted({*p["topk"], *p.get("subset_topk", ())})
                      if p.get("representation") == "features" else None)
        return out

    def _answer(self, seconds: float, mb: float, **extra) -> dict[str, float]:
        return {**extra, "seconds": seconds, "mb": mb, **self._requests(seconds, mb)}

    def layer_cache_cost(self, dataset: str, model: str) -> dict[str, float]:
        ks = self._features(dataset)
        if ks is None:
            return super().layer_cache_cost(dataset, model)
        n, layers, width = self.n_samples(dataset), self.model_layers(model), self.model_width(model)
        return self._answer(fcost.layer_cache_s(n, layers, width, ks),
                            fcost.layer_cache_mb(n, layers, width, ks))

    def pair_cost(self, dataset: str, x: str, y: str) -> dict[str, float]:
        """A pair job; every layer is kept, so the widths are the models'."""
        ks = self._features(dataset)
        if ks is None:
            return super().pair_cost(dataset, x, y)
        n, specs = self.n_samples(dataset), self._pair_specs(x, y)
        lx, ly = self.model_layers(x), self.model_layers(y)
        widths = (self.model_width(x), self.model_width(y))
        return self._answer(fcost.pair_s(n, lx, ly, specs, widths, ks),
                            fcost.pair_mb(n, lx, ly, specs, widths, ks),
                            layers_x=lx, layers_y=ly)

    def block_cost(self, dataset: str, block: str) -> dict[str, float]:
        """A block job: one start-up, each model read once with its terms,
        every pair's sweeps and nulls; the models held at once, as
        :meth:`prh.config.resources.Resources.block_cost` counts them."""
        ks = self._features(dataset)
        if ks is None:
            return super().block_cost(dataset, block)
        got = self._feature_blocks.get((dataset, block))
        if got is None:  # asked for twice per job when planning
            got = self._feature_blocks[(dataset, block)] = self._block(dataset, block, ks)
        return got

    @cached_property
    def _feature_blocks(self) -> dict[tuple[str, str], dict[str, float]]:
        return {}

    def _block(self, dataset: str, block: str, ks: list[int]) -> dict[str, float]:
        pairs = self.block_pairs(block)
        specs, width, layers = self._specs[self.calibrated], self.model_width, self.model_layers
        n = self.n_samples(dataset)
        seconds = cost.start_s() + cost.fixed_s("pair") + sum(
            fcost.model_s(n, layers(m), width(m), specs, ks) for m in {m for p in pairs for m in p})
        seconds += sum(fcost.pair_work_s(n, layers(x), layers(y), self._pair_specs(x, y),
                                         (width(x), width(y))) for x, y in pairs)
        held = cost.max_loaded(pairs, lambda m: fcost.model_bytes(n, layers(m), width(m), specs,
                                                                  ks))
        nulls = sum(8 * k * cost.metric_orders(m) * layers(x) * layers(y)
                    for x, y in pairs for m, k, _ in self._pair_specs(x, y))
        return self._answer(seconds, cost._base_mb("pair") + fcost.SWEEP_MB
                            + (held + nulls) / cost.MB, pairs=len(pairs),
                            layers=cost.peak_loaded(pairs, layers))

    def statistics_cost(self, dataset: str) -> dict[str, float]:
        ks = self._features(dataset)
        if ks is None:
            return super().statistics_cost(dataset)
        n = self.n_samples(dataset)
        models, metrics, schemes = self._statistics_inputs()
        models = {m: (lay, self.model_width(m)) for m, (lay, _) in models.items()}
        return self._answer(
            fcost.statistics_s(n, models, self.statistics_pairs(), metrics, schemes, ks),
            fcost.statistics_mb(n, models, metrics, schemes, ks))

    def sample_size_cost(self, dataset: str) -> dict[str, float]:
        """The curve: both models resampled once per size for all metrics,
        each metric swept with its null there; all curve models held, and
        both of a pair's largest subsets with their terms."""
        ks = self._features(dataset)
        if ks is None:
            return super().sample_size_cost(dataset)
        n, k = self.n_samples(dataset), self.calibration["sample_size_permutations"]
        specs = tuple(cost.spec(m, k, self.resolved_metric_params(m)) for m in self.metrics
                      if m in self.calibration["sample_size_metrics"])
        width, layers = self.model_width, self.model_layers
        sizes = self.calibration["sample_sizes"]
        seconds = cost.start_s()
        for x, y in self.sample_size_pairs():
            seconds += (fcost.model_s(n, layers(x), width(x), (), ks)
                        + fcost.model_s(n, layers(y), width(y), (), ks)
                        + fcost.sample_size_s(n, layers(x), layers(y), (width(x), width(y)),
                                              specs, sizes, ks))
        held = sum(fcost.model_bytes(n, layers(m), width(m), (), ks)
                   for m in self.sample_size_models())
        sub = [fcost.model_bytes(max(sizes), layers(m), width(m), specs, fcost.knn_ks(specs))
               for p in self.sample_size_pairs() for m in p]
        two = max(a + b for a, b in zip(sub[::2], sub[1::2]))
        return self._answer(seconds, cost._base_mb("pair") + fcost.SWEEP_MB
                            + (held + two) / cost.MB)
