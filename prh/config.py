"""The workflow's configuration: load, validate, fill defaults, and decide.

:class:`Config` takes a config dictionary (what Snakemake read from
config.yaml and the command line), validates it against
``prh/config.schema.yaml`` (the one home of every setting's default), fills
the defaults in, and answers every question the rules ask: which models and
settings, which pairs, which pairs are calibrated, what a stats file must
hold, which figures exist and what they are called, what a job needs. The
rules only read these answers (``rules/common.smk``), so every decision is
plain Python, tested without Snakemake (``tests/test_config.py``).

Torch-free: building the DAG never imports torch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
RESULTS = "results"
LOGS = "logs"
MODALITIES = ("vision", "language")

# Keys of a model's settings that change what its features file holds; the
# others only schedule the job, so editing them reruns nothing.
EMBED_RESULT_KEYS = ("source", "modality", "batch_size", "device", "dtype", "storage_dtype",
                     "pool")
# What a pair job's calibration depends on (the sample-size keys rerun no pair).
CALIBRATION_KEYS = ("n_permutations", "alpha", "seed", "aggregates", "blocks")
# -- the pair jobs' cost model (Config.pair_cost; README "Cluster requests") --
#: layers of a hub, file: or py: model without n_layers: LLaMA-65B has 81
#: hidden states, so this errs on the large side
DEFAULT_LAYERS = 100
#: per metric: (sweep seconds per layer pair at N=COST_N, one permutation's
#: cost and one resample's cost (the statistics job) as fractions of that sweep),
#: measured with benchmarks/bench_calibration.py (N=512, D=256, 4x4 layers,
#: K=20, B=20, 2 CPU threads shared with a running workflow: upper bounds;
#: the sweep's per-layer work is counted per layer pair), rounded up
COST_N = 512
METRIC_COST = {
    "mutual_knn": (0.035, 0.09, 0.6),
    "cycle_knn": (0.02, 0.03, 1.4),
    "lcs_knn": (0.035, 0.21, 1.5),
    "edit_distance_knn": (0.02, 0.92, 1.5),
    "cka": (0.18, 0.03, 1.2),
    # not measured yet: assumed like their nearest measured relatives
    "unbiased_cka": (0.18, 0.03, 1.2),
    "cknna": (0.035, 0.21, 1.5),
    "svcca": (0.18, 0.21, 1.5),
}
DEFAULT_METRIC_COST = (0.18, 0.92, 1.5)  # any other metric: the largest of each
START_S = 60  # interpreter, torch import, reading both stats files
SAFETY = 2  # requests are twice the estimate
MIN_RUNTIME_MIN = 10
MEM_COPIES = 6  # float64 N x N matrices per layer
KEPT_WIDTH = 8192  # floats per sample of a layer kept for SVCCA's resamples

KNN_METRICS = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")
#: the most pairs ``plots.layer_pairs: cross_modal`` or ``all`` may give: the
#: layer figure rule lists every figure as an output and Snakemake matches
#: every file of the DAG against every output, so planning time grows with
#: jobs x figures (M = 100 models, half vision: 2,500 cross-modal pairs, a dry
#: run of 108 s instead of 17 s without layer figures; benchmarks/bench_dag.py).
#: config/paper.yaml has 204.
MAX_LAYER_FIGURE_PAIRS = 300
#: calibration.comparisons auto grows as M^3 (two models of a side against
#: each of the other): above this, the config must list what to compare
MAX_AUTO_COMPARISONS = 10_000
#: the report's scorecards page needs every model's scorecard job; above this
#: many models it is left out (``snakemake scorecards`` still writes them)
MAX_REPORT_SCORECARDS = 50


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what to do."""


# ---------------------------------------------------------------------------
# schema: validation and defaults


def load_schema() -> dict:
    import yaml

    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def fill_defaults(schema: Mapping, instance: Any, root: Mapping | None = None) -> None:
    """Set every absent key that has a ``default`` in ``schema``, recursively
    (through ``$ref``, ``properties`` and map-like ``additionalProperties``)."""
    root = schema if root is None else root
    if not isinstance(instance, dict):
        return
    parts = [schema, _resolve(schema, root)]
    for part in parts:
        props = part.get("properties", {})
        for key, sub in props.items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                fill_defaults(sub, instance[key], root)
        extra = part.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in props:
                    fill_defaults(extra, value, root)


_SCALARS = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def _types(schema: Mapping) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def coerce_strings(schema: Mapping, instance: Any, root: Mapping | None = None) -> Any:
    """``instance`` with strings read as YAML where the schema wants a number,
    boolean or null and no string: Snakemake passes the values inside a
    ``--config key={...}`` mapping as strings (``plots={"dpi": 100}`` gives
    ``"100"``)."""
    import yaml

    root = schema if root is None else root
    parts = [schema, _resolve(schema, root)]
    if isinstance(instance, str):
        wanted = [t for part in parts for t in _types(part)]
        if wanted and "string" not in wanted and any(t in _SCALARS for t in wanted):
            try:
                value = yaml.safe_load(instance)
            except yaml.YAMLError:
                return instance
            if any(isinstance(value, _SCALARS[t]) and not (t != "boolean" and isinstance(value, bool))
                   for t in wanted if t in _SCALARS):
                return value
        return instance
    if isinstance(instance, dict):
        for key in list(instance):
            for part in parts:
                sub = part.get("properties", {}).get(key)
                if sub is None and isinstance(part.get("additionalProperties"), dict):
                    sub = part["additionalProperties"]
                if sub is not None:
                    instance[key] = coerce_strings(sub, instance[key], root)
    elif isinstance(instance, list):
        for part in parts:
            if isinstance(part.get("items"), dict):
                instance[:] = [coerce_strings(part["items"], v, root) for v in instance]
    return instance


def schema_defaults(*path: str) -> Any:
    """The schema's default of one setting, e.g. ``schema_defaults("calibration",
    "n_permutations")``; for code outside the workflow (the CLI) that offers the same
    settings."""
    schema = load_schema()
    node: Mapping = schema
    for key in path:
        props = {**_resolve(node, schema).get("properties", {}), **node.get("properties", {})}
        node = props[key]
    return copy.deepcopy(node["default"])


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A validated copy of ``raw`` with the schema's defaults filled in; the
    first problem is a one-line :class:`ConfigError` naming the key."""
    import jsonschema

    schema = load_schema()
    raw = coerce_strings(schema, copy.deepcopy(dict(raw)))
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        message = " ".join(error.message.split())
        if len(message) > 300:
            message = message[:300] + " ..."
        raise ConfigError(f"config: {_key_path(error.absolute_path)}: {message}")
    cfg = copy.deepcopy(dict(raw))
    fill_defaults(schema, cfg)
    return cfg


# ---------------------------------------------------------------------------
# paths of every workflow output


def manifest_path(dataset: str) -> str:
    return f"{RESULTS}/{dataset}/manifest.json"


def features_path(dataset: str, model: str) -> str:
    return f"{RESULTS}/{dataset}/features/{model}.h5"


def stats_path(dataset: str, model: str) -> str:
    return f"{RESULTS}/{dataset}/stats/{model}.h5"


STATISTICS_TABLES = ("intervals", "comparisons", "trend")


def statistics_path(dataset: str, table: str) -> str:
    return f"{RESULTS}/{dataset}/statistics/{table}.tsv"


def pair_path(dataset: str, x: str, y: str) -> str:
    return f"{RESULTS}/{dataset}/pairs/{x}__{y}.h5"


def pair_block_path(dataset: str, block: str) -> str:
    """A block of pairs (``alignment.pair_block`` > 1): one file per block job,
    so that a zoo of 1,000 models has hundreds of pair files for Snakemake to
    stat and the aggregate to list, not 500,000 (:mod:`prh.formats.pair`)."""
    return f"{RESULTS}/{dataset}/pair_blocks/{block}.h5"


def block_name(i: int, j: int) -> str:
    """Block job (i, j): the pairs between the models of runs i <= j."""
    return f"{i}-{j}"


def log_path(dataset: str, name: str) -> str:
    return f"{LOGS}/{dataset}/{name}"


def scorecard_path(dataset: str, model: str, ext: str) -> str:
    return f"{RESULTS}/{dataset}/scorecards/{model}.{ext}"


def findings_path(dataset: str) -> str:
    return f"{RESULTS}/{dataset}/findings.md"


def report_page(dataset: str, name: str) -> str:
    """An HTML page of the report: ``findings`` or a table (:mod:`prh.report_html`)."""
    return f"{RESULTS}/{dataset}/report/{name}.html"


# ---------------------------------------------------------------------------
# figures


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


# ---------------------------------------------------------------------------


def peak_loaded(pairs, layers) -> int:
    """The most layers (``layers(model)`` each) loaded at once when the pairs
    are scored in order, each model loaded at its first pair and dropped
    after its last (:func:`prh.steps.pair_scores.run_block`)."""
    last = {}
    for k, pair in enumerate(pairs):
        for m in pair:
            last[m] = k
    loaded: set[str] = set()
    held = peak = 0
    for k, pair in enumerate(pairs):
        for m in set(pair) - loaded:
            loaded.add(m)
            held += layers(m)
        peak = max(peak, held)
        for m in set(pair):
            if last[m] == k:
                loaded.discard(m)
                held -= layers(m)
    return peak


class Config:
    """A validated workflow config and every decision derived from it."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = validate(raw)
        self.datasets: list[str] = list(self.raw["datasets"])
        self.models: list[str] = list(self.raw["models"])
        self.metrics: list[str] = list(self.raw["metrics"])
        self.alignment: dict[str, Any] = self.raw["alignment"]
        self.calibration: dict[str, Any] = self.raw["calibration"]
        self.plots: dict[str, Any] = self.raw["plots"]
        self._check()

    # -- models ------------------------------------------------------------

    def source(self, model: str):
        """The model's parsed source (:func:`prh.models.registry.parse_source`)."""
        from .models.registry import ModelError, parse_source

        try:
            entry = self.raw["models"][model]
            return parse_source(entry["source"], entry.get("modality"))
        except ModelError as err:
            raise ConfigError(f"config: models.{model}.source: {err}") from None

    def modality(self, model: str) -> str:
        # asked once per pair when planning; parsing the source is the slow part
        if model not in self._modality:
            self._modality[model] = self.source(model).modality
        return self._modality[model]

    @cached_property
    def _modality(self) -> dict[str, str]:
        return {}

    def model(self, model: str) -> dict[str, Any]:
        """A model's settings: the ``embedding`` block, then its own keys, its
        modality from its source."""
        entry = self.raw["models"][model]
        return {**self.raw["embedding"], **entry, "modality": self.modality(model)}

    def embed_params(self, model: str) -> dict[str, Any]:
        """Only what changes a model's features, so other edits do not rerun it."""
        s = self.model(model)
        params = {k: s[k] for k in EMBED_RESULT_KEYS}
        from .models.registry import check_weights

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
        user-built features the config name): the stats job refuses a
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

    def embed_resources(self, model: str) -> dict[str, int]:
        s = self.model(model)
        return {"threads": s["threads"], "mem_mb": s["mem_mb"], "runtime": s["runtime"],
                "gpu": s.get("gpus", 0 if s["device"] == "cpu" else 1)}

    def modalities(self) -> dict[str, str]:
        return {m: self.modality(m) for m in self.models}

    # -- pairs and calibration ---------------------------------------------

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
        model's stats loaded until its last pair (:meth:`block_cost`)."""
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
            used = {m for p in self.block_pairs(block) for m in p}
            self._block_models[block] = [m for m in self.models if m in used]
        return list(self._block_models[block])

    @cached_property
    def _block_models(self) -> dict[str, list[str]]:
        return {}  # asked for by a block job's input and params

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

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration["enabled"])

    def calibrated_pair(self, x: str, y: str) -> bool:
        if not self.calibrated:
            return False
        return self.calibration["pairs"] == "all" or self.cross_modal(x, y)

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

    def scorecard_targets(self, dataset: str) -> list[str]:
        """Every model's scorecard (the ``scorecards`` target)."""
        return [scorecard_path(dataset, m, ext) for m in self.models for ext in ("tsv", "png")]

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

    def statistics_resources(self, dataset: str) -> dict[str, int]:
        """The statistics job's cost model: each metric's R resamples re-score
        every statistics pair (METRIC_COST's resample column), all models' stats
        held at once."""
        from .metric_info import get_metric, interval_scheme

        n = self.n_samples(dataset)
        seconds = START_S
        for x, y in self.statistics_pairs():
            lxy = self.model_layers(x) * self.model_layers(y) * (n / COST_N) ** 2
            for metric in self.calibrated_metrics():
                reps = interval_scheme(metric, self.calibration["interval_method"])[1]
                orders = 1 if get_metric(metric).symmetric else 2
                sweep_s, _, resample = METRIC_COST.get(metric, DEFAULT_METRIC_COST)
                seconds += lxy * orders * sweep_s * (1 + reps * resample)
        layers = sum(self.model_layers(m) for m in self.statistics_models())
        mb = 1500 + layers * MEM_COPIES * n * n * 8 / 2**20
        return {"mem_mb": math.ceil(SAFETY * mb),
                "runtime": max(MIN_RUNTIME_MIN, math.ceil(SAFETY * seconds / 60))}

    def metric_params(self) -> dict[str, dict[str, Any]]:
        """Configured metrics with their parameters ({} where the defaults apply)."""
        return {m: dict(self.raw["metrics"][m] or {}) for m in self.metrics}

    def resolved_metric_params(self, metric: str) -> dict[str, Any]:
        """A metric's parameters with the library's defaults filled in."""
        from .metric_info import get_metric

        return {**get_metric(metric).defaults, **self.metric_params()[metric]}

    def keep_layers(self) -> bool:
        """SVCCA on resamples (the statistics job) and sample subsets recomputes its bases
        from the preprocessed layers, so stats files then keep them."""
        if not self.calibrated or "svcca" not in self.metrics:
            return False
        if "svcca" in self.calibrated_metrics():  # the statistics job resamples it
            return True
        return self.has_sample_size_curve and "svcca" in self.calibration["sample_size_metrics"]

    def stats_params(self) -> dict[str, Any]:
        """What a stats file must hold: the preprocessing and every k and
        cca_dim the configured metrics use."""
        topk = sorted({self.resolved_metric_params(m)["topk"]
                       for m in self.metrics if m in KNN_METRICS})
        cca_dims = sorted({self.resolved_metric_params(m)["cca_dim"]
                           for m in self.metrics if m == "svcca"})
        a = self.alignment
        return {"q": a["q"], "exact": a["exact"], "normalize": a["normalize"], "topk": topk,
                "cca_dims": cca_dims, "layers": self.keep_layers()}

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

    # -- resources -----------------------------------------------------------

    def n_samples(self, dataset: str) -> int:
        return self.raw["datasets"][dataset]["n_samples"]

    def model_layers(self, model: str) -> int:
        """The layer count the cost model uses: the model's ``n_layers``, else
        the bundled registry's count, else DEFAULT_LAYERS (hub, file: and py:
        models: their counts are known only once embedded)."""
        if model not in self._layers:
            self._layers[model] = self._model_layers(model)
        return self._layers[model]

    @cached_property
    def _layers(self) -> dict[str, int]:
        return {}  # asked once per pair of a block when planning its resources

    def _model_layers(self, model: str) -> int:
        entry = self.raw["models"][model]
        if entry.get("n_layers"):
            return int(entry["n_layers"])
        source = self.source(model)
        if source.kind == "bundled":
            from .models.registry import BUNDLED

            return BUNDLED[source.name].layers
        return DEFAULT_LAYERS

    def pair_cost(self, dataset: str, x: str, y: str) -> dict[str, float]:
        """The pair job's cost model (README, "Cluster requests"): estimated
        seconds and MB of one pair job, and the requests made of them.

        Time: START_S plus, per layer pair, each metric's sweep time at
        N=COST_N scaled by (N/COST_N)^2, times 2 for asymmetric metrics (both
        orders), times (1 + K * per-permutation cost) when the pair is
        calibrated. Request: SAFETY x the estimate, at least
        MIN_RUNTIME_MIN minutes. Memory: 1500 MB (interpreter, torch) plus
        MEM_COPIES float64 N x N matrices per layer of both models (Gram
        matrix, kernel variants, kNN masks), plus each layer kept for
        SVCCA's resamples at KEPT_WIDTH floats, times SAFETY."""
        n = self.n_samples(dataset)
        lx, ly = self.model_layers(x), self.model_layers(y)
        seconds = START_S + self._pair_work_s(n, lx, ly, self.calibrated_pair(x, y))
        mb = self._resident_mb(n, lx + ly)
        return {"layers_x": lx, "layers_y": ly, "seconds": seconds, "mb": mb,
                **self._requests(seconds, mb)}

    def _pair_work_s(self, n: int, lx: int, ly: int, calibrated: bool) -> float:
        """A pair's estimated seconds beyond START_S; memoised, since a block
        of thousands of pairs has only a few distinct layer counts."""
        key = (n, lx, ly, calibrated)
        if key not in self._work_s:
            from .metric_info import get_metric

            cal = self.calibration_params(*self._calibrated_example) if calibrated else {}
            k = cal["n_permutations"] if cal else 0
            chosen = cal.get("metrics", [])
            per_pair = 0.0
            for metric in self.metrics:
                sweep_s, perm, _ = METRIC_COST.get(metric, DEFAULT_METRIC_COST)
                orders = 1 if get_metric(metric).symmetric else 2
                per_pair += orders * sweep_s * (1 + (k if metric in chosen else 0) * perm)
            self._work_s[key] = lx * ly * (n / COST_N) ** 2 * per_pair
        return self._work_s[key]

    @cached_property
    def _work_s(self) -> dict[tuple, float]:
        return {}

    @cached_property
    def _calibrated_example(self) -> tuple[str, str]:
        # every calibrated pair has the same calibration params
        return next(p for p in self._pairs if self.calibrated_pair(*p))

    def _resident_mb(self, n: int, layers: int) -> float:
        """MB for ``layers`` layers held at once (MEM_COPIES N x N float64
        each, plus the layer itself for SVCCA's resamples), and 1500 MB."""
        mb = 1500 + layers * MEM_COPIES * n * n * 8 / 2**20
        if self.keep_layers():
            mb += layers * n * KEPT_WIDTH * 4 / 2**20
        return mb

    @staticmethod
    def _requests(seconds: float, mb: float) -> dict[str, int]:
        return {"runtime": max(MIN_RUNTIME_MIN, math.ceil(SAFETY * seconds / 60)),
                "mem_mb": math.ceil(SAFETY * mb)}

    def block_cost(self, dataset: str, block: str) -> dict[str, float]:
        """A block job's cost: the pair cost model summed over its pairs (one
        START_S: the job starts once and reads each stats file once). Memory:
        the layers of the models whose stats are loaded at once, at most; the
        step loads a model at its first pair and drops it after its last, in
        the order of :meth:`block_pairs`."""
        if block not in self._block_costs:
            n = self.n_samples(dataset)
            pairs = self.block_pairs(block)
            seconds = START_S + sum(
                self._pair_work_s(n, self.model_layers(x), self.model_layers(y),
                                  self.calibrated_pair(x, y)) for x, y in pairs)
            layers = peak_loaded(pairs, self.model_layers)
            mb = self._resident_mb(n, layers)
            self._block_costs[block] = {"pairs": len(pairs), "layers": layers,
                                        "seconds": seconds, "mb": mb,
                                        **self._requests(seconds, mb)}
        return self._block_costs[block]

    @cached_property
    def _block_costs(self) -> dict[str, dict[str, float]]:
        return {}

    def block_resources(self, dataset: str, block: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a block job (:meth:`block_cost`)."""
        c = self.block_cost(dataset, block)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def pair_resources(self, dataset: str, x: str, y: str) -> dict[str, int]:
        """mem_mb and runtime (minutes) of a pair job (:meth:`pair_cost`)."""
        c = self.pair_cost(dataset, x, y)
        return {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}

    def kernel_mem_mb(self, dataset: str, copies: int) -> int:
        """Memory for ``copies`` float64 N x N matrices per layer for up to 100
        layers (LLaMA-65B has 81), plus the interpreter and torch."""
        n = self.n_samples(dataset)
        return 1500 + math.ceil(copies * 100 * n * n * 8 / 2**20)

    @property
    def alignment_gpus(self) -> int:
        return 0 if self.alignment["device"] == "cpu" else 1

    # -- figures ---------------------------------------------------------------

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

    def competence_params(self) -> dict[str, dict[str, Any]]:
        """Configured competence values and sources per model (only these keys,
        so that no other model setting reruns the competence figures)."""
        keys = ("competence", "competence_source")
        entries = self.raw["models"]
        return {m: {k: entries[m][k] for k in keys if k in entries[m]}
                for m in self.models if "competence" in entries[m]}

    @cached_property
    def _figures(self) -> list[Figure]:
        cal = self.calibrated
        figs = []
        for m in self.metrics:
            for calibrated in (False, True)[: 1 + cal]:
                name = f"heatmap_{m}" + ("_calibrated" if calibrated else "")
                figs.append(Figure("heatmaps", name, name,
                                   {"metric": m, "calibrated": calibrated}, "heatmap",
                                   "1. Alignment heatmaps", m,
                                   {"metric": m, "scores": "calibrated" if calibrated else "raw"}))
        for m in self.competence_metrics():
            kinds = [(f"competence_{m}", False, "raw")]
            if cal:
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
        return [f"{RESULTS}/{dataset}/plots/{figure.stem}.{ext}" for ext in self.plot_formats]

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
                out[t] = f"{RESULTS}/{dataset}/{t}.tsv"
        return out

    def findings_inputs(self, dataset: str) -> dict[str, str]:
        """The tables and files the findings page reads, by name (the
        statistics tables by theirs, each model's features file by
        ``features_<model>``)."""
        out = {"alignment": f"{RESULTS}/{dataset}/alignment.tsv",
               "aggregates": f"{RESULTS}/{dataset}/aggregates.tsv",
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
        paths += [f"{RESULTS}/{dataset}/report/{t}.tsv" for t in self.tables()]
        paths += [findings_path(dataset), report_page(dataset, "findings")]
        return paths + [report_page(dataset, t) for t in self.report_table_names()]

    def align_targets(self, dataset: str) -> list[str]:
        out = [f"{RESULTS}/{dataset}/alignment.{ext}" for ext in ("h5", "tsv")]
        out.append(f"{RESULTS}/{dataset}/aggregates.tsv")
        if self.has_sample_size_curve:
            out.append(f"{RESULTS}/{dataset}/sample_size.tsv")
        if self.calibrated:
            out += [statistics_path(dataset, t) for t in STATISTICS_TABLES]
        return out

    # -- hub models -----------------------------------------------------------

    def hub_models(self, exists=None) -> dict[str, str]:
        """Model -> hub repository, for the models that load from the hub
        (``timm:``/``hf:`` without a local folder or weights file) and whose
        features are still missing for some dataset (:mod:`prh.hub`)."""
        import os

        from .hub import repo_id

        exists = exists or os.path.exists
        out = {}
        for m in self.models:
            src = self.source(m)
            weights = self.raw["models"][m].get("weights")
            if src.kind not in ("timm", "hf") or weights not in (None, "pretrained"):
                continue
            repo = repo_id(src.kind, src.name)
            if repo and not all(exists(features_path(d, m)) for d in self.datasets):
                out[m] = repo
        return out

    # -- failure-safe reruns -----------------------------------------------

    def stale_groups(self) -> dict[str, tuple[list[str], list[str]]]:
        """Outputs and what they derive from, in dependency order, so that
        removals after a failed run cascade (:func:`prh.reruns.remove_stale`):
        a missing features file makes its stats stale, a missing stats file
        its pairs and the sample-size table, a missing pair file the
        aggregate outputs."""
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for d in self.datasets:
            for m in self.models:
                groups[stats_path(d, m)] = ([stats_path(d, m)],
                                            [manifest_path(d), features_path(d, m)])
            if self.blocked:
                for b in self._blocks:
                    groups[pair_block_path(d, b)] = ([pair_block_path(d, b)],
                                                     [stats_path(d, m) for m in self.block_models(b)])
            else:
                for x, y in self._pairs:
                    groups[pair_path(d, x, y)] = ([pair_path(d, x, y)],
                                                  [stats_path(d, x), stats_path(d, y)])
            outputs = [f"{RESULTS}/{d}/{n}" for n in ("alignment.h5", "alignment.tsv",
                                                      "aggregates.tsv")]
            groups[f"{d} alignment"] = (outputs, self.pair_files(d))
            groups[f"{d} sample size"] = ([f"{RESULTS}/{d}/sample_size.tsv"],
                                          [stats_path(d, m) for m in self.sample_size_models()])
            groups[f"{d} statistics"] = ([statistics_path(d, t) for t in STATISTICS_TABLES],
                                         [stats_path(d, m) for m in self.statistics_models()])
        return groups

    # -- checks that need more than the schema ------------------------------

    def _check(self) -> None:
        for name, entry in self.raw["models"].items():
            source = self.source(name)
            given = entry.get("modality")
            if given is not None and given != source.modality:
                raise ConfigError(f"config: models.{name}.modality: {source.text} is a "
                                  f"{source.modality} model, not {given}; drop the key or fix it")
            weights = entry.get("weights")
            if weights == "random" and (source.modality != "vision" or source.kind == "py"):
                raise ConfigError(f"config: models.{name}.weights: random (an untrained "
                                  f"baseline) is for vision models prh builds; {source.text} "
                                  f"is a {source.kind} {source.modality} model")
            if weights not in (None, "pretrained", "random"):
                if source.kind not in ("timm", "hf", "py"):
                    raise ConfigError(f"config: models.{name}.weights: a weights path is for "
                                      f"timm:, hf: and py: sources, not {source.text}")
                if not Path(weights).exists():
                    raise ConfigError(f"config: models.{name}.weights: {weights} does not exist "
                                      "(paths are relative to the workflow folder)")
            if source.path is not None and not Path(source.path).is_file():
                raise ConfigError(f"config: models.{name}.source: {source.path} does not exist "
                                  "(paths are relative to the workflow folder)")
            for key, kind in (("layer_names", "file"), ("options", "py")):
                if key in entry and source.kind != kind:
                    raise ConfigError(f"config: models.{name}.{key}: only {kind}: sources take "
                                      f"it, not {source.text}")
        for name, entry in self.raw["datasets"].items():
            if entry["source"] == "folder" and "path" not in entry:
                raise ConfigError(f"config: datasets.{name}: source 'folder' needs a 'path'")
        for metric in self.metrics:
            from .metric_info import get_metric

            info = get_metric(metric)
            unknown = set(self.metric_params()[metric]) - set(info.defaults)
            if unknown:
                raise ConfigError(f"config: metrics.{metric}: unknown parameter "
                                  f"{sorted(unknown)[0]!r}; its parameters: "
                                  f"{', '.join(info.defaults) or 'none'}")
            params = self.resolved_metric_params(metric)
            for dataset in self.datasets:
                n = self.n_samples(dataset)
                if "topk" in params and params["topk"] > n - 1:
                    raise ConfigError(f"config: metrics.{metric}.topk: {params['topk']} needs "
                                      f"more than datasets.{dataset}.n_samples={n} samples; "
                                      "lower topk or use more samples")
                if "cca_dim" in params and params["cca_dim"] > n:
                    raise ConfigError(f"config: metrics.{metric}.cca_dim: {params['cca_dim']} "
                                      f"exceeds datasets.{dataset}.n_samples={n}")
        for m in self.calibration["metrics"] or []:
            if m not in self.metrics:
                raise ConfigError(f"config: calibration.metrics: {m!r} is not a configured "
                                  f"metric; configured: {', '.join(self.metrics)}")
        if self.has_sample_size_curve:
            for m in self.calibration["sample_size_metrics"]:
                if m not in self.metrics:
                    raise ConfigError(f"config: calibration.sample_size_metrics: {m!r} is not "
                                      f"a configured metric; configured: {', '.join(self.metrics)}")
            for name in self.datasets:
                too_big = [n for n in self.calibration["sample_sizes"] if n > self.n_samples(name)]
                if too_big:
                    raise ConfigError(f"config: calibration.sample_sizes: {too_big} exceed "
                                      f"datasets.{name}.n_samples={self.n_samples(name)}; "
                                      "lower them")
        if not self.pairs():
            raise ConfigError(f"config: alignment.pairs: no model pairs to align (pairs: "
                              f"{self.alignment['pairs']}; check the models' sources)")
        self.comparisons()
        self.competence_metrics()
        self.layer_plot_metrics()
        self.layer_plot_pairs()
