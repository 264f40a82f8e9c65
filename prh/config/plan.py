"""What the workflow runs: model pairs and their blocks, which pairs are
calibrated, the statistics job's pairs and comparisons, the sample-size
curve, what a layer cache holds, the targets, and what a failed run leaves
stale. Two mixins of :class:`prh.config.Config`: :class:`Pairs` and
:class:`Calibration`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ..metric_info import get_metric
from .paths import (STATISTICS_TABLES, alignment_path, block_name, features_path,
                    layer_cache_path, manifest_path, pair_block_path, pair_path, scorecard_path,
                    statistics_path, table_path)
from .representation import resolve_representation, subset_topk
from .schema import ConfigError

MODALITIES = ("vision", "language")
# What a pair job's calibration depends on (the sample-size keys rerun no pair).
CALIBRATION_KEYS = ("n_permutations", "alpha", "seed", "aggregates", "blocks")
#: calibration.comparisons auto grows as M^3 (two models of a side against
#: each of the other): above this, the config must list what to compare
MAX_AUTO_COMPARISONS = 10_000


class Pairs:
    """Model pairs, pair blocks, the files that hold them, scorecards."""

    def cross_modal(self, x: str, y: str) -> bool:
        return self.modality(x) != self.modality(y)

    def pairs(self) -> list[tuple[str, str]]:
        """Unordered model pairs in a fixed (sorted) order, so that adding or
        reordering models never renames an existing pair file."""
        return list(self._pairs)

    @cached_property
    def _pairs(self) -> tuple[tuple[str, str], ...]:
        # decided once: planning asks for the pairs many times (M^2 / 2 of them)
        names = sorted(self.models)
        out = []
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                if self.alignment["pairs"] == "cross_modal" and not self.cross_modal(x, y):
                    continue
                out.append((x, y))
        return tuple(out)

    @cached_property
    def _model_pairs(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {m: [] for m in self.models}
        for p in self._pairs:
            out[p[0]].append(p)
            out[p[1]].append(p)
        return out

    # -- pair blocks (alignment.pair_block) ----------------------------------

    @property
    def pair_block(self) -> int:
        return int(self.alignment["pair_block"])

    @property
    def blocked(self) -> bool:
        """Pair jobs score blocks of pairs (else one job and file per pair)."""
        return self.pair_block > 1

    @cached_property
    def _blocks(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Block name -> its pairs. The models, in config order, are cut into
        runs of B; block (i, j), i <= j, holds the configured pairs with one
        model in run i and one in run j. Config order, not names, decides, so
        a model added at the end joins the last run (or starts a new one) and
        no other block changes; a model removed from the middle shifts the
        runs after it. Within a block, pairs come in order of their first
        model (by config position), then their second: the step keeps each
        model's layer cache loaded until its last pair (:meth:`block_cost`)."""
        b = self.pair_block
        pos = {m: i for i, m in enumerate(self.models)}
        blocks: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for x, y in self._pairs:
            i, j = sorted((pos[x] // b, pos[y] // b))
            blocks.setdefault((i, j), []).append((x, y))
        out = {}
        for (i, j), pairs in sorted(blocks.items()):
            pairs.sort(key=lambda p: sorted((pos[p[0]], pos[p[1]])))
            out[block_name(i, j)] = tuple(pairs)
        return out

    def pair_blocks(self) -> list[str]:
        """The block jobs' names, in order; only blocks with a configured pair."""
        return list(self._blocks)

    def block_pairs(self, block: str) -> list[tuple[str, str]]:
        """A block's pairs (each (x, y) in sorted order, as pair files name them),
        in the order the step scores them."""
        if block not in self._blocks:
            raise ConfigError(f"pair block {block!r} does not exist with alignment.pair_block="
                              f"{self.pair_block}; blocks: {', '.join(self._blocks) or 'none'}")
        return list(self._blocks[block])

    def block_models(self, block: str) -> list[str]:
        """The models of a block's pairs, in config order."""
        if block not in self._block_models:
            self.block_pairs(block)  # refuses an unknown block
        return list(self._block_models[block])

    @cached_property
    def _block_models(self) -> dict[str, list[str]]:
        # asked for by a block job's input and params
        out = {}
        for name, pairs in self._blocks.items():
            used = {m for p in pairs for m in p}
            out[name] = [m for m in self.models if m in used]
        return out

    @cached_property
    def _pair_block(self) -> dict[tuple[str, str], str]:
        return {p: name for name, pairs in self._blocks.items() for p in pairs}

    def block_params(self, block: str) -> dict[str, Any]:
        """What a block job's results depend on besides the metrics: its pairs,
        which of them are calibrated, and the calibration settings ({} when
        none of its pairs is), so that a calibration setting reruns only the
        blocks it changes."""
        pairs = self.block_pairs(block)
        calibrated = [self.calibrated_pair(x, y) for x, y in pairs]
        cal = next((self.calibration_params(*p) for p, c in zip(pairs, calibrated) if c), {})
        return {"pairs": [list(p) for p in pairs], "calibrated": calibrated,
                "calibration": cal}

    def pair_files(self, dataset: str) -> list[str]:
        """The files that hold every configured pair: one per pair, or one per
        block with ``alignment.pair_block`` > 1."""
        if self.blocked:
            return [pair_block_path(dataset, b) for b in self._blocks]
        return [pair_path(dataset, x, y) for x, y in self._pairs]

    def pair_file(self, dataset: str, x: str, y: str) -> str:
        """The file that holds pair (x, y), in either order."""
        p = (x, y) if x < y else (y, x)
        if self.blocked:
            return pair_block_path(dataset, self._pair_block[p])
        return pair_path(dataset, *p)

    def model_pair_files(self, dataset: str, model: str) -> list[str]:
        """The files that hold a model's pairs (its scorecard's inputs)."""
        return list(dict.fromkeys(self.pair_file(dataset, *p)
                                  for p in self.scorecard_pairs(model)))

    def scorecard_pairs(self, model: str) -> list[tuple[str, str]]:
        """The pairs of a model's scorecard: every configured pair it is in,
        so asking for it builds only this model's own jobs and pairs."""
        if model not in self.models:
            raise ConfigError(f"scorecard: {model!r} is not a configured model; configured: "
                              f"{', '.join(self.models)}")
        return list(self._model_pairs[model])

    def scorecard_params(self) -> dict[str, Any]:
        """What a scorecard needs besides its pair files: the metrics, the
        partners' modalities (its figure groups by them) and alpha."""
        return {"metrics": list(self.metrics), "modalities": self.modalities(),
                "alpha": self.calibration["alpha"] if self.calibrated else 0.05}

    def scorecard_intervals(self, dataset: str) -> str | None:
        """The intervals table a scorecard figure draws when it exists (None
        without calibration)."""
        return statistics_path(dataset, "intervals") if self.calibrated else None

    def scorecard_targets(self, dataset: str) -> list[str]:
        """Every model's scorecard (the ``scorecards`` target)."""
        return [scorecard_path(dataset, m, ext) for m in self.models for ext in ("tsv", "png")]


class Calibration:
    """Calibrated pairs, the statistics job, the sample-size curve, what a
    layer cache holds, the alignment targets and stale groups."""

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration["enabled"])

    def calibrated_pair(self, x: str, y: str) -> bool:
        if not self.calibrated:
            return False
        return self.calibration["pairs"] == "all" or self.cross_modal(x, y)

    def calibration_params(self, x: str, y: str) -> dict[str, Any]:
        """What a pair job's calibration depends on ({} when not calibrated)."""
        if not self.calibrated_pair(x, y):
            return {}
        return {**{k: self.calibration[k] for k in CALIBRATION_KEYS},
                "metrics": self.calibrated_metrics()}

    def calibrated_metrics(self) -> list[str]:
        """The metrics calibrated in calibrated pairs (calibration.metrics, in
        the order of the metrics block; all of them when not set)."""
        chosen = self.calibration["metrics"]
        if chosen is None:
            return list(self.metrics)
        return [m for m in self.metrics if m in chosen]

    # -- statistics of the sampling noise (rule statistics) --------------------

    def statistics_pairs(self) -> list[tuple[str, str]]:
        """The pairs with intervals: the calibrated ones."""
        return self._statistics_pairs

    @cached_property
    def _statistics_pairs(self) -> list[tuple[str, str]]:
        return [p for p in self.pairs() if self.calibrated_pair(*p)]

    def statistics_models(self) -> list[str]:
        used = {m for p in self.statistics_pairs() for m in p}
        return [m for m in self.models if m in used]

    def comparisons(self) -> list[tuple[tuple[str, str], tuple[str, str]]]:
        """Paired differences to test, ((a, c), (b, c)) = score(a, c) - score(b, c):
        calibration.comparisons auto (every two models of one modality, in
        config order, against each model of the other; at most
        MAX_AUTO_COMPARISONS), none, or a list."""
        return self._comparisons

    @cached_property
    def _comparisons(self) -> list[tuple[tuple[str, str], tuple[str, str]]]:
        spec = self.calibration["comparisons"]
        if not self.calibrated or spec == "none":
            return []
        have = {frozenset(p) for p in self.statistics_pairs()}
        if spec == "auto":
            sides = {s: sum(self.modality(m) == s for m in self.models) for s in MODALITIES}
            count = sum(k * (k - 1) // 2 * (len(self.models) - k) for k in sides.values())
            if count > MAX_AUTO_COMPARISONS:
                raise ConfigError(
                    f"config: calibration.comparisons: auto would test {count} paired "
                    f"differences (more than {MAX_AUTO_COMPARISONS}); list the comparisons "
                    "you want ([[a_x, a_y], [b_x, b_y]], ...) or set none")
            out = []
            for side in MODALITIES:
                mine = [m for m in self.models if self.modality(m) == side]
                for c in (m for m in self.models if self.modality(m) != side):
                    for i, a in enumerate(mine):
                        out += [((a, c), (b, c)) for b in mine[i + 1:]
                                if {frozenset((a, c)), frozenset((b, c))} <= have]
            return out
        out = []
        for pair_a, pair_b in spec:
            for x, y in (pair_a, pair_b):
                for m in (x, y):
                    if m not in self.models:
                        raise ConfigError(f"config: calibration.comparisons: unknown model {m!r}")
                if frozenset((x, y)) not in have:
                    raise ConfigError(f"config: calibration.comparisons: {x} x {y} is not a "
                                      f"calibrated pair (calibration.pairs: "
                                      f"{self.calibration['pairs']})")
            out.append((tuple(pair_a), tuple(pair_b)))
        return out

    def statistics_params(self) -> dict[str, Any]:
        """What the statistics job computes (its params: a change reruns it)."""
        cal = self.calibration
        return {"metrics": {m: self.metric_params()[m] for m in self.calibrated_metrics()},
                "pairs": [list(p) for p in self.statistics_pairs()],
                "comparisons": [[list(a), list(b)] for a, b in self.comparisons()],
                "trend": bool(cal["trend"]), "aggregates": list(cal["aggregates"]),
                "method": cal["interval_method"], "level": cal["interval_level"],
                "seed": cal["seed"], "blocks": cal["blocks"]}

    def competence_statistics(self, dataset: str) -> list[str]:
        """The statistics tables the competence figures draw: [intervals, trend]
        when calibrated, else none."""
        if not self.calibrated:
            return []
        return [statistics_path(dataset, "intervals"), statistics_path(dataset, "trend")]

    def metric_params(self) -> dict[str, dict[str, Any]]:
        """Configured metrics with their parameters ({} where the defaults apply)."""
        return {m: dict(self.raw["metrics"][m] or {}) for m in self.metrics}

    def resolved_metric_params(self, metric: str) -> dict[str, Any]:
        """A metric's parameters with the library's defaults filled in."""
        return {**get_metric(metric).defaults, **self.metric_params()[metric]}

    def keep_layers(self) -> bool:
        """SVCCA on resamples (the statistics job) and sample subsets recomputes its bases
        from the preprocessed layers, so layer caches then keep them; so do
        the metrics computed from the layers themselves (``needs_layers``)."""
        if any(get_metric(m).needs_layers for m in self.metrics):
            return True
        if not self.calibrated or "svcca" not in self.metrics:
            return False
        if "svcca" in self.calibrated_metrics():  # the statistics job resamples it
            return True
        return self.has_sample_size_curve and "svcca" in self.calibration["sample_size_metrics"]

    def layer_cache_params(self, dataset: str | None = None) -> dict[str, Any]:
        """What a layer cache must hold: the preprocessing and every k and
        cca_dim the configured metrics use (the metrics that take the parameter);
        for a ``dataset`` in the features representation, that too (absent for
        dense, so that dense layer caches keep their params), and ``knn`` when
        the lists are searched approximately (absent when exact, likewise)."""
        params = [self.resolved_metric_params(m) for m in self.metrics]
        topk = sorted({p["topk"] for p in params if "topk" in p})
        cca_dims = sorted({p["cca_dim"] for p in params if "cca_dim" in p})
        a = self.alignment
        out = {"q": a["q"], "exact": a["exact"], "normalize": a["normalize"], "topk": topk,
               "cca_dims": cca_dims, "layers": self.keep_layers()}
        if dataset is not None and self.representation(dataset) == "features":
            out["representation"] = "features"
            wide = self._subset_topk(self.n_samples(dataset))
            if wide:
                out["subset_topk"] = wide
            if a["knn"] != "exact":
                out["knn"] = a["knn"]
        return out

    def _subset_topk(self, n: int) -> list[int]:
        """The wider kNN lists a features layer cache keeps for the subsets the
        statistics job and the sample-size curve score
        (:func:`prh.config.representation.subset_topk`)."""
        resampled = set(self.calibrated_metrics()) if self.statistics_pairs() else set()
        if self.has_sample_size_curve:
            resampled |= set(self.calibration["sample_size_metrics"])
        ks = {self.resolved_metric_params(m).get("topk") for m in self.metrics if m in resampled}
        return sorted({w for k in ks if k for w in [subset_topk(k, n)] if w})

    def representation(self, dataset: str) -> str:
        """"dense" or "features": alignment.representation, ``auto`` decided by
        :func:`prh.config.representation.auto_representation` from the
        dataset's n_samples and the narrowest model width."""
        width = min(self.model_width(m) for m in self.models)
        return resolve_representation(self.alignment["representation"],
                                      self.n_samples(dataset), width)

    # -- the sample-size curve ---------------------------------------------

    @property
    def has_sample_size_curve(self) -> bool:
        return self.calibrated and bool(self.calibration["sample_sizes"])

    def sample_size_pairs(self) -> list[tuple[str, str]]:
        """The curve's pairs: cross-modal ones, or all configured pairs when
        there are none."""
        return list(self._sample_size_pairs)

    @cached_property
    def _sample_size_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(p for p in self._pairs if self.cross_modal(*p)) or self._pairs

    def sample_size_models(self) -> list[str]:
        return sorted({m for p in self._sample_size_pairs for m in p})

    def sample_size_params(self) -> dict[str, Any]:
        if not self.has_sample_size_curve:
            return {}
        c = self.calibration
        return {"sizes": c["sample_sizes"],
                "metrics": {m: self.metric_params()[m] for m in c["sample_size_metrics"]},
                "n_permutations": c["sample_size_permutations"], "alpha": c["alpha"],
                "seed": c["seed"]}

    # -- targets and failure-safe reruns ---------------------------------------

    def align_targets(self, dataset: str) -> list[str]:
        """Every output of the alignment rules for one dataset (the ``align`` target)."""
        out = [alignment_path(dataset), table_path(dataset, "alignment"),
               table_path(dataset, "aggregates")]
        if self.has_sample_size_curve:
            out.append(table_path(dataset, "sample_size"))
        if self.calibrated:
            out += [statistics_path(dataset, t) for t in STATISTICS_TABLES]
        return out

    def stale_groups(self) -> dict[str, tuple[list[str], list[str]]]:
        """Outputs and what they derive from, in dependency order, so that
        staleness after a failed run cascades (:func:`prh.reruns.stale_outputs`):
        a missing features file makes its layer cache stale, a stale or missing
        layer cache its pairs, the sample-size table and the statistics, a
        stale or missing pair file the aggregate outputs."""
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for d in self.datasets:
            for m in self.models:
                groups[layer_cache_path(d, m)] = ([layer_cache_path(d, m)],
                                                  [manifest_path(d), features_path(d, m)])
            if self.blocked:
                for b in self._blocks:
                    groups[pair_block_path(d, b)] = (
                        [pair_block_path(d, b)],
                        [layer_cache_path(d, m) for m in self.block_models(b)])
            else:
                for x, y in self._pairs:
                    groups[pair_path(d, x, y)] = ([pair_path(d, x, y)],
                                                  [layer_cache_path(d, x), layer_cache_path(d, y)])
            outputs = [alignment_path(d), table_path(d, "alignment"), table_path(d, "aggregates")]
            groups[f"{d} alignment"] = (outputs, self.pair_files(d))
            groups[f"{d} sample size"] = ([table_path(d, "sample_size")],
                                          [layer_cache_path(d, m) for m in self.sample_size_models()])
            groups[f"{d} statistics"] = ([statistics_path(d, t) for t in STATISTICS_TABLES],
                                         [layer_cache_path(d, m) for m in self.statistics_models()])
        return groups

