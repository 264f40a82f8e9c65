"""A user's own features (file:) and model (py:) as sources, and local
weights for timm:/hf: sources: parsing, checks against the manifest, import."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from prh.datasets import Manifest, Sample
from prh.formats import features as storage
from prh.formats.user_features import ids_file, import_features
from prh.models.registry import ModelError, get_embedder, parse_source
from prh.steps import embed as embed_step

REPO = Path(__file__).resolve().parents[1]
IDS = [f"s{i}" for i in range(6)]


@pytest.fixture
def manifest(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    samples = []
    for sid in IDS:
        img = tmp_path / f"{sid}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(img)
        samples.append(Sample(sid, f"caption {sid}", str(img)))
    return Manifest("toy", samples).save(tmp_path / "manifest.json")


def _layers(n=len(IDS)):
    rng = np.random.default_rng(1)
    return [rng.standard_normal((n, 5)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)]


def _model(source, **extra):
    return {"source": source, "modality": "language", "batch_size": 2, "device": "cpu",
            "dtype": "float32", "storage_dtype": "float32", "pool": None, **extra}


# --- parsing -------------------------------------------------------------------


def test_user_sources_parse_with_the_configs_modality():
    s = parse_source("file:feats/my.npz", "vision")
    assert (s.kind, s.path, s.modality) == ("file", "feats/my.npz", "vision")
    s = parse_source("py:code/my_model.py:build", "language")
    assert (s.kind, s.path, s.factory) == ("py", "code/my_model.py", "build")
    with pytest.raises(ModelError, match="file:x.npz: a file: source needs `modality: vision`"):
        parse_source("file:x.npz")
    with pytest.raises(ModelError, match=r"file:x.csv: a features file is \.h5"):
        parse_source("file:x.csv", "vision")
    with pytest.raises(ModelError, match="write py:<file.py>:<function>"):
        parse_source("py:my_model.py", "vision")


# --- file: sources -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["npz", "npy", "h5"])
def test_features_file_is_imported_in_manifest_order(tmp_path, manifest, features_file, kind):
    layers = _layers()
    src = tmp_path / f"mine.{kind}"
    if kind == "npz":
        np.savez(src, sample_ids=np.array(IDS), first=layers[0], second=layers[1])
    elif kind == "npy":  # one layer per slice needs equal widths
        layers = [layers[0], layers[0] * 2]
        np.save(src, np.stack(layers))
        ids_file(src).write_text("\n".join(IDS) + "\n")
    else:
        features_file(src, layers, sample_ids=IDS, layer_names=["a", "b"],
                      attrs={"modality": "language", "param_count": 7})
    out = tmp_path / "features" / "mine.h5"
    embed_step.run(_model(f"file:{src}"), manifest, out, name="mine")
    got = storage.read_features(out)
    for a, b in zip(got, layers):
        np.testing.assert_array_equal(a, b)
    meta = storage.read_metadata(out)
    assert meta["sample_ids"] == IDS and meta["model"] == "mine" and meta["modality"] == "language"
    assert meta["layer_names"] == {"npz": ["layer.0", "layer.1"], "npy": ["layer.0", "layer.1"],
                                   "h5": ["a", "b"]}[kind]
    assert meta["manifest_sha256"] == Manifest("toy", [Sample(i, f"caption {i}", "")
                                                       for i in IDS]).content_sha256
    # the config's layer names win over the file's
    embed_step.run(_model(f"file:{src}", layer_names=["x", "y"]), manifest, out, name="mine")
    assert storage.read_metadata(out)["layer_names"] == ["x", "y"]


@pytest.mark.parametrize("ids, layers_n, message", [
    (["s0", "s2", "s1", "s3", "s4", "s5"], 6,
     "row 1 is sample 's2', the manifest {m} has 's1' there"),
    (IDS[:5], 5, "5 samples, the manifest {m} has 6: missing sample 's5' (row 5)"),
    (IDS + ["s6"], 7, "7 samples, the manifest {m} has 6: extra sample 's6' (row 6)"),
    (IDS, 4, "layer 0 has shape (4, 5), expected (6, D)"),
])
def test_features_file_that_does_not_match_the_manifest_is_one_line_and_writes_nothing(
        tmp_path, manifest, ids, layers_n, message):
    src = tmp_path / "bad.npz"
    a, b = _layers(layers_n)
    np.savez(src, sample_ids=np.array(ids), a=a, b=b)
    out = tmp_path / "features" / "bad.h5"
    with pytest.raises(ValueError) as err:
        embed_step.run(_model(f"file:{src}"), manifest, out, name="bad")
    msg = str(err.value)
    assert msg.startswith(f"features file {src}: ") and message.format(m=manifest) in msg
    assert "\n" not in msg
    assert not out.exists() and not list(out.parent.glob("*")) if out.parent.exists() else True


def test_features_file_without_ids_or_with_nan_or_other_modality_is_refused(tmp_path, manifest,
                                                                           features_file):
    out = tmp_path / "out.h5"
    src = tmp_path / "noids.npz"
    np.savez(src, a=_layers()[0])
    with pytest.raises(ValueError, match="no array 'sample_ids'"):
        embed_step.run(_model(f"file:{src}"), manifest, out, name="m")
    nan = _layers()[0]
    nan[2, 1] = np.nan
    np.savez(src, sample_ids=np.array(IDS), a=nan)
    with pytest.raises(ValueError, match="layer 0 has NaN"):
        embed_step.run(_model(f"file:{src}"), manifest, out, name="m")
    npy = tmp_path / "f.npy"
    np.save(npy, _layers()[0])
    with pytest.raises(ValueError, match=r"its sample ids belong in .*f\.ids\.txt"):
        embed_step.run(_model(f"file:{npy}"), manifest, out, name="m")
    h5 = features_file("vision.h5", _layers(), sample_ids=IDS, attrs={"modality": "vision"})
    with pytest.raises(ValueError, match="holds vision features, the config says language"):
        embed_step.run(_model(f"file:{h5}"), manifest, out, name="m")
    with pytest.raises(ValueError, match="no such file"):
        embed_step.run(_model(f"file:{tmp_path / 'gone.npz'}"), manifest, out, name="m")
    assert not out.exists()


def test_usage_doc_example_writes_an_importable_file(tmp_path, manifest):
    """docs/usage.md's numpy example, run as written on this manifest's ids."""
    import json

    text = (REPO / "docs/usage.md").read_text()
    code = text.split("<!-- features-file-example -->")[1].split("```python")[1].split("```")[0]
    ids = [s["id"] for s in json.loads(Path(manifest).read_text())["samples"]]
    (tmp_path / "results/emoji").mkdir(parents=True)
    shutil.copy(manifest, tmp_path / "results/emoji/manifest.json")
    namespace = {}
    cwd = Path.cwd()
    try:
        import os
        os.chdir(tmp_path)
        exec(compile(code, "docs/usage.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "my_features.npz").is_file()
    out = tmp_path / "out.h5"
    embed_step.run(_model(f"file:{tmp_path / 'my_features.npz'}"), manifest, out, name="m")
    assert storage.read_metadata(out)["sample_ids"] == ids


# --- py: sources and local weights ----------------------------------------------


@pytest.fixture
def resnet_weights(tmp_path) -> Path:
    import timm

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / "tiny_resnet.pth"
    torch.save(net.state_dict(), path)
    return path


def test_py_source_runs_the_documented_example(tmp_path, manifest, resnet_weights):
    example = REPO / "docs/examples/my_model.py"
    model = {**_model(f"py:{example}:build", weights=str(resnet_weights),
                      options={"arch": "test_resnet"}), "modality": "vision"}
    out = tmp_path / "mine.h5"
    embed_step.run(model, manifest, out, name="mine")
    meta = storage.read_metadata(out)
    got = storage.read_features(out)
    assert meta["sample_ids"] == IDS and meta["modality"] == "vision"
    assert meta["weights"] == str(resnet_weights) and len(got) == len(meta["layer_names"]) >= 2
    assert all(a.shape[0] == len(IDS) and np.isfinite(a).all() for a in got)
    # the file records the source asked for (the layer cache step's provenance
    # check accepts it), not the name the user's embedder gives itself
    assert meta["model"] == f"py:{example}:build"
    # the same weights in a new factory call give the same features
    again = tmp_path / "again.h5"
    embed_step.run(model, manifest, again, name="mine")
    for a, b in zip(got, storage.read_features(again)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_py_source_errors_name_the_file_and_function(tmp_path):
    code = tmp_path / "bad.py"
    code.write_text("def build():\n    return 42\n")
    with pytest.raises(ModelError, match=r"py:.*bad\.py:build: build\(\) returned int, not a prh"):
        get_embedder(f"py:{code}:build", modality="vision")
    with pytest.raises(ModelError, match=r"bad\.py defines no function 'make'"):
        get_embedder(f"py:{code}:make", modality="vision")
    with pytest.raises(ModelError, match=r"no such file .*gone\.py"):
        get_embedder(f"py:{tmp_path / 'gone.py'}:build", modality="vision")
    vision = tmp_path / "vision.py"
    vision.write_text(
        "from prh.models.base import Embedder\n"
        "class V(Embedder):\n"
        "    modality, pools = 'vision', ('mean',)\n"
        "    load = embed_batch = lambda self, *a: None\n"
        "    layer_names = param_count = property(lambda self: 0)\n"
        "def build():\n    return V('v')\n")
    with pytest.raises(ModelError, match="the embedder is a vision model, the config says language"):
        get_embedder(f"py:{vision}:build", modality="language")
    assert get_embedder(f"py:{vision}:build", modality="vision").name == "v"


def test_timm_takes_a_local_weights_file(tmp_path, resnet_weights):
    import timm

    emb = get_embedder("timm:test_resnet", weights=str(resnet_weights))
    emb.load(torch.device("cpu"))
    want = timm.create_model("test_resnet", pretrained=False)
    want.load_state_dict(torch.load(resnet_weights, weights_only=True))
    for k, v in want.state_dict().items():
        torch.testing.assert_close(emb.model.state_dict()[k], v)
    assert emb.weights_attrs() == {"weights": str(resnet_weights)}
    with pytest.raises(ModelError, match="weights file .*missing.pth does not exist"):
        get_embedder("timm:test_resnet", weights=str(tmp_path / "missing.pth")).load(
            torch.device("cpu"))
    headless = tmp_path / "headless.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), headless)
    with pytest.raises(ModelError, match=r"model timm:test_resnet: cannot load weights file "
                                         r".*headless\.pth into timm's test_resnet"):
        get_embedder("timm:test_resnet", weights=str(headless)).load(torch.device("cpu"))


def test_hf_takes_a_local_folder(tmp_path):
    from tiny_models import tiny_encoder, word_tokenizer

    folder = tmp_path / "my_encoder"
    tiny_encoder().save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    emb = get_embedder("hf:someone/encoder", weights=str(folder))
    emb.load(torch.device("cpu"))
    assert emb.path == str(folder) and emb.weights_attrs() == {"weights": str(folder)}
    assert len(emb.embed_batch(["red apple", "cat"]).layers) == 3


def test_usage_doc_python_api_example_runs(capsys):
    text = (REPO / "docs/usage.md").read_text()
    code = text.split("<!-- python-api-example -->")[1].split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "docs/usage.md", "exec"), namespace)
    out = capsys.readouterr().out.split("\n")
    assert 0 < float(out[0]) <= 1  # B is built from A: mutual_knn above chance
    S, rows = namespace["S"], namespace["rows"]
    assert S.shape == (4, 2) and abs(S[3, 0] - S.max()) < 1e-12  # A's layer aligns best with B
    assert rows["max"]["p_value"] == pytest.approx(1 / 51)


def test_prh_version():
    import subprocess
    import sys

    from prh import __version__

    res = subprocess.run([sys.executable, "-m", "prh.cli", "--version"], capture_output=True,
                         text=True, cwd=REPO)
    assert res.returncode == 0 and res.stdout.strip() == f"prh {__version__}"
