"""prh.hub: hub models are checked when the DAG is built, once, without retries."""

from __future__ import annotations

import time

import pytest

from prh import hub
from prh.config import Config


def _fake_cache(root, repo):
    d = root / f"models--{repo.replace('/', '--')}"
    (d / "refs").mkdir(parents=True)
    (d / "refs" / "main").write_text("abc123")
    snap = d / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")


def test_repo_ids():
    assert hub.repo_id("hf", "org/model") == "org/model"
    assert hub.repo_id("hf", "./local-folder") is None
    assert hub.repo_id("timm", "resnet18.a1_in1k") == "timm/resnet18.a1_in1k"
    assert hub.repo_id("bundled", "minilm_l6") is None


def test_only_timm_and_hf_models_without_local_weights_load_from_the_hub():
    assert hub.model_repo("timm", "resnet18.a1_in1k", None) == "timm/resnet18.a1_in1k"
    assert hub.model_repo("hf", "org/model", "pretrained") == "org/model"
    assert hub.model_repo("hf", "./local-folder", None) is None
    assert hub.model_repo("timm", "resnet18.a1_in1k", "random") is None
    assert hub.model_repo("hf", "org/model", "weights/finetuned.safetensors") is None
    assert hub.model_repo("bundled", "minilm_l6", None) is None


def test_cached_models_pass_and_missing_ones_stop_in_one_line(tmp_path, monkeypatch):
    _fake_cache(tmp_path, "org/cached")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.check({"a": "org/cached"}, cache_dir=tmp_path)
    with pytest.raises(hub.HubError) as err:
        hub.check({"a": "org/cached", "b": "org/absent"}, cache_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "b (org/absent)" in msg and "a (" not in msg
    assert "HF_HUB_OFFLINE is set" in msg and "local folder" in msg


def test_unreachable_hub_answers_within_seconds(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(hub.HubError, match="did not answer"):
        hub.check({"b": "org/absent"}, cache_dir=tmp_path)
    assert time.perf_counter() - t0 < 2 * hub.TIMEOUT_S


def test_config_lists_the_hub_models_whose_features_are_missing(tiny_config):
    tiny_config["models"].update(
        vit={"source": "timm:vit_small_patch16_224"},
        lm={"source": "hf:org/lm"},
        lm_local={"source": "hf:./folder"},
        vit_random={"source": "timm:vit_small_patch16_224", "weights": "random"})
    cfg = Config(tiny_config)
    assert cfg.hub_models(exists=lambda p: False) == {"vit": "timm/vit_small_patch16_224",
                                                      "lm": "org/lm"}
    assert cfg.hub_models(exists=lambda p: True) == {}
