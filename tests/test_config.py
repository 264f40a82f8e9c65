"""prh.config: the facade and its schema (validation, defaults, strings from
the command line), and the jobs' resource requests."""

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


