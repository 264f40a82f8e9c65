"""prh.config.plan: the pairs, calibrated pairs, layer cache contents, comparisons,
scorecards and stale groups the rules are given."""

from __future__ import annotations

import pytest

from prh.config import Config, ConfigError


def test_pairs_cross_modal_and_calibration(tiny_config):
    cfg = Config(tiny_config)
    assert cfg.pairs() == [("efficientnet_lite0", "glove_6b_50d"),
                           ("efficientnet_lite0", "minilm_l6"), ("glove_6b_50d", "minilm_l6")]
    assert cfg.calibration_params("efficientnet_lite0", "minilm_l6") == {}
    tiny_config["calibration"] = {"n_permutations": 30}
    tiny_config["alignment"] = {"pairs": "cross_modal"}
    cfg = Config(tiny_config)
    assert cfg.pairs() == [("efficientnet_lite0", "glove_6b_50d"),
                           ("efficientnet_lite0", "minilm_l6")]
    assert cfg.calibration_params("efficientnet_lite0", "minilm_l6") == {
        "n_permutations": 30, "alpha": 0.05, "seed": 0, "aggregates": ["max"],
        "blocks": None, "metrics": ["mutual_knn", "cycle_knn", "cka"]}
    tiny_config["models"] = {"a": {"source": "glove_6b_50d"}, "b": {"source": "minilm_l6"}}
    with pytest.raises(ConfigError, match="alignment.pairs: no model pairs"):
        Config(tiny_config)


def test_layer_cache_params_hold_every_k_and_cca_dim(tiny_config):
    tiny_config["metrics"] = {"mutual_knn": {"topk": 5}, "cknna": None, "svcca": {"cca_dim": 3},
                              "cka": None}
    p = Config(tiny_config).layer_cache_params()
    assert p["topk"] == [5, 10] and p["cca_dims"] == [3] and p["layers"] is False
    tiny_config["calibration"] = {"metrics": ["cka"]}
    assert Config(tiny_config).layer_cache_params()["layers"] is False
    tiny_config["calibration"] = {"metrics": ["svcca"]}
    # the statistics job resamples SVCCA, whose bases need the layers
    assert Config(tiny_config).layer_cache_params()["layers"] is True


def test_calibration_metrics_choose_what_gets_a_null(tiny_config):
    tiny_config["calibration"] = {"metrics": ["cka", "mutual_knn"]}
    cfg = Config(tiny_config)
    assert cfg.calibrated_metrics() == ["mutual_knn", "cka"]  # the metrics block's order
    assert cfg.calibration_params("efficientnet_lite0", "minilm_l6")["metrics"] == [
        "mutual_knn", "cka"]
    tiny_config["calibration"] = {"metrics": ["svcca"]}
    with pytest.raises(ConfigError, match="calibration.metrics: 'svcca' is not a configured"):
        Config(tiny_config)
    tiny_config["calibration"] = {}
    assert Config(tiny_config).calibrated_metrics() == ["mutual_knn", "cycle_knn", "cka"]


def test_statistics_compare_every_two_models_of_a_modality_against_each_partner(tiny_config):
    tiny_config["models"]["efficientnet_lite1"] = {"source": "efficientnet_lite1"}
    tiny_config["calibration"] = {"enabled": True}
    cfg = Config(tiny_config)
    vision, language = ["efficientnet_lite0", "efficientnet_lite1"], ["minilm_l6", "glove_6b_50d"]
    # config order: minilm_l6 before glove_6b_50d gives MiniLM minus GloVe
    assert cfg.comparisons() == (
        [((vision[0], c), (vision[1], c)) for c in language]
        + [((language[0], v), (language[1], v)) for v in vision])
    p = cfg.statistics_params()
    # every calibrated pair: cross-modal ones (calibration.pairs' default)
    assert p["pairs"] == [list(x) for x in cfg.pairs() if cfg.cross_modal(*x)]
    assert len(p["pairs"]) == 4 and len(cfg.pairs()) == 6
    assert set(p["metrics"]) == {"mutual_knn", "cycle_knn", "cka"} and p["trend"] is True
    assert cfg.statistics_models() == cfg.models
    assert "results/emoji/statistics/comparisons.tsv" in cfg.align_targets("emoji")
    # a change of the resamples' settings is a params change of the statistics job only
    assert "interval_method" not in cfg.calibration_params(vision[0], language[0])
    tiny_config["calibration"]["comparisons"] = [[[vision[1], language[1]],
                                                  [vision[0], language[1]]]]
    assert Config(tiny_config).comparisons() == [((vision[1], language[1]),
                                                  (vision[0], language[1]))]
    tiny_config["calibration"]["comparisons"] = [[[vision[0], vision[1]],
                                                  [vision[0], language[1]]]]
    with pytest.raises(ConfigError, match="calibration.comparisons: efficientnet_lite0 x "
                                          "efficientnet_lite1 is not a calibrated pair"):
        Config(tiny_config)
    tiny_config["calibration"]["comparisons"] = "none"
    assert Config(tiny_config).comparisons() == []
    # no calibration: no statistics targets
    tiny_config["calibration"] = {"enabled": False}
    assert not any("statistics" in t for t in Config(tiny_config).align_targets("emoji"))


def test_auto_comparisons_of_a_big_zoo_ask_for_a_list(tiny_config):
    # 24 vision and 24 language models: 2 x C(24, 2) x 24 = 13,248 comparisons
    tiny_config["models"] = {
        **{f"v{i}": {"source": "efficientnet_lite0"} for i in range(24)},
        **{f"l{i}": {"source": "glove_6b_50d"} for i in range(24)}}
    tiny_config["calibration"] = {"enabled": True}
    tiny_config["plots"] = {"layer_pairs": "none"}
    with pytest.raises(ConfigError, match="calibration.comparisons: auto would test 13248"):
        Config(tiny_config)
    tiny_config["calibration"]["comparisons"] = "none"
    assert Config(tiny_config).comparisons() == []


def test_scorecard_partners_are_the_models_pairs(tiny_config):
    cfg = Config(tiny_config)
    assert cfg.scorecard_pairs("minilm_l6") == [("efficientnet_lite0", "minilm_l6"),
                                                 ("glove_6b_50d", "minilm_l6")]
    tiny_config["alignment"] = {"pairs": "cross_modal"}
    cfg = Config(tiny_config)
    assert cfg.scorecard_pairs("minilm_l6") == [("efficientnet_lite0", "minilm_l6")]
    assert cfg.scorecard_pairs("efficientnet_lite0") == cfg.pairs()
    assert cfg.scorecard_targets("emoji")[:2] == ["results/emoji/scorecards/efficientnet_lite0.tsv",
                                                  "results/emoji/scorecards/efficientnet_lite0.png"]
    with pytest.raises(ConfigError, match="'nope' is not a configured model"):
        cfg.scorecard_pairs("nope")
    assert cfg.scorecard_params()["modalities"]["minilm_l6"] == "language"


def test_stale_groups_cascade_in_dependency_order(tiny_config):
    groups = Config(tiny_config).stale_groups()
    keys = list(groups)
    assert keys.index("results/emoji/layer_cache/minilm_l6.h5") < keys.index(
        "results/emoji/pairs/glove_6b_50d__minilm_l6.h5") < keys.index("emoji alignment")
    outputs, sources = groups["emoji alignment"]
    assert "results/emoji/alignment.tsv" in outputs and len(sources) == 3
