"""Which figures exist, what they are called and draw, and the plot targets.

Every figure kind is a rule (``rules/plots.smk``); :class:`Figures` lists
each figure once, with its output name, file stem, what the drawing needs
and its report entry, so that the rules and the report read one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from .paths import (STATISTICS_TABLES, features_path, figure_path, findings_path,
                    manifest_path, report_page, report_table_path, scorecard_path,
                    statistics_path, table_path)
from .schema import ConfigError

#: the most pairs ``plots.layer_pairs: cross_modal`` or ``all`` may give: the
#: layer figure rule lists every figure as an output and Snakemake matches
#: every file of the DAG against every output, so planning time grows with
#: jobs x figures (M = 100 models, half vision: 2,500 cross-modal pairs, a dry
#: run of 108 s instead of 17 s without layer figures; benchmarks/bench_dag.py).
#: config/paper.yaml has 204.
MAX_LAYER_FIGURE_PAIRS = 300
#: the report's scorecards page needs every model's scorecard job; above this
#: many models it is left out (``snakemake scorecards`` still writes them)
MAX_REPORT_SCORECARDS = 50


@dataclass(frozen=True)
class Figure:
    """One figure: its rule, output name (the rule's named output), file stem
    under ``plots/``, what the drawing needs (``params``) and its report entry."""

    rule: str
    name: str
    stem: str
    params: Mapping[str, Any]
    caption: str
    category: str
    subcategory: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


class Figures:
    """The figures of a :class:`prh.config.Config` (a mixin of it)."""

    def _plot_metrics(self, key: str, names: list[str]) -> list[str]:
        for name in names:
            if name not in self.metrics:
                raise ConfigError(f"config: plots.{key}: {name!r} is not a configured metric; "
                                  f"configured: {', '.join(self.metrics)}")
        return names

    def competence_metrics(self) -> list[str]:
        """plots.competence_metric (one or a list), else mutual_knn, else the
        first configured metric."""
        names = self.plots.get("competence_metric")
        if names is None:
            return ["mutual_knn"] if "mutual_knn" in self.metrics else self.metrics[:1]
        names = [names] if isinstance(names, str) else list(names)
        return self._plot_metrics("competence_metric", names)

    def layer_plot_metrics(self) -> list[str]:
        """plots.layer_metrics, else those of mutual_knn and cka that are
        configured, else the first metric."""
        names = self.plots.get("layer_metrics")
        if names is None:
            names = [m for m in ("mutual_knn", "cka") if m in self.metrics] or self.metrics[:1]
        return self._plot_metrics("layer_metrics", list(names))

    def layer_plot_pairs(self) -> list[tuple[str, str]]:
        """(x, y) pairs with a layer x layer figure: cross_modal, all, none, or
        a list of [x, y] (rows = x)."""
        return list(self._layer_plot_pairs)

    @cached_property
    def _layer_plot_pairs(self) -> tuple[tuple[str, str], ...]:
        spec = self.plots["layer_pairs"]
        if spec in ("all", "cross_modal"):
            chosen = [p for p in self._pairs if spec == "all" or self.cross_modal(*p)]
            if len(chosen) > MAX_LAYER_FIGURE_PAIRS:
                raise ConfigError(f"config: plots.layer_pairs: {spec} gives {len(chosen)} pairs, "
                                  f"more than the {MAX_LAYER_FIGURE_PAIRS} whose layer figures "
                                  "plan in reasonable time; list the pairs to draw ([[x, y], "
                                  "...]) or set none")
            return tuple(chosen)
        if spec == "none":
            return ()
        pairs = set(self._pairs)
        out = []
        for x, y in spec:
            for m in (x, y):
                if m not in self.models:
                    raise ConfigError(f"config: plots.layer_pairs: unknown model {m!r}")
            if (x, y) not in pairs and (y, x) not in pairs:
                raise ConfigError(f"config: plots.layer_pairs: {x} x {y} is not aligned "
                                  f"(alignment.pairs: {self.alignment['pairs']})")
            out.append((x, y))
        return tuple(out)

    def display_names(self) -> dict[str, str]:
        """Model -> the name a reader sees (:func:`prh.naming.display_names`),
        for the figures and tables that have no features file to name
        models from."""
        from ..naming import display_names

        return display_names(self.raw["models"])

    def competence_params(self) -> dict[str, dict[str, Any]]:
        """Configured competence values and sources per model (only these keys,
        so that no other model setting reruns the competence figures)."""
        keys = ("competence", "competence_source")
        entries = self.raw["models"]
        return {m: {k: entries[m][k] for k in keys if k in entries[m]}
                for m in self.models if "competence" in entries[m]}

    def figure_calibrated_metrics(self) -> list[str]:
        """The metrics with calibrated figures: those calibrated in at least
        one configured pair (a config that calibrates none is refused by
        prh.config.checks). The others get raw figures only, which say they
        are not compared with chance; no placeholder stands in for them."""
        return self.calibrated_metrics() if self.statistics_pairs() else []

    @cached_property
    def _figures(self) -> list[Figure]:
        calibrated_metrics = self.figure_calibrated_metrics()
        figs = []
        for m in self.metrics:
            cal = m in calibrated_metrics
            for calibrated in (False, True)[: 1 + cal]:
                name = f"heatmap_{m}" + ("_calibrated" if calibrated else "")
                figs.append(Figure("heatmaps", name, name,
                                   {"metric": m, "calibrated": calibrated}, "heatmap",
                                   "1. Alignment heatmaps", m,
                                   {"metric": m, "scores": "calibrated" if calibrated else "raw"}))
        for m in self.competence_metrics():
            kinds = [(f"competence_{m}", False, "raw")]
            if m in calibrated_metrics:
                kinds.append((f"competence_raw_vs_calibrated_{m}", True, "raw vs calibrated"))
            for name, calibrated, label in kinds:
                figs.append(Figure("competence", name, name,
                                   {"metric": m, "calibrated": calibrated}, "competence",
                                   "2. Alignment vs competence", m,
                                   {"metric": m, "scores": label}))
        for x, y in self.layer_plot_pairs():
            for m in self.layer_plot_metrics():
                name = f"{x}__{y}/{m}"
                figs.append(Figure("layer_heatmaps", name, f"layers/{name}",
                                   {"x": x, "y": y, "metric": m}, "layers",
                                   "3. Layer x layer scores", f"{x} x {y}",
                                   {"pair": f"{x} x {y}", "metric": m}))
        figs.append(Figure("metric_agreement", "metric_agreement", "metric_agreement",
                           {"metrics": list(self.metrics)}, "agreement", "4. Metric agreement"))
        if self.has_sample_size_curve:
            figs.append(Figure("sample_size_plot", "sample_size", "sample_size", {},
                               "sample_size", "5. Sample size"))
        return figs

    def figures(self, rule: str | None = None) -> list[Figure]:
        """Every figure (of one rule), in a fixed order."""
        return [f for f in self._figures if rule is None or f.rule == rule]

    @property
    def plot_formats(self) -> list[str]:
        return list(self.plots["formats"])

    @property
    def report_format(self) -> str:
        """Figures go to the report as PNG (or the first format when there is no PNG)."""
        return "png" if "png" in self.plot_formats else self.plot_formats[0]

    def figure_files(self, dataset: str, figure: Figure) -> list[str]:
        return [figure_path(dataset, figure.stem, ext) for ext in self.plot_formats]

    def figure_params(self, rule: str) -> dict[str, dict[str, Any]]:
        """Output name -> what the drawing needs, for a plot rule's params."""
        return {f.name: dict(f.params) for f in self.figures(rule)}

    def tables(self) -> list[str]:
        return ["alignment", "aggregates"] if self.calibrated else ["alignment"]

    def report_table_names(self) -> list[str]:
        """The tables the report shows as sortable pages."""
        names = self.tables() + (list(STATISTICS_TABLES) if self.calibrated else [])
        return names + (["scorecards"] if len(self.models) <= MAX_REPORT_SCORECARDS else [])

    def report_tables(self, dataset: str) -> dict[str, str | list[str]]:
        """Table name -> its TSV (``scorecards``: every model's), for the
        report's sortable pages."""
        out: dict[str, str | list[str]] = {}
        for t in self.report_table_names():
            if t == "scorecards":
                out[t] = [scorecard_path(dataset, m, "tsv") for m in self.models]
            elif t in STATISTICS_TABLES:
                out[t] = statistics_path(dataset, t)
            else:
                out[t] = table_path(dataset, t)
        return out

    def findings_inputs(self, dataset: str) -> dict[str, str]:
        """The tables and files the findings page reads, by name (the
        statistics tables by theirs, each model's features file by
        ``features_<model>``)."""
        out = {"alignment": table_path(dataset, "alignment"),
               "aggregates": table_path(dataset, "aggregates"),
               "manifest": manifest_path(dataset),
               **{f"features_{m}": features_path(dataset, m) for m in self.models}}
        if self.calibrated:
            out.update({t: statistics_path(dataset, t) for t in STATISTICS_TABLES})
        return out

    def findings_params(self) -> dict[str, Any]:
        """What the findings page says depends on besides its tables."""
        cal = self.calibration
        return {"alpha": cal["alpha"], "calibrated": self.calibrated,
                "n_permutations": cal["n_permutations"] if self.calibrated else None,
                "params": {m: self.resolved_metric_params(m) for m in self.metrics},
                "modalities": self.modalities()}

    def plot_targets(self, dataset: str) -> list[str]:
        """Every output of the plot rules for one dataset (the ``plots`` target),
        and the report's pages: the findings and the tables."""
        paths = [p for f in self.figures() for p in self.figure_files(dataset, f)]
        paths += [report_table_path(dataset, t) for t in self.tables()]
        paths += [findings_path(dataset), report_page(dataset, "findings")]
        return paths + [report_page(dataset, t) for t in self.report_table_names()]
