"""Settings that pass the schema but together cannot answer are refused in
one line naming the keys: at plan time when the config decides
(prh.config.checks.check_config), at the start of the pair and statistics
steps when only the manifest's blocks do."""

from __future__ import annotations

import numpy as np
import pytest

from prh.config import Config, ConfigError
from prh.calibration_checks import min_permutations
from prh.metric_info import get_metric, interval_scheme, smallest_resample


def _refused(cfg: dict) -> str:
    with pytest.raises(ConfigError) as err:
        Config(cfg)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --- plan time -------------------------------------------------------------------


@pytest.mark.parametrize("where, value", [
    (("models", "minilm_l6", "competence"), float("nan")),
    (("models", "minilm_l6", "competence"), float("inf")),
    (("models", "minilm_l6", "competence"), float("-inf")),
    (("models", "minilm_l6", "competence"), ".nan"),   # as --config passes it
    (("calibration", "alpha"), float("nan")),
    (("calibration", "interval_level"), float("nan")),
    (("alignment", "q"), float("nan")),
    (("metrics", "cka", "sigma"), float("inf")),
])
def test_non_finite_numbers_are_refused(tiny_config, where, value):
    node = tiny_config
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = value
    if where[-1] == "competence":
        node["competence_source"] = "a test"
    msg = _refused(tiny_config)
    assert msg.startswith(f"config: {'.'.join(where)}: ")
    assert "is not a finite number" in msg


def test_a_py_factorys_own_options_may_hold_any_number(tiny_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text("")
    tiny_config["models"]["own"] = {"source": "py:model.py:build", "modality": "vision",
                                    "options": {"clip": float("inf")}}
    assert Config(tiny_config).embed_params("own")["options"] == {"clip": float("inf")}


def test_alpha_below_the_smallest_p_value_is_refused(tiny_config):
    tiny_config["calibration"] = {"alpha": 0.01, "n_permutations": 20}
    msg = _refused(tiny_config)
    assert msg.startswith("config: calibration.alpha: 0.01 is below "
                          "1/(calibration.n_permutations + 1) = 1/21")
    assert "calibration.n_permutations to at least 99" in msg
    tiny_config["calibration"]["n_permutations"] = 99
    Config(tiny_config)
    # the sample-size curve's own nulls
    tiny_config["calibration"].update(sample_sizes=[24], sample_size_permutations=50)
    assert "calibration.sample_size_permutations to at least 99" in _refused(tiny_config)
    # uncalibrated: alpha is not used, nothing to refuse
    tiny_config["calibration"] = {"enabled": False, "alpha": 0.01, "n_permutations": 20}
    Config(tiny_config)


@pytest.mark.parametrize("alpha", [0.5, 0.1, 1 / 21, 0.05, 0.01, 0.003, 0.001, 1e-4])
def test_min_permutations_is_the_fewest_that_reach_alpha(alpha):
    k = min_permutations(alpha)
    assert 1 / (k + 1) <= alpha < 1 / k


def test_topk_is_checked_against_every_sample_size(tiny_config):
    tiny_config["metrics"]["mutual_knn"] = {"topk": 10}
    tiny_config["calibration"] = {"sample_sizes": [24, 8], "sample_size_metrics": ["mutual_knn"]}
    msg = _refused(tiny_config)
    assert msg.startswith("config: metrics.mutual_knn.topk: 10 needs more than "
                          "calibration.sample_sizes[1]=8 samples (at least 11)")
    # a metric the curve does not score may need more than its sizes
    tiny_config["calibration"]["sample_size_metrics"] = ["cka"]
    Config(tiny_config)
    # SVCCA's cca_dim, CKNNA's k alike
    tiny_config["metrics"]["svcca"] = {"cca_dim": 10}
    tiny_config["calibration"]["sample_size_metrics"] = ["svcca"]
    assert "metrics.svcca.cca_dim: 10 needs more than calibration.sample_sizes[1]=8" in \
        _refused(tiny_config)
    tiny_config["metrics"]["cknna"] = {"topk": 8}
    tiny_config["calibration"]["sample_size_metrics"] = ["cknna"]
    assert "metrics.cknna.topk: 8 needs more than calibration.sample_sizes[1]=8" in \
        _refused(tiny_config)


def test_statistics_groups_need_as_many_samples(tiny_config):
    # CKA's jackknife has 20 groups: 12 samples cannot make them
    tiny_config["datasets"]["emoji"]["n_samples"] = 12
    tiny_config["calibration"] = {"metrics": ["cka"]}
    msg = _refused(tiny_config)
    assert msg.startswith("config: calibration.interval_method: auto gives cka a jackknife of "
                          "20 groups, more than datasets.emoji.n_samples=12 samples")
    tiny_config["calibration"]["interval_method"] = "subsample"
    Config(tiny_config)


def test_statistics_resamples_keep_enough_samples_for_each_metric(tiny_config):
    # topk 10 fits 16 samples, but not the 8 of a half-sample
    tiny_config["datasets"]["emoji"]["n_samples"] = 16
    tiny_config["metrics"] = {"mutual_knn": {"topk": 10}, "cka": {}}
    tiny_config["calibration"] = {"metrics": ["mutual_knn"], "interval_method": "subsample"}
    msg = _refused(tiny_config)
    assert msg.startswith("config: metrics.mutual_knn.topk: 10 needs more than the 8 samples "
                          "each subsample resample (calibration.interval_method: subsample) "
                          "keeps of datasets.emoji.n_samples=16 (at least 11)")
    # the jackknife's 5 groups keep 16 - 4 = 12
    tiny_config["calibration"]["interval_method"] = "auto"
    Config(tiny_config)
    # not calibrated: no statistics job, no resamples
    tiny_config["calibration"] = {"metrics": ["cka"], "interval_method": "subsample"}
    Config(tiny_config)


@pytest.mark.parametrize("n", [4, 12, 16, 21, 48, 60, 1024])
@pytest.mark.parametrize("method", ["jackknife", "subsample"])
@pytest.mark.parametrize("metric", ["cka", "mutual_knn"])
def test_smallest_resample_is_what_the_statistics_job_draws(n, method, metric):
    from prh.calibration import resample_indices

    scheme, count = interval_scheme(metric, method)
    if scheme == "jackknife" and count > n:
        return
    sets = resample_indices(n, scheme, count, seed=3)
    assert min(len(s) for s in sets) == smallest_resample(n, scheme, count)


def test_fewest_samples_follow_the_metrics_own_checks():
    from prh.metrics import resolve_params

    for name, params in [("mutual_knn", {"topk": 7}), ("cknna", {"topk": 3}),
                         ("unbiased_cka", {}), ("svcca", {"cca_dim": 6}), ("cka", {})]:
        need = max(get_metric(name).fewest_samples(**params).values())
        resolve_params(name, params, n=need)
        with pytest.raises(ValueError):
            resolve_params(name, params, n=need - 1)


def test_calibration_with_no_pair_to_calibrate_is_refused(tiny_config):
    tiny_config["models"].pop("efficientnet_lite0")
    tiny_config["calibration"] = {"enabled": True}
    msg = _refused(tiny_config)
    assert msg.startswith("config: calibration.pairs: cross_modal calibrates no pair: every "
                          "model is language")
    tiny_config["calibration"]["pairs"] = "all"
    Config(tiny_config)


def test_data_dependent_parameters_are_checked_at_config_time(tiny_config):
    tiny_config["metrics"]["mutual_knn"] = {"topk": 48}
    with pytest.raises(ConfigError, match="metrics.mutual_knn.topk: 48 needs more than "
                                          "datasets.emoji.n_samples=48"):
        Config(tiny_config)
    tiny_config["metrics"]["mutual_knn"] = {"topk": 5}
    tiny_config["calibration"] = {"sample_sizes": [16, 64]}
    with pytest.raises(ConfigError, match="calibration.sample_sizes: \\[64\\] exceed"):
        Config(tiny_config)


# --- the start of the pair and statistics steps: calibration.blocks ---------------

N = 40


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Layer caches of two models on N samples and manifests whose block
    columns give one block (image), four (image_sha256) or one big block
    and eight singletons (caption)."""
    from file_factories import write_layer_cache
    from prh.datasets import Manifest, Sample

    d = tmp_path_factory.mktemp("blocks")
    rng = np.random.default_rng(0)
    ids = [f"s{i:02d}" for i in range(N)]
    paths = {}
    for name in ("x", "y"):
        layers = [rng.standard_normal((N, 8)).astype(np.float32) for _ in range(2)]
        paths[name] = write_layer_cache(d / f"{name}.h5", layers, topk=[10], sample_ids=ids)
    samples = [Sample(i, "big" if k < 32 else f"caption {k}", str(d / "one.png"),
                      f"sha{k % 4}") for k, i in enumerate(ids)]
    manifest = d / "manifest.json"
    Manifest("toy", samples).save(manifest)
    return d, paths, manifest


CALIBRATION = {"n_permutations": 20, "alpha": 0.05, "seed": 0, "aggregates": ["max"],
               "metrics": ["mutual_knn"]}


def test_a_single_block_stops_the_pair_step_naming_blocks(files, tmp_path):
    from prh.steps.pair_scores import run

    d, paths, manifest = files
    out = tmp_path / "pair.h5"
    with pytest.raises(ValueError) as err:
        run(paths["x"], paths["y"], out, metrics={"mutual_knn": {"topk": 10}}, model_x="x",
            model_y="y", device="cpu", calibration={**CALIBRATION, "blocks": "image"},
            manifest=manifest)
    msg = str(err.value)
    assert msg.startswith("calibration.blocks: manifest column 'image' gives 1 block(s)")
    assert "allows 1 distinct order(s)" in msg and "needs at least 20" in msg
    assert not out.exists()
    # four blocks of ten: 4! = 24 orders, enough for alpha 0.05 but not for 0.01
    run(paths["x"], paths["y"], out, metrics={"mutual_knn": {"topk": 10}}, model_x="x",
        model_y="y", device="cpu", calibration={**CALIBRATION, "blocks": "image_sha256"},
        manifest=manifest)
    assert out.is_file()
    with pytest.raises(ValueError, match="allows 24 distinct order.*needs at least 100"):
        run(paths["x"], paths["y"], tmp_path / "p2.h5", metrics={"mutual_knn": {"topk": 10}},
            model_x="x", model_y="y", device="cpu",
            calibration={**CALIBRATION, "blocks": "image_sha256", "alpha": 0.01,
                         "n_permutations": 200}, manifest=manifest)


def _statistics(files, tmp_path, **over):
    from prh.steps.statistics import run

    d, paths, manifest = files
    kw = dict(dataset="toy", out_intervals=tmp_path / "i.tsv",
              out_comparisons=tmp_path / "c.tsv", out_trend=tmp_path / "t.tsv",
              metrics={"mutual_knn": {"topk": 10}}, pairs=[("x", "y")], comparisons=[],
              trend=False, aggregates=["max"], method="auto", level=0.95, seed=0,
              blocks="image", modalities={}, competence={}, manifest=manifest)
    run(paths, **{**kw, **over})


def test_too_few_blocks_stop_the_statistics_step_naming_blocks(files, tmp_path):
    with pytest.raises(ValueError) as err:
        _statistics(files, tmp_path)
    assert str(err.value).startswith(
        "calibration.blocks: manifest column 'image' gives 1 block(s), fewer than the "
        "5 that mutual_knn's jackknife needs (calibration.interval_method: auto)")
    with pytest.raises(ValueError, match="gives 4 block.*the 20 that cka's jackknife needs"):
        _statistics(files, tmp_path, blocks="image_sha256", metrics={"cka": {}})
    assert not (tmp_path / "i.tsv").exists()
    # half-samples of four blocks: two blocks, 20 samples, enough for k = 10
    _statistics(files, tmp_path, blocks="image_sha256", method="subsample")
    assert (tmp_path / "i.tsv").is_file()


def test_uneven_blocks_whose_resamples_keep_too_few_samples_stop_the_statistics_step(
        files, tmp_path):
    # nine blocks make five jackknife groups, but leaving out the block of 32
    # keeps 8 samples or fewer: too few for k = 10
    with pytest.raises(ValueError) as err:
        _statistics(files, tmp_path, blocks="caption")
    msg = str(err.value)
    assert msg.startswith("calibration.blocks: manifest column 'caption' gives 9 blocks "
                          "so uneven that a jackknife resample of them keeps only ")
    assert "mutual_knn (topk=10) needs 11" in msg
    assert not (tmp_path / "i.tsv").exists()


def test_the_jobs_that_check_blocks_do_not_depend_on_the_config_code():
    # editing the config package must not rerun every pair and statistics job
    from pathlib import Path

    from prh.imports import library_files

    repo = Path(__file__).resolve().parents[1]
    for script in ("pair_scores.py", "pair_block.py", "statistics.py"):
        files = {Path(f).relative_to(repo).as_posix()
                 for f in library_files(str(repo / "scripts" / script), str(repo))}
        assert "prh/calibration_checks.py" in files
        assert not [f for f in files if f.startswith("prh/config")], script
