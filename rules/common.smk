import math
import re
from pathlib import Path

from snakemake.utils import validate

# A typo in config.yaml must stop the run before any job, with the key named.
validate(config, "../schemas/config.schema.yaml")

ROOT = Path(workflow.basedir)
RESULTS = "results"
LOGS = "logs"

DATASETS = list(config["datasets"])
MODELS = list(config["models"])
METRICS = list(config["metrics"])


EMBED_DEFAULTS = {
    "batch_size": 32,
    "device": "cpu",
    "dtype": "float32",
    "storage_dtype": "float32",
    "pool": None,
    "threads": 2,
    "mem_mb": 4000,
    "runtime": 60,
}
# Keys that change what an embedding holds; the rest only schedule the job.
EMBED_RESULT_KEYS = (
    "source",
    "modality",
    "batch_size",
    "device",
    "dtype",
    "storage_dtype",
    "pool",
)


def _check_models():
    """Unknown model names and modality mix-ups stop the run before any job.
    The registry's names import without torch, so this costs nothing."""
    from prh.models.registry import BUNDLED, PREFIXES

    for name, entry in config["models"].items():
        source = entry["source"]
        if source in BUNDLED:
            if BUNDLED[source].modality != entry["modality"]:
                raise ValueError(
                    f"config: models.{name}.modality: {source} is a "
                    f"{BUNDLED[source].modality} model, not {entry['modality']}"
                )
            continue
        if any(source.startswith(p) and len(source) > len(p) for p in PREFIXES):
            continue
        raise ValueError(
            f"config: models.{name}.source: unknown model {source!r}; known: "
            + ", ".join(list(BUNDLED) + [f"{p}<name>" for p in PREFIXES])
        )
    for name, entry in config["datasets"].items():
        if entry["source"] == "folder" and "path" not in entry:
            raise ValueError(f"config: datasets.{name}: source 'folder' needs a 'path'")
    if CALIBRATED:
        for m in (
            CALIBRATION["sample_size_metrics"] if CALIBRATION["sample_sizes"] else []
        ):
            if m not in METRICS:
                raise ValueError(
                    f"config: calibration.sample_size_metrics: {m!r} is not a configured "
                    f"metric; configured: {', '.join(METRICS)}"
                )
        for name, entry in config["datasets"].items():
            too_big = [n for n in CALIBRATION["sample_sizes"] if n > entry["n_samples"]]
            if too_big:
                raise ValueError(
                    f"config: calibration.sample_sizes: {too_big} exceed "
                    f"datasets.{name}.n_samples={entry['n_samples']}; lower them"
                )
    if not pairs_of(MODELS):
        raise ValueError(
            "config: alignment.pairs: no model pairs to align "
            f"(pairs: {config['alignment']['pairs']}; check the models' modality)"
        )


def _alternation(names):
    return "|".join(re.escape(n) for n in names)


def model_settings(model):
    """Embedding settings of one model: the global defaults, then its own keys."""
    merged = {
        **EMBED_DEFAULTS,
        **config.get("embedding", {}),
        **config["models"][model],
    }
    return merged


def embed_params(model):
    """Only what changes a model's features, so other edits do not rerun it."""
    s = model_settings(model)
    return {k: s[k] for k in EMBED_RESULT_KEYS}


def embed_gpus(model):
    s = model_settings(model)
    return s.get("gpus", 0 if s["device"] == "cpu" else 1)


def cross_modal(x, y):
    return config["models"][x]["modality"] != config["models"][y]["modality"]


def pairs_of(models):
    """Unordered model pairs in a fixed (sorted) order, so that adding or
    reordering models never renames an existing pair file."""
    mode = config["alignment"]["pairs"]
    out = []
    for i, x in enumerate(sorted(models)):
        for y in sorted(models)[i + 1 :]:
            if mode == "cross_modal" and not cross_modal(x, y):
                continue
            out.append((x, y))
    return out


def metric_params():
    """Configured metrics with their parameters ({} where the defaults apply)."""
    return {m: dict(config["metrics"][m] or {}) for m in METRICS}


def stats_params():
    """What a stats file must hold: the preprocessing and every k and cca_dim
    the configured metrics use."""
    mp = metric_params()
    knn_metrics = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")
    topk = sorted({mp[m].get("topk", 10) for m in METRICS if m in knn_metrics})
    cca_dims = sorted({mp[m].get("cca_dim", 10) for m in METRICS if m == "svcca"})
    a = config["alignment"]
    return {
        "q": a["q"],
        "exact": a["exact"],
        "normalize": a["normalize"],
        "topk": topk,
        "cca_dims": cca_dims,
        "layers": keep_layers(),
    }


CALIBRATION = config.get("calibration", {})
CALIBRATED = bool(CALIBRATION) and CALIBRATION.get("enabled", True)


def calibrated_pair(x, y):
    if not CALIBRATED:
        return False
    return CALIBRATION["pairs"] == "all" or cross_modal(x, y)


def calibration_params(wildcards):
    """What a pair job's calibration depends on ({} when the pair is not
    calibrated), so the sample-size settings rerun no pair."""
    if not calibrated_pair(wildcards.model_x, wildcards.model_y):
        return {}
    keys = ("n_permutations", "n_boot", "alpha", "seed", "aggregates")
    return {k: CALIBRATION[k] for k in keys}


def sample_size_params():
    if not sample_size_targets(DATASETS[0]):
        return {}
    c = CALIBRATION
    return {
        "sizes": c["sample_sizes"],
        "metrics": {m: metric_params()[m] for m in c["sample_size_metrics"]},
        "n_permutations": c["sample_size_permutations"],
        "alpha": c["alpha"],
        "seed": c["seed"],
    }


def sample_size_pairs():
    """The curve's pairs: cross-modal ones, or all configured pairs when there
    are none."""
    pairs = pairs_of(MODELS)
    cross = [(x, y) for x, y in pairs if cross_modal(x, y)]
    return cross or pairs


def keep_layers():
    """SVCCA on bootstrap resamples and sample subsets recomputes its bases
    from the preprocessed layers, so stats files then keep them."""
    if not CALIBRATED or "svcca" not in METRICS:
        return False
    curve = (
        CALIBRATION["sample_sizes"] and "svcca" in CALIBRATION["sample_size_metrics"]
    )
    return CALIBRATION["n_boot"] > 0 or bool(curve)


def sample_size_targets(dataset):
    if CALIBRATED and CALIBRATION["sample_sizes"]:
        return [f"{RESULTS}/{dataset}/sample_size.tsv"]
    return []


def n_samples(dataset):
    return config["datasets"][dataset]["n_samples"]


def kernel_mem_mb(dataset, copies):
    """Memory for `copies` float64 N x N matrices per layer for up to 100
    layers (LLaMA-65B has 81), plus the interpreter and torch."""
    n = n_samples(dataset)
    return 1500 + math.ceil(copies * 100 * n * n * 8 / 2**20)


def alignment_gpus():
    return 0 if config["alignment"]["device"] == "cpu" else 1


def lib(*modules):
    """The library files a rule's code imports, as inputs: Snakemake tracks a
    `script:` file itself but not the modules it imports."""
    paths = []
    for m in modules:
        p = ROOT / "prh" / m
        if p.is_dir():
            paths += sorted(str(f) for f in p.rglob("*.py"))
        elif p.with_suffix(".py").is_file():
            paths.append(str(p.with_suffix(".py")))
        else:
            raise ValueError(f"workflow: library module prh/{m} not found under {ROOT}")
    return paths


# Code that every alignment job runs.
ALIGN_LIB = (
    "alignment",
    "metrics",
    "preprocess",
    "checks",
    "sequences",
    "stats_io",
    "pairs",
    "jobio",
)
EMBED_LIB = ("datasets", "embed", "models", "storage", "workflow_steps", "jobio")
DATA_LIB = ("datasets", "workflow_steps", "jobio")


def features_path(dataset, model):
    return f"{RESULTS}/{dataset}/features/{model}.h5"


def stats_path(dataset, model):
    return f"{RESULTS}/{dataset}/stats/{model}.h5"


def pair_path(dataset, x, y):
    return f"{RESULTS}/{dataset}/pairs/{x}__{y}.h5"


def pair_files(wildcards):
    return [pair_path(wildcards.dataset, x, y) for x, y in pairs_of(MODELS)]


def heatmap_paths(dataset):
    """Every heatmap file of a dataset (raw, and calibrated when calibration
    is on; one file per plot format)."""
    return [p for paths in heatmap_outputs(dataset).values() for p in paths]


_check_models()


wildcard_constraints:
    dataset=_alternation(DATASETS),
    model=_alternation(MODELS),
    model_x=_alternation(MODELS),
    model_y=_alternation(MODELS),


# ---------------------------------------------------------------------------
# Plots and the report (rules/plots.smk). Helpers added for the figures issue.

PLOTS = config["plots"]
PLOT_FORMATS = list(PLOTS.get("formats", ["png", "pdf"]))
# Figures go to the report as PNG (or the first format when there is no PNG).
REPORT_FORMAT = "png" if "png" in PLOT_FORMATS else PLOT_FORMATS[0]


def _plot_metric(key, name):
    if name not in METRICS:
        raise ValueError(
            f"config: plots.{key}: {name!r} is not a configured metric; "
            f"configured: {', '.join(METRICS)}"
        )
    return name


def competence_metrics():
    """Metrics of the alignment-vs-competence figures: plots.competence_metric
    (one or a list), else mutual_knn, else the first configured metric."""
    names = PLOTS.get("competence_metric")
    if names is None:
        return ["mutual_knn"] if "mutual_knn" in METRICS else METRICS[:1]
    names = [names] if isinstance(names, str) else list(names)
    return [_plot_metric("competence_metric", n) for n in names]


def layer_plot_metrics():
    """Metrics of the layer x layer figures: plots.layer_metrics, else those of
    mutual_knn and cka that are configured, else the first metric."""
    names = PLOTS.get("layer_metrics")
    if names is None:
        names = [m for m in ("mutual_knn", "cka") if m in METRICS] or METRICS[:1]
    return [_plot_metric("layer_metrics", n) for n in names]


def layer_plot_pairs():
    """(x, y) pairs with a layer x layer figure: plots.layer_pairs is
    cross_modal (default), all, none, or a list of [x, y] (rows = x)."""
    spec = PLOTS.get("layer_pairs", "cross_modal")
    pairs = pairs_of(MODELS)
    if spec == "all":
        return pairs
    if spec == "none":
        return []
    if spec == "cross_modal":
        return [(x, y) for x, y in pairs if cross_modal(x, y)]
    out = []
    for x, y in spec:
        for m in (x, y):
            if m not in MODELS:
                raise ValueError(f"config: plots.layer_pairs: unknown model {m!r}")
        if (x, y) not in pairs and (y, x) not in pairs:
            raise ValueError(
                f"config: plots.layer_pairs: {x} x {y} is not aligned "
                f"(alignment.pairs: {config['alignment']['pairs']})"
            )
        out.append((x, y))
    return out


def plot_calibrated():
    """Calibrated figures only when calibration runs (same switch as the
    alignment rules: a calibration section without enabled: false)."""
    cal = config.get("calibration") or {}
    return bool(cal) and cal.get("enabled", True) is not False


def plot_sample_size():
    return plot_calibrated() and bool(config["calibration"].get("sample_sizes"))


def competence_params():
    """Configured competence values and sources per model (only these keys,
    so that no other model setting reruns the competence figures)."""
    keys = ("competence", "competence_source")
    return {
        m: {k: config["models"][m][k] for k in keys if k in config["models"][m]}
        for m in MODELS
        if "competence" in config["models"][m]
    }


def modalities():
    return {m: config["models"][m]["modality"] for m in MODELS}


def _figure(dataset, stem, caption=None, **report_args):
    """The files of one figure, one per plot format; with a caption, the
    report's format is declared a report item."""
    paths = [f"{RESULTS}/{dataset}/plots/{stem}.{ext}" for ext in PLOT_FORMATS]
    if caption is None:
        return paths
    out = []
    for p in paths:
        if p.endswith(f".{REPORT_FORMAT}"):
            p = report(p, caption=f"../report/{caption}.rst", **report_args)
        out.append(p)
    return out


def heatmap_outputs(dataset, report_items=False):
    out = {}
    for m in METRICS:
        kinds = ["raw", "calibrated"] if plot_calibrated() else ["raw"]
        for kind in kinds:
            name = f"heatmap_{m}" + ("" if kind == "raw" else "_calibrated")
            args = {}
            if report_items:
                args = dict(
                    caption="heatmap",
                    category="1. Alignment heatmaps",
                    subcategory=m,
                    labels={"dataset": dataset, "metric": m, "scores": kind},
                )
            out[name] = _figure(dataset, name, **args)
    return out


def competence_outputs(dataset, report_items=False):
    out = {}
    for m in competence_metrics():
        names = [(f"competence_{m}", "competence", "raw")]
        if plot_calibrated():
            names.append(
                (f"competence_raw_vs_calibrated_{m}", "competence", "raw vs calibrated")
            )
        for name, caption, kind in names:
            args = {}
            if report_items:
                args = dict(
                    caption=caption,
                    category="2. Alignment vs competence",
                    subcategory=m,
                    labels={"dataset": dataset, "metric": m, "scores": kind},
                )
            out[name] = _figure(dataset, name, **args)
    return out


def layer_outputs(dataset, report_items=False):
    out = {}
    for x, y in layer_plot_pairs():
        for m in layer_plot_metrics():
            args = {}
            if report_items:
                args = dict(
                    caption="layers",
                    category="3. Layer x layer scores",
                    subcategory=f"{x} x {y}",
                    labels={"dataset": dataset, "pair": f"{x} x {y}", "metric": m},
                )
            out[f"{x}__{y}/{m}"] = _figure(dataset, f"layers/{x}__{y}/{m}", **args)
    return out


def layer_pair_files(wildcards):
    return [
        pair_path(wildcards.dataset, *sorted((x, y))) for x, y in layer_plot_pairs()
    ]


def agreement_outputs(dataset, report_items=False):
    args = {}
    if report_items:
        args = dict(
            caption="agreement",
            category="4. Metric agreement",
            labels={"dataset": dataset},
        )
    return {"metric_agreement": _figure(dataset, "metric_agreement", **args)}


def sample_size_outputs(dataset, report_items=False):
    args = {}
    if report_items:
        args = dict(
            caption="sample_size",
            category="5. Sample size",
            labels={"dataset": dataset},
        )
    return {"sample_size": _figure(dataset, "sample_size", **args)}


def plot_paths(dataset):
    """Every output of the plot rules for one dataset (the `plots` target)."""
    outs = [
        heatmap_outputs(dataset),
        competence_outputs(dataset),
        agreement_outputs(dataset),
    ]
    if layer_plot_pairs():
        outs.append(layer_outputs(dataset))
    if plot_sample_size():
        outs.append(sample_size_outputs(dataset))
    paths = [p for o in outs for paths in o.values() for p in paths]
    tables = ["alignment", "aggregates"] if plot_calibrated() else ["alignment"]
    return paths + [f"{RESULTS}/{dataset}/report/{t}.tsv" for t in tables]
