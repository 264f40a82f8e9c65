"""alignment.representation: the auto rule, what the layer_cache jobs are told,
and the metrics refused where the caches hold the features."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prh.config import Config, ConfigError
from prh.config.representation import (AUTO_DENSE_MAX_N, auto_representation,
                                       resolve_representation)
from prh.metric_info import get_metric, list_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_auto_is_dense_up_to_the_threshold_or_the_width_then_features():
    assert auto_representation(1024, 50) == "dense"
    assert auto_representation(AUTO_DENSE_MAX_N, 64) == "dense"
    assert auto_representation(AUTO_DENSE_MAX_N + 1, 64) == "features"
    assert auto_representation(10**5, 64) == "features"
    # N at most every model's width: the Gram matrix is no larger than the features
    assert auto_representation(8192, 8192) == "dense"
    assert auto_representation(8193, 8192) == "features"
    assert resolve_representation("dense", 10**6, 64) == "dense"
    assert resolve_representation("features", 10, 64) == "features"
    with pytest.raises(ValueError, match="choose one of auto, dense, features"):
        resolve_representation("sparse", 10, 64)


def test_the_default_config_stays_dense_with_unchanged_layer_cache_params():
    cfg = Config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert cfg.alignment["representation"] == "auto"
    for d in cfg.datasets:
        assert cfg.representation(d) == "dense"
        assert cfg.layer_cache_params(d) == cfg.layer_cache_params()
        assert "representation" not in cfg.layer_cache_params(d)


def test_the_narrowest_model_width_decides(tiny_config):
    # widths: GloVe 50, MiniLM 384, EfficientNet-Lite0's widest 1280
    tiny_config["datasets"]["emoji"]["n_samples"] = 6000
    assert Config(tiny_config).representation("emoji") == "features"
    for m in tiny_config["models"].values():
        m["width"] = 8192
    assert Config(tiny_config).representation("emoji") == "dense"
    tiny_config["alignment"] = {"representation": "features"}
    tiny_config["datasets"]["emoji"]["n_samples"] = 48
    cfg = Config(tiny_config)
    assert cfg.representation("emoji") == "features"
    assert cfg.layer_cache_params("emoji")["representation"] == "features"


@pytest.mark.parametrize("metric,params,why", [
    ("rsa_pearson", None, "the correlation of the RDMs"),
    ("rsa_spearman", {"distance": "euclidean"}, "the correlation of the RDMs"),
    ("ridge_r2", None, "N x N inverse per layer"),
    ("cka", {"kernel": "rbf"}, "RBF kernel"),
    ("unbiased_cka", {"kernel": "rbf", "sigma": 0.5}, "RBF kernel"),
])
def test_n_by_n_metrics_are_refused_where_the_caches_hold_features(tiny_config, metric,
                                                                   params, why):
    tiny_config["metrics"][metric] = params
    tiny_config["datasets"]["emoji"]["n_samples"] = 20000
    with pytest.raises(ConfigError) as err:
        Config(tiny_config)
    msg = str(err.value)
    assert msg.startswith(f"config: metrics.{metric}: needs N x N (")
    assert why in msg
    assert msg.endswith("which alignment.representation: features does not hold at "
                        "datasets.emoji.n_samples=20000; drop the metric, or use "
                        "alignment.representation: dense")
    assert "\n" not in msg
    tiny_config["alignment"] = {"representation": "dense"}
    assert Config(tiny_config).representation("emoji") == "dense"


def test_every_other_metric_has_a_feature_space_form(tiny_config):
    refused = {m for m in list_metrics() if get_metric(m).needs_n_by_n()}
    assert refused == {"rsa_pearson", "rsa_spearman", "ridge_r2"}
    assert get_metric("cka").needs_n_by_n(kernel="rbf")
    assert get_metric("cka").needs_n_by_n(kernel="ip") == ""
    tiny_config["metrics"] = {m: None for m in list_metrics() if m not in refused}
    tiny_config["metrics"]["svcca"] = {"cca_dim": 4}
    tiny_config["metrics"]["pwcca"] = {"pca_dim": 4}
    tiny_config["alignment"] = {"representation": "features"}
    assert Config(tiny_config).representation("emoji") == "features"


def test_features_layer_caches_keep_wider_lists_for_the_resampled_knn_metrics(tiny_config):
    from prh.config.representation import SUBSET_TOPK_FACTOR, subset_topk

    tiny_config["alignment"] = {"representation": "features"}
    # mutual_knn and cycle_knn (topk 5) calibrated: the statistics job resamples them
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 20}
    cfg = Config(tiny_config)
    assert cfg.layer_cache_params("emoji")["subset_topk"] == [SUBSET_TOPK_FACTOR * 5]
    tiny_config["calibration"]["metrics"] = ["cka"]  # the CKAs read no lists
    assert "subset_topk" not in Config(tiny_config).layer_cache_params("emoji")
    # the curve alone resamples mutual_knn
    tiny_config["calibration"].update({"sample_sizes": [24, 48],
                                       "sample_size_metrics": ["mutual_knn"]})
    assert Config(tiny_config).layer_cache_params("emoji")["subset_topk"] == [15]
    tiny_config["alignment"] = {"representation": "dense"}
    assert "subset_topk" not in Config(tiny_config).layer_cache_params("emoji")
    assert subset_topk(10, 1000) == 30
    assert subset_topk(10, 20) == 19  # at most N - 1
    assert subset_topk(10, 11) is None  # nothing wider than k fits


@pytest.mark.slow
def test_a_features_run_scores_what_a_dense_run_scores(ids_run, tmp_path):
    """The same ids dataset and file: models through Snakemake in both
    representations (the dense one is the ``ids_run`` fixture): alignment.tsv,
    the intervals and the sample-size curve agree, the kNN metrics exactly and
    CKA to 1e-6."""
    import csv

    import h5py

    from file_workflow import D as OUT, ids_workflow
    from workflow_helpers import smk, write_config

    targets = [f"{OUT}/{t}" for t in ("alignment.tsv", "sample_size.tsv",
                                      "statistics/intervals.tsv")]
    wd = ids_workflow(tmp_path / "features")
    config = yaml.safe_load((wd / "config.yaml").read_text())
    config["alignment"]["representation"] = "features"
    write_config(wd, config)
    smk(wd, *targets)
    tables = {}
    for rep, run in (("dense", ids_run), ("features", wd)):
        with h5py.File(run / OUT / "layer_cache" / "vis_a.h5") as f:
            assert f.attrs.get("representation", "dense") == rep
            assert ("knn/k15" in f) == (rep == "features")  # the wide lists, 3 x topk 5
        tables[rep] = {}
        for t in targets:
            with open(run / t) as fh:
                tables[rep][t] = list(csv.DictReader(fh, delimiter="\t"))
    for t in targets:
        dense, feats = tables["dense"][t], tables["features"][t]
        assert len(dense) == len(feats) > 0, t
        for a, b in zip(dense, feats):
            assert a.keys() == b.keys()
            for key, want in a.items():
                if a["metric"] == "cka" and key in ("score", "se", "low", "high", "calibrated",
                                                     "null_mean", "null_std", "tau"):
                    if want:
                        assert float(b[key]) == pytest.approx(float(want), abs=1e-6), (t, key)
                else:
                    assert b[key] == want, (t, a["metric"], key)
