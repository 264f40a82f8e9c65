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


def pairs_of(models):
    """Unordered model pairs in a fixed (sorted) order, so that adding or
    reordering models never renames an existing pair file."""
    mode = config["alignment"]["pairs"]
    out = []
    for i, x in enumerate(sorted(models)):
        for y in sorted(models)[i + 1 :]:
            mx = config["models"][x]["modality"]
            my = config["models"][y]["modality"]
            if mode == "cross_modal" and mx == my:
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
    }


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
    return [f"{RESULTS}/{dataset}/plots/heatmap_{m}.png" for m in METRICS]


_check_models()


wildcard_constraints:
    dataset=_alternation(DATASETS),
    model=_alternation(MODELS),
    model_x=_alternation(MODELS),
    model_y=_alternation(MODELS),
