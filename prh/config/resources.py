"""What each job asks of the machine: a config's numbers (samples, layer
counts and widths, metrics, permutations, resamples) through the cost model
of :mod:`prh.config.cost`; the partition each job goes to; the plan's totals
and the limits no request may pass. A mixin of :class:`prh.config.Config`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ..metric_info import interval_scheme
from . import cost
from .schema import ConfigError


class Resources:
    """Threads, memory, runtime, GPUs and partitions of the configured jobs."""

    def n_samples(self, dataset: str) -> int:
        return self.raw["datasets"][dataset]["n_samples"]

    def model_layers(self, model: str) -> int:
        """The layer count the cost model uses: the model's ``n_layers``, else
        the bundled registry's count, else DEFAULT_LAYERS (hub, file: and py:
        models: their counts are known only once embedded)."""
        return self._shapes[model][0]

    def model_width(self, model: str) -> int:
        """The layer width the cost model uses: the model's ``width``, else the
        bundled registry's, else DEFAULT_WIDTH."""
        return self._shapes[model][1]

    @cached_property
    def _shapes(self) -> dict[str, tuple[int, int]]:
        return {m: self._model_shape(m) for m in self.models}

    def _model_shape(self, model: str) -> tuple[int, int]:
        entry = self.raw["models"][model]
        layers, width = cost.DEFAULT_LAYERS, cost.DEFAULT_WIDTH
        source = self.source(model)
        if source.kind == "bundled":
            from ..models.registry import BUNDLED

            layers, width = BUNDLED[source.name].layers, BUNDLED[source.name].width
        return int(entry.get("n_layers") or layers), int(entry.get("width") or width)

    @property
    def speed(self) -> float:
        return float(self.raw["resources"]["speed"])

    def _requests(self, seconds: float, mb: float) -> dict[str, int]:
        return cost.requests(seconds, mb, self.speed)

    # -- embedding ----------------------------------------------------------------

    def embed_resources(self, model: str) -> dict[str, int]:
        s = self.model(model)
        return {"threads": s["threads"], "mem_mb": s["mem_mb"], "runtime": s["runtime"],
                "gpu": s.get("gpus", 0 if s["device"] == "cpu" else 1)}

    @property
    def alignment_gpus(self) -> int:
        return 0 if self.alignment["device"] == "cpu" else 1

    # -- partitions -----------------------------------------------------------------

    def partition(self, gpus: int) -> str | None:
        """The partition of a job with ``gpus`` GPUs (resources.cpu_partition
        or gpu_partition); None when the config names none."""
        r = self.raw["resources"]
        return r["gpu_partition"] if gpus else r["cpu_partition"]

    def partition_resources(self, rule: str) -> dict[str, Any]:
        """``slurm_partition`` for a rule's jobs, decided per job from its
        GPUs: {} when the config names no partition (local runs)."""
        r = self.raw["resources"]
        if not (r["cpu_partition"] or r["gpu_partition"]):
            return {}
        if rule == "embed_model":
            return {"slurm_partition":
                    lambda wc: self.partition(self.embed_resources(wc.model)["gpu"]) or ""}
        return {"slurm_partition": self.partition(self.alignment_gpus) or ""}

    # -- the cost model's inputs -------------------------------------------------

    def _kept_width(self, model: str) -> int:
        """Floats per sample of each kept layer in the model's layer cache (0: none kept)."""
        return self.model_width(model) if self.keep_layers() else 0

    @cached_property
    def _specs(self) -> dict[bool, tuple[cost.MetricSpec, ...]]:
        """calibrated -> every metric's (name, K, params) for the cost model;
        every calibrated pair has the same calibration settings."""
        k = self.calibration["n_permutations"]
        chosen = self.calibrated_metrics() if self.calibrated else []
        return {cal: tuple(cost.spec(m, k if cal and m in chosen else 0,
                                     self.resolved_metric_params(m)) for m in self.metrics)
                for cal in (False, True)}

    def _pair_specs(self, x: str, y: str) -> tuple[cost.MetricSpec, ...]:
        return self._specs[self.calibrated_pair(x, y)]

    # -- jobs -------------------------------------------------------------------------

    def layer_cache_cost(self, dataset: str, model: str) -> dict[str, float]:
        """A layer cache job: one model's Gram matrices, kNN lists and SVCCA bases
        (:func:`prh.config.cost.layer_cache_s`, :func:`~prh.config.cost.layer_cache_mb`)."""
        n = self.n_samples(dataset)
        layers, width = self.model_layers(model), self.model_width(model)
        seconds, mb = cost.layer_cache_s(n, layers, width), cost.layer_cache_mb(n, layers, width)
        return {"seconds": seconds, "mb": mb, **self._requests(seconds, mb)}

    def layer_cache_resources(self, dataset: str, model: str) -> dict[str, int]:
        c = self.layer_cache_cost(dataset, model)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def pair_cost(self, dataset: str, x: str, y: str) -> dict[str, float]:
        """The pair job's cost model (docs/cluster.md, "Cluster requests"):
        estimated seconds and MB of one pair job (:func:`prh.config.cost.pair_s`,
        :func:`~prh.config.cost.pair_mb`), and the requests made of them."""
        n = self.n_samples(dataset)
        lx, ly = self.model_layers(x), self.model_layers(y)
        specs, widths = self._pair_specs(x, y), (self._kept_width(x), self._kept_width(y))
        seconds = cost.pair_s(n, lx, ly, specs, widths)
        mb = cost.pair_mb(n, lx, ly, specs, widths)
        return {"layers_x": lx, "layers_y": ly, "seconds": seconds, "mb": mb,
                **self._requests(seconds, mb)}

    def pair_resources(self, dataset: str, x: str, y: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a pair job (:meth:`pair_cost`)."""
        c = self.pair_cost(dataset, x, y)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def block_cost(self, dataset: str, block: str) -> dict[str, float]:
        """A block job's cost: one start-up, each model read once with its
        per-layer terms, every pair's sweeps and nulls. Memory: the models
        whose layer caches are loaded at once, at most (the step loads a model at
        its first pair and drops it after its last, in the order of
        :meth:`block_pairs`), and the null matrices of all its pairs."""
        costs = self._block_costs[dataset]
        if block not in costs:
            self.block_pairs(block)  # refuses an unknown block
        return costs[block]

    @cached_property
    def _block_costs(self) -> dict[str, dict[str, dict[str, float]]]:
        # every block job's resources are asked for when planning, twice each
        out: dict[str, dict[str, dict[str, float]]] = {}
        # a model's terms: those of its calibrated pairs when there are any (an upper bound)
        specs = self._specs[self.calibrated]
        for dataset in self.datasets:
            n = self.n_samples(dataset)
            out[dataset] = {}
            for block, pairs in self._blocks.items():
                models = {m for p in pairs for m in p}
                seconds = cost.start_s() + cost.fixed_s("pair") + sum(
                    cost.model_s(n, self.model_layers(m), self._kept_width(m), specs)
                    for m in models)
                seconds += sum(cost.pair_work_s(n, self.model_layers(x), self.model_layers(y),
                                                self._pair_specs(x, y),
                                                (self._kept_width(x), self._kept_width(y)))
                               for x, y in pairs)
                layers = cost.peak_loaded(pairs, self.model_layers)
                held = cost.max_loaded(pairs, lambda m: cost.model_bytes(
                    n, self.model_layers(m), self._kept_width(m), specs, "fixed"))
                nulls = sum(8 * k * cost.metric_orders(m) * self.model_layers(x)
                            * self.model_layers(y)
                            for x, y in pairs for m, k, _ in self._pair_specs(x, y))
                largest = max(((self.model_layers(x), self.model_layers(y)) for x, y in pairs),
                              key=lambda p: p[0] * p[1])
                mb = cost.block_mb(n, held, nulls, largest, specs)
                out[dataset][block] = {"pairs": len(pairs), "layers": layers,
                                       "seconds": seconds, "mb": mb,
                                       **self._requests(seconds, mb)}
        return out

    def block_resources(self, dataset: str, block: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a block job (:meth:`block_cost`)."""
        c = self.block_cost(dataset, block)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def _statistics_inputs(self):
        models = {m: (self.model_layers(m), self._kept_width(m)) for m in self.statistics_models()}
        metrics = {m: self.resolved_metric_params(m) for m in self.calibrated_metrics()}
        method = self.calibration["interval_method"]
        schemes = {m: interval_scheme(m, method) for m in metrics}
        return models, metrics, schemes

    def statistics_cost(self, dataset: str) -> dict[str, float]:
        """The statistics job: every statistics pair re-scored on each
        metric's resamples, every model resampled once per index set
        (:func:`prh.config.cost.statistics_s`); all models' layer caches held with
        two resamples of each (:func:`~prh.config.cost.statistics_mb`)."""
        n = self.n_samples(dataset)
        models, metrics, schemes = self._statistics_inputs()
        seconds = cost.statistics_s(n, models, self.statistics_pairs(), metrics, schemes)
        mb = cost.statistics_mb(n, models, metrics, schemes, self.statistics_pairs())
        return {"seconds": seconds, "mb": mb, **self._requests(seconds, mb)}

    def statistics_resources(self, dataset: str) -> dict[str, int]:
        c = self.statistics_cost(dataset)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def sample_size_cost(self, dataset: str) -> dict[str, float]:
        """The sample-size curve: for every curve pair, metric and size, both
        models resampled to that size and the pair scored with its null; all
        curve models' layer caches held, and one pair's terms at the full size."""
        n = self.n_samples(dataset)
        k = self.calibration["sample_size_permutations"]
        metrics = [m for m in self.metrics if m in self.calibration["sample_size_metrics"]]
        widths = {m: self._kept_width(m) for m in self.sample_size_models()}
        seconds, pair_mb = cost.start_s(), 0.0
        for x, y in self.sample_size_pairs():
            lx, ly = self.model_layers(x), self.model_layers(y)
            seconds += cost.model_s(n, lx, widths[x], ()) + cost.model_s(n, ly, widths[y], ())
            for m in metrics:
                one = (cost.spec(m, k, self.resolved_metric_params(m)),)
                for size in self.calibration["sample_sizes"]:
                    seconds += (cost.resample_model_s(size, lx, widths[x], one)
                                + cost.resample_model_s(size, ly, widths[y], one)
                                + cost.pair_work_s(size, lx, ly, one, (widths[x], widths[y])))
                pair_mb = max(pair_mb, cost.pair_mb(n, lx, ly, one, (widths[x], widths[y])))
        held = sum(cost.model_bytes(n, self.model_layers(m), w, ()) for m, w in widths.items())
        mb = pair_mb + held / cost.MB
        return {"seconds": seconds, "mb": mb, **self._requests(seconds, mb)}

    def sample_size_resources(self, dataset: str) -> dict[str, int]:
        c = self.sample_size_cost(dataset)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    # -- the plan ---------------------------------------------------------------

    def planned_jobs(self) -> list[dict[str, Any]]:
        """Every embedding and alignment-side job of the plan with its request:
        rule, name, threads, gpu, runtime (min), mem_mb. The figures',
        scorecards' and dataset jobs ask for fixed small requests and are
        left out."""
        threads = self.alignment["threads"]
        gpus = self.alignment_gpus
        jobs = []

        def add(rule, name, req, t=threads, g=gpus):
            jobs.append({"rule": rule, "name": name, "threads": t, "gpu": g,
                         "runtime": req["runtime"], "mem_mb": req["mem_mb"]})
        for d in self.datasets:
            for m in self.models:
                e = self.embed_resources(m)
                add("embed_model", f"{d}/{m}", e, e["threads"], e["gpu"])
                add("layer_cache", f"{d}/{m}", self.layer_cache_resources(d, m))
            if self.blocked:
                for b in self.pair_blocks():
                    add("pair_block", f"{d}/{b}", self.block_resources(d, b))
            else:
                for x, y in self.pairs():
                    add("pair_scores", f"{d}/{x}__{y}", self.pair_resources(d, x, y))
            add("aggregate", d, {"runtime": 10, "mem_mb": 2000}, 1, 0)
            if self.statistics_pairs():
                add("statistics", d, self.statistics_resources(d))
            if self.has_sample_size_curve:
                add("sample_size_curve", d, self.sample_size_resources(d))
        return jobs

    def plan_totals(self, pair_group: int = 1) -> str:
        """One line: the plan's jobs, CPU-hours and GPU-hours requested, and the
        longest and largest request of the jobs without and with a GPU (a group
        of ``pair_group`` pair jobs side by side counted as one request)."""
        jobs = self.planned_jobs()
        cpu_h = sum(j["threads"] * j["runtime"] for j in jobs) / 60
        gpu_h = sum(j["gpu"] * j["runtime"] for j in jobs) / 60
        parts = [f"plan: {len(jobs)} jobs (embedding and alignment), {cpu_h:,.0f} CPU-hours, "
                 f"{gpu_h:,.0f} GPU-hours requested"]
        requests = jobs + pair_groups(jobs, pair_group)
        for kind, have in (("CPU", [j for j in requests if not j["gpu"]]),
                           ("GPU", [j for j in requests if j["gpu"]])):
            if have:
                long = max(have, key=lambda j: j["runtime"])
                big = max(have, key=lambda j: j["mem_mb"])
                parts.append(f"{kind} jobs: longest {long['rule']} {long['name']} "
                             f"{long['runtime']} min, largest {big['rule']} {big['name']} "
                             f"{big['mem_mb']} MB")
        return "; ".join(parts) + f" (resources.speed {self.speed:g})"

    def check_limits(self, pair_group: int = 1) -> None:
        """Refuse a plan in which a job, or a group of ``pair_group`` pair jobs,
        asks for more than resources.max_* (CPU jobs) or gpu_max_* (GPU jobs)
        allow: one line naming the job and the limit."""
        r = self.raw["resources"]
        if not any(r[k] for k in ("max_runtime_min", "max_mem_mb", "gpu_max_runtime_min",
                                  "gpu_max_mem_mb")):
            return
        jobs = self.planned_jobs()
        for j in jobs + pair_groups(jobs, pair_group):
            pre = "gpu_" if j["gpu"] else ""
            for what, key in (("runtime", f"{pre}max_runtime_min"), ("mem_mb", f"{pre}max_mem_mb")):
                limit = r[key]
                if limit and j[what] > limit:
                    unit = "min" if what == "runtime" else "MB"
                    if j["rule"] == "group":
                        fix = "lower group-components pairs in the profile"
                    elif j["rule"] == "embed_model":
                        fix = f"lower models.{j['name'].split('/')[1]}.{what}"
                    else:
                        fix = "give it less work (docs/cluster.md, \"Cluster requests\")"
                    raise ConfigError(
                        f"resources.{key}: {'' if j['rule'] == 'group' else 'job '}{j['rule']} "
                        f"{j['name']} asks for {what} {j[what]} {unit}, over the limit of "
                        f"{limit}; {fix} or raise the limit")


def pair_groups(jobs: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """The largest request a SLURM group of ``size`` pair jobs can make
    (group-components: its members run side by side, so it asks for
    their memory summed): the ``size`` largest, as a job of its own."""
    pairs = [j for j in jobs if j["rule"] == "pair_scores"]
    if size <= 1 or len(pairs) < 2:
        return []
    top = sorted(pairs, key=lambda j: j["mem_mb"], reverse=True)[:size]
    return [{"rule": "group", "name": f"of {len(top)} pair jobs (group-components pairs={size})",
             "threads": sum(j["threads"] for j in top), "gpu": sum(j["gpu"] for j in top),
             "runtime": max(j["runtime"] for j in top),
             "mem_mb": sum(j["mem_mb"] for j in top)}]
