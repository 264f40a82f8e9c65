"""prh.config: validation, defaults and every decision the rules read."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import yaml

from prh import config as C
from prh.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_filled_from_the_schema(tiny_config):
    cfg = Config(tiny_config)
    assert cfg.model("minilm_l6")["batch_size"] == C.schema_defaults("embedding", "batch_size")
    assert cfg.alignment["q"] == 0.95 and cfg.alignment["device"] == "cpu"
    assert not cfg.calibrated
    tiny_config["embedding"] = {"batch_size": 8}
    tiny_config["models"]["glove_6b_50d"]["batch_size"] = 4
    cfg = Config(tiny_config)
    assert cfg.model("minilm_l6")["batch_size"] == 8
    assert cfg.model("glove_6b_50d")["batch_size"] == 4
    assert cfg.model("minilm_l6")["device"] == "cpu"  # schema default under a partial block


def test_every_schema_default_is_valid_and_each_setting_has_one_home():
    schema = C.load_schema()
    # a config of only the required keys validates once the defaults are in
    Config({"datasets": {"d": {"source": "emoji", "n_samples": 16}},
            "models": {"a": {"source": "glove_6b_50d"}, "b": {"source": "efficientnet_lite0"}},
            "metrics": {"cka": None}})
    # the library API's defaults agree with the workflow's (pypsa-eur style check)
    from prh.calibration import calibrate_pair, sample_size_curve

    sig = inspect.signature(calibrate_pair).parameters
    for key in ("n_permutations", "alpha", "seed"):
        assert sig[key].default == C.schema_defaults("calibration", key), key
    from prh.calibration import pair_replicates, trend_rows

    assert (inspect.signature(pair_replicates).parameters["method"].default
            == C.schema_defaults("calibration", "interval_method"))
    assert (inspect.signature(trend_rows).parameters["level"].default
            == C.schema_defaults("calibration", "interval_level"))
    assert (inspect.signature(sample_size_curve).parameters["n_permutations"].default
            == C.schema_defaults("calibration", "sample_size_permutations"))
    from prh.embed import embed

    sig = inspect.signature(embed).parameters
    for api, key in (("batch_size", "batch_size"), ("device", "device"),
                     ("dtype", "storage_dtype"), ("model_dtype", "dtype"), ("pool", "pool")):
        assert sig[api].default == C.schema_defaults("embedding", key), key
    # config.yaml's embedding block holds no value that merely repeats a default
    with open(REPO / "config.yaml") as fh:
        default_run = yaml.safe_load(fh)
    for block in ("embedding", "alignment", "calibration", "plots"):
        for key, value in (default_run.get(block) or {}).items():
            if block == "calibration" and key == "enabled":
                continue  # the block's own default is off: enabled says it is on
            assert value != C.schema_defaults(block, key), f"{block}.{key} repeats its default"
    # model entries share the embedding settings' definition but no defaults,
    # so a model's own keys override the embedding block and nothing else
    assert not any("default" in p for p in schema["$defs"]["embedding_settings"]["properties"].values())


@pytest.mark.parametrize("change, words", [
    (lambda c: c["models"]["minilm_l6"].update(modality="audio"), ["models.minilm_l6.modality", "audio"]),
    (lambda c: c.update(colour="blue"), ["(top level)", "colour"]),
    (lambda c: c["metrics"].update(cka={"kernel": "linear"}), ["metrics.cka.kernel", "linear"]),
    (lambda c: c["metrics"].update(mutual_knn={"topk": 0}), ["metrics.mutual_knn.topk"]),
    (lambda c: c["models"].update(bad__name={"source": "glove_6b_50d"}), ["bad__name"]),
    # the biased percentile bootstrap is gone; its key names itself
    (lambda c: c.update(calibration={"n_boot": 200}), ["calibration", "n_boot"]),
    (lambda c: c.update(calibration={"blocks": "colour"}), ["calibration.blocks", "colour"]),
])
def test_schema_errors_are_one_line_and_name_the_key(tiny_config, change, words):
    change(tiny_config)
    with pytest.raises(ConfigError) as err:
        Config(tiny_config)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("config: ")
    for w in words:
        assert w in msg


@pytest.mark.parametrize("source, declared, truth", [
    ("hf:org/some-lm", "vision", "language"),
    ("timm:resnet18", "language", "vision"),
    ("efficientnet_lite1", "language", "vision"),
])
def test_every_source_fixes_its_modality(tiny_config, source, declared, truth):
    tiny_config["models"]["x"] = {"source": source, "modality": declared}
    with pytest.raises(ConfigError, match=f"models.x.modality: {source} is a {truth} model"):
        Config(tiny_config)
    tiny_config["models"]["x"] = {"source": source}
    assert Config(tiny_config).modality("x") == truth


def test_unknown_source_names_the_model_and_lists_known(tiny_config):
    tiny_config["models"]["minilm_l6"]["source"] = "minilm_l7"
    with pytest.raises(ConfigError, match="models.minilm_l6.source: unknown model 'minilm_l7'; "
                                          "known: .*timm:<name>"):
        Config(tiny_config)


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


def test_stats_params_hold_every_k_and_cca_dim(tiny_config):
    tiny_config["metrics"] = {"mutual_knn": {"topk": 5}, "cknna": None, "svcca": {"cca_dim": 3},
                              "cka": None}
    p = Config(tiny_config).stats_params()
    assert p["topk"] == [5, 10] and p["cca_dims"] == [3] and p["layers"] is False
    tiny_config["calibration"] = {"metrics": ["cka"]}
    assert Config(tiny_config).stats_params()["layers"] is False
    tiny_config["calibration"] = {"metrics": ["svcca"]}
    # the statistics job resamples SVCCA, whose bases need the layers
    assert Config(tiny_config).stats_params()["layers"] is True


def test_data_dependent_parameters_are_checked_at_config_time(tiny_config):
    tiny_config["metrics"]["mutual_knn"] = {"topk": 48}
    with pytest.raises(ConfigError, match="metrics.mutual_knn.topk: 48 needs more than "
                                          "datasets.emoji.n_samples=48"):
        Config(tiny_config)
    tiny_config["metrics"]["mutual_knn"] = {"topk": 5}
    tiny_config["calibration"] = {"sample_sizes": [16, 64]}
    with pytest.raises(ConfigError, match="calibration.sample_sizes: \\[64\\] exceed"):
        Config(tiny_config)


def test_alignment_device_auto_is_accepted_and_resolves():
    from prh.devices import resolve_device

    assert str(resolve_device("auto", accelerators=("cuda",))) in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("tpu")


def test_embed_params_and_resources(tiny_config):
    tiny_config["models"]["minilm_l6"].update(threads=3, mem_mb=9000, device="cuda")
    cfg = Config(tiny_config)
    assert set(cfg.embed_params("minilm_l6")) == set(C.EMBED_RESULT_KEYS)
    assert cfg.embed_params("minilm_l6")["modality"] == "language"
    assert cfg.embed_resources("minilm_l6") == {"threads": 3, "mem_mb": 9000, "runtime": 60,
                                                 "gpu": 1}
    assert cfg.embed_resources("glove_6b_50d")["gpu"] == 0


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


def test_shipped_configs_are_valid():
    for path in (REPO / "config.yaml", REPO / "config" / "paper.yaml"):
        with open(path) as fh:
            Config(yaml.safe_load(fh))


def test_building_the_config_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, yaml; from prh.config import Config; "
            f"Config(yaml.safe_load(open({str(REPO / 'config.yaml')!r}))); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_untrained_baselines_in_the_config(tiny_config):
    tiny_config["models"]["lite0_untrained"] = {"source": "efficientnet_lite0", "weights": "random"}
    cfg = Config(tiny_config)
    assert cfg.embed_params("lite0_untrained")["weights"] == "random"
    assert cfg.embed_params("lite0_untrained")["seed"] == 0
    assert "weights" not in cfg.embed_params("efficientnet_lite0")  # no rerun of trained models
    tiny_config["models"]["glove_untrained"] = {"source": "glove_6b_50d", "weights": "random"}
    with pytest.raises(ConfigError, match="models.glove_untrained.weights: random .* is for "
                                          "vision models"):
        Config(tiny_config)


def test_command_line_strings_are_read_as_the_schema_wants(tiny_config):
    # what Snakemake passes for --config 'plots={"dpi": 100}' and similar
    tiny_config.update(plots={"dpi": "100", "formats": ["png"]},
                       calibration={"enabled": "true", "sample_sizes": ["16", "48"]},
                       alignment={"q": "0.9"})
    cfg = Config(tiny_config)
    assert cfg.plots["dpi"] == 100 and cfg.plot_formats == ["png"]
    assert cfg.calibration["sample_sizes"] == [16, 48] and cfg.alignment["q"] == 0.9
    tiny_config["plots"]["dpi"] = "high"
    with pytest.raises(ConfigError, match="plots.dpi: 'high' is not of type 'integer'"):
        Config(tiny_config)


def test_stale_groups_cascade_in_dependency_order(tiny_config):
    groups = Config(tiny_config).stale_groups()
    keys = list(groups)
    assert keys.index("results/emoji/stats/minilm_l6.h5") < keys.index(
        "results/emoji/pairs/glove_6b_50d__minilm_l6.h5") < keys.index("emoji alignment")
    outputs, sources = groups["emoji alignment"]
    assert "results/emoji/alignment.tsv" in outputs and len(sources) == 3


# --- a user's own features and models, the scorecard ---------------------------


def test_user_sources_take_their_modality_and_paths_from_the_config(tiny_config, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.npz").write_bytes(b"")
    (tmp_path / "model.py").write_text("")
    (tmp_path / "w.pth").write_bytes(b"")
    models = tiny_config["models"]
    models["mine"] = {"source": "file:mine.npz", "modality": "language",
                      "layer_names": ["a", "b"]}
    models["own"] = {"source": "py:model.py:build", "modality": "vision",
                     "weights": "w.pth", "options": {"arch": "resnet18"}}
    cfg = Config(tiny_config)
    assert cfg.modality("mine") == "language" and cfg.modality("own") == "vision"
    assert cfg.embed_params("mine")["layer_names"] == ["a", "b"]
    own = cfg.embed_params("own")
    assert own["weights"] == "w.pth" and own["options"] == {"arch": "resnet18"}
    assert "seed" not in own
    assert cfg.embed_inputs("mine") == ["mine.npz"]
    assert cfg.embed_inputs("own") == ["model.py", "w.pth"]
    assert cfg.embed_inputs("minilm_l6") == []
    # models that existed before keep exactly their params (no rerun)
    assert set(cfg.embed_params("minilm_l6")) == set(C.EMBED_RESULT_KEYS)


@pytest.mark.parametrize("entry, words", [
    ({"source": "file:mine.npz"}, "models.m.source: file:mine.npz: a file: source needs "
                                  "`modality: vision`"),
    ({"source": "file:gone.npz", "modality": "vision"}, "models.m.source: gone.npz does not exist"),
    ({"source": "py:model.py:build", "modality": "vision", "weights": "gone.pth"},
     "models.m.weights: gone.pth does not exist"),
    ({"source": "minilm_l6", "weights": "w.pth"},
     "models.m.weights: a weights path is for timm:, hf: and py: sources, not minilm_l6"),
    ({"source": "py:model.py:build", "modality": "vision", "weights": "random"},
     "models.m.weights: random (an untrained baseline) is for vision models prh builds"),
    ({"source": "minilm_l6", "layer_names": ["a"]},
     "models.m.layer_names: only file: sources take it, not minilm_l6"),
    ({"source": "file:mine.npz", "modality": "vision", "options": {"a": 1}},
     "models.m.options: only py: sources take it"),
])
def test_bad_user_sources_stop_at_config_time(tiny_config, tmp_path, monkeypatch, entry, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.npz").write_bytes(b"")
    (tmp_path / "model.py").write_text("")
    (tmp_path / "w.pth").write_bytes(b"")
    tiny_config["models"]["m"] = entry
    with pytest.raises(ConfigError) as err:
        Config(tiny_config)
    assert words in str(err.value) and "\n" not in str(err.value)


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


def test_model_layers_from_n_layers_registry_or_default(tiny_config):
    tiny_config["models"]["hub"] = {"source": "hf:some/llm"}
    tiny_config["models"]["vit"] = {"source": "timm:vit_tiny_patch16_224", "n_layers": 12}
    cfg = Config(tiny_config)
    assert cfg.model_layers("efficientnet_lite0") == 18 and cfg.model_layers("glove_6b_50d") == 1
    assert cfg.model_layers("minilm_l6") == 7
    assert cfg.model_layers("hub") == C.DEFAULT_LAYERS and cfg.model_layers("vit") == 12
    tiny_config["models"]["vit"]["n_layers"] = 0
    with pytest.raises(ConfigError, match="n_layers"):
        Config(tiny_config)
    # n_layers sizes requests only: the embedding's params (its rerun trigger) ignore it
    tiny_config["models"]["vit"]["n_layers"] = 40
    assert Config(tiny_config).embed_params("vit") == cfg.embed_params("vit")


def test_pair_cost_model_follows_n_layers_metrics_and_calibration(tiny_config):
    tiny_config["datasets"]["emoji"]["n_samples"] = 1024
    cfg = Config(tiny_config)
    c = cfg.pair_cost("emoji", "efficientnet_lite0", "minilm_l6")
    # the cost model's functions with the config's numbers: 18 x 7 layers, three metrics
    specs = tuple(C.cost.spec(m, 0, cfg.resolved_metric_params(m)) for m in cfg.metrics)
    assert c["seconds"] == pytest.approx(C.cost.pair_s(1024, 18, 7, specs))
    assert c["mb"] == pytest.approx(C.cost.pair_mb(1024, 18, 7, specs))
    assert c["runtime"] == max(C.MIN_RUNTIME_MIN, math.ceil(C.RUNTIME_SAFETY * c["seconds"] / 60))
    assert c["mem_mb"] == math.ceil(C.MEM_SAFETY * c["mb"])
    assert cfg.pair_resources("emoji", "efficientnet_lite0", "minilm_l6") == \
        {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}
    # more layers cost more time and memory; a 1-layer model less
    small = cfg.pair_cost("emoji", "glove_6b_50d", "minilm_l6")
    assert small["seconds"] < c["seconds"] and small["mb"] < c["mb"]
    # calibration adds K permutations of each calibrated metric's sweep
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 100}
    cal = Config(tiny_config).pair_cost("emoji", "efficientnet_lite0", "minilm_l6")
    specs_k = tuple(C.cost.spec(m, 100, cfg.resolved_metric_params(m)) for m in cfg.metrics)
    assert cal["seconds"] == pytest.approx(C.cost.pair_s(1024, 18, 7, specs_k))
    assert cal["seconds"] > c["seconds"]


def test_paper_config_pair_requests_grow_with_the_largest_models():
    cfg = Config(yaml.safe_load((REPO / "config/paper.yaml").read_text()))
    assert cfg.model_layers("llama_65b") == 81 and cfg.model_layers("vit_giant_patch14_dinov2_lvd142m") == 40
    big = cfg.pair_resources("wit_1024", "llama_65b", "vit_giant_patch14_dinov2_lvd142m")
    small = cfg.pair_resources("wit_1024", "bloomz_560m", "vit_tiny_patch16_224_augreg_in21k")
    cost_big = cfg.pair_cost("wit_1024", "llama_65b", "vit_giant_patch14_dinov2_lvd142m")
    cost_small = cfg.pair_cost("wit_1024", "bloomz_560m", "vit_tiny_patch16_224_augreg_in21k")
    assert cost_big["seconds"] > 4 * cost_small["seconds"]
    assert big["mem_mb"] > small["mem_mb"]
    # a common CPU partition's limits (24 h, 64 GB) hold every pair job
    assert big["runtime"] <= 1440 and big["mem_mb"] <= 64000
    # docs/cluster.md lists these requests
    readme = (REPO / "docs/cluster.md").read_text()
    for x, y in (("llama_65b", "vit_giant_patch14_dinov2_lvd142m"),
                 ("bloomz_560m", "vit_tiny_patch16_224_augreg_in21k")):
        r = cfg.pair_resources("wit_1024", x, y)
        assert f"| {x} | {y} | {cfg.model_layers(x)} x {cfg.model_layers(y)} | {r['runtime']} | {r['mem_mb']} |" in readme


def test_features_files_may_record_the_source_or_the_config_name(tiny_config):
    tiny_config["models"]["glove_b"] = {"source": "glove_6b_50d"}
    cfg = Config(tiny_config)
    assert cfg.feature_model_names("glove_b") == ["glove_6b_50d", "glove_b"]
    assert "glove_6b_50d" not in cfg.feature_model_names("minilm_l6")


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


def test_statistics_job_cost_grows_with_the_resamples(tiny_config):
    tiny_config["calibration"] = {"enabled": True, "metrics": ["cka"]}
    base = Config(tiny_config).statistics_cost("emoji")
    tiny_config["calibration"]["interval_method"] = "subsample"   # 50 resamples, not 20
    c = Config(tiny_config)
    more = c.statistics_cost("emoji")
    assert more["seconds"] > base["seconds"]
    models = {m: (c.model_layers(m), 0) for m in c.statistics_models()}
    cka = {"cka": c.resolved_metric_params("cka")}
    assert more["seconds"] == pytest.approx(C.cost.statistics_s(
        c.n_samples("emoji"), models, c.statistics_pairs(), cka, {"cka": ("subsample", 50)}))
    assert c.statistics_resources("emoji") == {"mem_mb": more["mem_mb"],
                                               "runtime": more["runtime"]}


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
