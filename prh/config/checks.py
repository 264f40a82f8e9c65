"""What the schema cannot check: each entry against what it names, and
settings that each pass the schema but together cannot answer.

:class:`prh.config.Config` refuses them when it is built, at plan time,
before any job: sources, weights and files that do not fit or exist, metric
parameters and metric names that are not configured, no pair to align
(:func:`check_entries`), among them a model that embeds on a dataset of ids
alone; then sample counts below what a metric needs on the
full sample, on each sample-size subset and on the statistics job's
resamples, an alpha below the smallest p-value the permutations can give,
calibration with no pair to calibrate, metrics that need N x N matrices
where the caches hold the features, and approximate neighbours where they
would not be the library's cosine neighbours (:func:`check_config`). What
``calibration.blocks`` gives is known only from the prepared manifest: the
pair and statistics steps check it first thing (:mod:`prh.calibration_checks`,
which the jobs import without this module and the config).

Each refusal is one :class:`~prh.config.ConfigError` line naming the keys,
their values and what to change. Torch-free.

One value comes from data rather than the config: an ``ids`` dataset's
``n_samples``, when left out, is the number of ids in its file, read (and
checked as the dataset step checks it) by :func:`count_ids_datasets`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..calibration_checks import min_permutations
from ..metric_info import get_metric, interval_scheme, smallest_resample, units_needed
from .schema import ConfigError


def count_ids_datasets(raw: dict[str, Any]) -> None:
    """Read every ``ids`` dataset's file (refusing one the dataset step would
    refuse, naming the line) and set its ``n_samples`` to the count of ids
    when the config leaves it out; a given one must not exceed that count."""
    from ..datasets import DatasetError, count_ids

    for name, entry in raw["datasets"].items():
        if entry["source"] != "ids":
            continue
        try:
            count = count_ids(entry["path"])
        except DatasetError as err:
            raise ConfigError(f"config: datasets.{name}.path: {err} (paths are relative to "
                              "the workflow folder)") from None
        n = entry.setdefault("n_samples", count)
        if n > count:
            raise ConfigError(f"config: datasets.{name}.n_samples: {n}, but {entry['path']} "
                              f"holds {count} ids; lower it or leave it out to take them all")
        if n < 4:
            raise ConfigError(f"config: datasets.{name}: {entry['path']} holds {count} ids; "
                              "a dataset needs at least 4")


def check_entries(cfg) -> None:
    """Each model, dataset and metric entry against what it names, in config
    order; ``cfg``: a :class:`prh.config.Config`."""
    for name, entry in cfg.raw["models"].items():
        source = cfg.source(name)
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
    for name, entry in cfg.raw["datasets"].items():
        if entry["source"] == "folder" and "path" not in entry:
            raise ConfigError(f"config: datasets.{name}: source 'folder' needs a 'path'")
        if entry["source"] == "ids":
            embedding = [m for m in cfg.models if cfg.source(m).kind != "file"]
            if embedding:
                m = embedding[0]
                raise ConfigError(f"config: models.{m}: {cfg.source(m).text} embeds images or "
                                  f"captions, but datasets.{name} (source ids) holds sample ids "
                                  "alone; ids datasets take only file: models (precomputed "
                                  "features), so make every model a file: source or move "
                                  f"{name} to a config of its own")
            blocks = cfg.calibration["blocks"]
            if blocks is not None and cfg.calibrated:
                raise ConfigError(f"config: calibration.blocks: {blocks}: datasets.{name} "
                                  "(source ids) has no images or captions to group samples "
                                  "by; set calibration.blocks: null")
    for metric in cfg.metrics:
        info = get_metric(metric)
        unknown = set(cfg.metric_params()[metric]) - set(info.defaults)
        if unknown:
            raise ConfigError(f"config: metrics.{metric}: unknown parameter "
                              f"{sorted(unknown)[0]!r}; its parameters: "
                              f"{', '.join(info.defaults) or 'none'}")
    for m in cfg.calibration["metrics"] or []:
        if m not in cfg.metrics:
            raise ConfigError(f"config: calibration.metrics: {m!r} is not a configured "
                              f"metric; configured: {', '.join(cfg.metrics)}")
    if cfg.has_sample_size_curve:
        for m in cfg.calibration["sample_size_metrics"]:
            if m not in cfg.metrics:
                raise ConfigError(f"config: calibration.sample_size_metrics: {m!r} is not "
                                  f"a configured metric; configured: {', '.join(cfg.metrics)}")
    if not cfg.pairs():
        raise ConfigError(f"config: alignment.pairs: no model pairs to align (pairs: "
                          f"{cfg.alignment['pairs']}; check the models' sources)")


def check_config(cfg) -> None:
    """Every check that the config alone decides; ``cfg``: a
    :class:`prh.config.Config`."""
    cal = cfg.calibration
    for d in cfg.datasets:
        n = cfg.n_samples(d)
        for metric in cfg.metrics:
            _check_samples(cfg, metric, n, f"datasets.{d}.n_samples={n} samples",
                           "use more samples")
        _check_representation(cfg, d, n)
    _check_knn(cfg)
    if cfg.has_sample_size_curve:
        for d in cfg.datasets:
            too_big = [n for n in cal["sample_sizes"] if n > cfg.n_samples(d)]
            if too_big:
                raise ConfigError(f"config: calibration.sample_sizes: {too_big} exceed "
                                  f"datasets.{d}.n_samples={cfg.n_samples(d)}; lower them")
        for i, size in enumerate(cal["sample_sizes"]):
            for metric in cal["sample_size_metrics"]:
                _check_samples(cfg, metric, size, f"calibration.sample_sizes[{i}]={size} samples",
                               f"drop that size, or leave {metric} out of "
                               "calibration.sample_size_metrics")
    if not cfg.calibrated:
        return
    if not cfg.statistics_pairs():
        sides = sorted({cfg.modality(m) for m in cfg.models})
        raise ConfigError(f"config: calibration.pairs: {cal['pairs']} calibrates no pair: every "
                          f"model is {sides[0]}; set calibration.pairs: all, add a model of the "
                          "other modality, or set calibration.enabled: false")
    _check_alpha(cal, "n_permutations")
    if cfg.has_sample_size_curve:
        _check_alpha(cal, "sample_size_permutations")
    method = cal["interval_method"]
    for d in cfg.datasets:
        n = cfg.n_samples(d)
        for metric in cfg.calibrated_metrics():
            scheme, count = interval_scheme(metric, method)
            if n < units_needed(scheme, count):
                raise ConfigError(
                    f"config: calibration.interval_method: {method} gives {metric} a {scheme} "
                    f"of {count} groups, more than datasets.{d}.n_samples={n} samples; raise "
                    f"n_samples to at least {count}, set calibration.interval_method: "
                    f"subsample, or leave {metric} out of calibration.metrics")
            kept = smallest_resample(n, scheme, count)
            other = ", calibration.interval_method: jackknife" if scheme == "subsample" else ""
            _check_samples(cfg, metric, kept,
                           f"the {kept} samples each {scheme} resample (calibration."
                           f"interval_method: {method}) keeps of datasets.{d}.n_samples={n}",
                           f"use more samples{other}, or leave {metric} out of "
                           "calibration.metrics")


def _check_samples(cfg, metric: str, n: int, where: str, remedy: str) -> None:
    """``metric`` with its configured parameters scores ``n`` samples."""
    params = cfg.resolved_metric_params(metric)
    for key, need in get_metric(metric).fewest_samples(**params).items():
        if n < need:
            what = f"metrics.{metric}: needs" if key == "N" else \
                f"metrics.{metric}.{key}: {params[key]} needs"
            lower = "" if key == "N" else f"lower {key}, "
            raise ConfigError(f"config: {what} more than {where} (at least {need}); "
                              f"{lower}{remedy}")


def _check_representation(cfg, dataset: str, n: int) -> None:
    """No metric that needs N x N matrices where the dataset's caches hold
    the features instead (:meth:`prh.metric_info.MetricInfo.needs_n_by_n`)."""
    if cfg.representation(dataset) != "features":
        return
    for metric in cfg.metrics:
        why = get_metric(metric).needs_n_by_n(**cfg.resolved_metric_params(metric))
        if why:
            raise ConfigError(f"config: metrics.{metric}: needs N x N {why}, which "
                              f"alignment.representation: features does not hold at "
                              f"datasets.{dataset}.n_samples={n}; drop the metric, or use "
                              "alignment.representation: dense")


def _check_knn(cfg) -> None:
    """alignment.knn: approximate searches the features representation's lists
    by Euclidean distance of the normalised rows: the cosine order, so only
    for caches in that representation, of normalised rows, and metrics with
    cosine neighbours."""
    if cfg.alignment["knn"] == "exact":
        return
    for d in cfg.datasets:
        if cfg.representation(d) != "features":
            raise ConfigError(f"config: alignment.knn: approximate searches the kNN lists of "
                              "the features representation, but datasets."
                              f"{d}.n_samples={cfg.n_samples(d)} gets the dense one (alignment."
                              f"representation: {cfg.alignment['representation']}); set "
                              "alignment.representation: features, or alignment.knn: exact")
    if not cfg.alignment["normalize"]:
        raise ConfigError("config: alignment.knn: approximate ranks neighbours by Euclidean "
                          "distance, the cosine order only of normalised rows; set "
                          "alignment.normalize: true, or alignment.knn: exact")
    for metric in cfg.metrics:
        if cfg.resolved_metric_params(metric).get("distance") == "euclidean":
            raise ConfigError(f"config: metrics.{metric}.distance: euclidean has no approximate "
                              "search (alignment.knn: approximate finds cosine neighbours); "
                              "set distance: cosine, or alignment.knn: exact")


def _check_alpha(cal: Mapping[str, Any], key: str) -> None:
    k, alpha = cal[key], cal["alpha"]
    if 1 / (k + 1) > alpha:
        raise ConfigError(
            f"config: calibration.alpha: {alpha:g} is below 1/(calibration.{key} + 1) = "
            f"1/{k + 1}, the smallest p-value {k} permutations give, so no score can be "
            f"significant (and every calibrated score is 0); set calibration.{key} to at least "
            f"{min_permutations(alpha)} or raise calibration.alpha")
