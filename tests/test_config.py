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
    # by hand: 18 x 7 layer pairs, (1024/512)^2, mutual_knn + 2 orders of cycle_knn + cka
    t = C.METRIC_COST
    per_pair = t["mutual_knn"][0] + 2 * t["cycle_knn"][0] + t["cka"][0]
    assert c["seconds"] == pytest.approx(C.START_S + 18 * 7 * 4 * per_pair)
    assert c["mb"] == pytest.approx(1500 + 25 * 6 * 1024 * 1024 * 8 / 2**20)
    assert c["runtime"] == max(C.MIN_RUNTIME_MIN, -(-2 * c["seconds"] // 60))
    assert c["mem_mb"] == -(-2 * c["mb"] // 1)
    assert cfg.pair_resources("emoji", "efficientnet_lite0", "minilm_l6") == \
        {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}
    # more layers cost more time and memory; a 1-layer model less
    small = cfg.pair_cost("emoji", "glove_6b_50d", "minilm_l6")
    assert small["seconds"] < c["seconds"] and small["mb"] < c["mb"]
    # calibration multiplies the work by 1 + K x per-permutation
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 100}
    cal = Config(tiny_config).pair_cost("emoji", "efficientnet_lite0", "minilm_l6")
    per_pair_k = sum(o * t[m][0] * (1 + 100 * t[m][1])
                     for m, o in (("mutual_knn", 1), ("cycle_knn", 2), ("cka", 1)))
    assert cal["seconds"] == pytest.approx(C.START_S + 18 * 7 * 4 * per_pair_k)
    assert cal["seconds"] > c["seconds"]


def test_paper_config_pair_requests_grow_with_the_largest_models():
    cfg = Config(yaml.safe_load((REPO / "config/paper.yaml").read_text()))
    assert cfg.model_layers("llama_65b") == 81 and cfg.model_layers("vit_giant_patch14_dinov2_lvd142m") == 40
    big = cfg.pair_resources("wit_1024", "llama_65b", "vit_giant_patch14_dinov2_lvd142m")
    small = cfg.pair_resources("wit_1024", "bloomz_560m", "vit_tiny_patch16_224_augreg_in21k")
    assert big["runtime"] > 30 and big["runtime"] > 4 * small["runtime"]
    assert big["mem_mb"] > small["mem_mb"]
    # docs/cluster.md lists these requests
    readme = (REPO / "docs/cluster.md").read_text()
    for x, y in (("llama_65b", "vit_giant_patch14_dinov2_lvd142m"),
                 ("bloomz_560m", "vit_tiny_patch16_224_augreg_in21k")):
        r = cfg.pair_resources("wit_1024", x, y)
        assert f"| {x} | {y} | {cfg.model_layers(x)} x {cfg.model_layers(y)} | {r['runtime']} | {r['mem_mb']} |" in readme


def test_statistics_job_cost_grows_with_the_resamples(tiny_config):
    tiny_config["calibration"] = {"enabled": True, "metrics": ["cka"]}
    base = Config(tiny_config).statistics_resources("emoji")
    tiny_config["calibration"]["interval_method"] = "subsample"   # 50 resamples, not 20
    more = Config(tiny_config).statistics_resources("emoji")
    assert more["runtime"] >= base["runtime"] and more["mem_mb"] == base["mem_mb"]
    c = Config(tiny_config)
    n = c.n_samples("emoji")
    seconds = C.START_S + sum(
        c.model_layers(x) * c.model_layers(y) * (n / C.COST_N) ** 2 * C.METRIC_COST["cka"][0]
        * (1 + 50 * C.METRIC_COST["cka"][2]) for x, y in c.statistics_pairs())
    assert more["runtime"] == max(C.MIN_RUNTIME_MIN, math.ceil(C.SAFETY * seconds / 60))


