"""prh.config.models: each model's settings, modality, layers and what its
embedding depends on, from registry names and a user's own sources."""

from __future__ import annotations

import pytest

from prh import config as C
from prh.config import Config, ConfigError


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


def test_features_files_may_record_the_source_or_the_config_name(tiny_config):
    tiny_config["models"]["glove_b"] = {"source": "glove_6b_50d"}
    cfg = Config(tiny_config)
    assert cfg.feature_model_names("glove_b") == ["glove_6b_50d", "glove_b"]
    assert "glove_6b_50d" not in cfg.feature_model_names("minilm_l6")


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
