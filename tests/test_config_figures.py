"""prh.config.figures: which figures exist, their names, files and targets."""

from __future__ import annotations

import pytest

from prh.config import Config, ConfigError


def test_figures_names_and_files(tiny_config):
    cfg = Config(tiny_config)
    names = [f.name for f in cfg.figures()]
    assert names[:3] == ["heatmap_mutual_knn", "heatmap_cycle_knn", "heatmap_cka"]
    assert "competence_mutual_knn" in names and "metric_agreement" in names
    assert "efficientnet_lite0__minilm_l6/mutual_knn" in names  # cross-modal layer figures
    assert not any("sample_size" == n or "calibrated" in n for n in names)
    tiny_config["calibration"] = {"sample_sizes": [16, 48]}
    tiny_config["plots"] = {"formats": ["svg"], "layer_pairs": "none"}
    cfg = Config(tiny_config)
    assert cfg.figure_params("heatmaps")["heatmap_cka_calibrated"] == {"metric": "cka",
                                                                       "calibrated": True}
    assert cfg.figures("layer_heatmaps") == []
    (fig,) = cfg.figures("sample_size_plot")
    assert cfg.figure_files("emoji", fig) == ["results/emoji/plots/sample_size.svg"]
    assert cfg.report_format == "svg"
    assert "results/emoji/report/aggregates.tsv" in cfg.plot_targets("emoji")
    tiny_config["plots"] = {"layer_pairs": [["minilm_l6", "nope"]]}
    with pytest.raises(ConfigError, match="plots.layer_pairs: unknown model 'nope'"):
        Config(tiny_config)
    tiny_config["plots"] = {"competence_metric": "svcca"}
    with pytest.raises(ConfigError, match="plots.competence_metric: 'svcca' is not a configured"):
        Config(tiny_config)
