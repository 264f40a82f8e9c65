"""prh's one cache folder, shared by the unpacked datasets and the converted
GGUF models."""

from __future__ import annotations

from prh.cachedir import cache_root


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PRH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "prh"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "prh"
    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_datasets_and_gguf_models_unpack_into_the_same_folder(monkeypatch, tmp_path):
    from prh.datasets.emoji import _emoji_root
    from prh.models.gguf import GGUFTextEmbedder

    monkeypatch.delenv("PRH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _emoji_root().parent == tmp_path / "xdg" / "prh"
    embedder = GGUFTextEmbedder("m", package="p", distribution="p", filename="m.gguf",
                                sha256="0" * 64)
    assert embedder.cache_dir == tmp_path / "xdg" / "prh" / "m-0000000000000000"
