"""Untrusted models stay inert: a model folder's own code never runs and no
prompt reads stdin; pickled weights load only as plain tensors; over-long
captions are cut to the model's limit and counted; a py: source's faults are
one line naming the model and its file. One test per fault."""

from __future__ import annotations

import ast
import builtins
import io
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from prh.datasets import Manifest, Sample
from prh.embed import embed
from prh.models.language import HFTextEmbedder
from prh.models.registry import ModelError, get_embedder
from tiny_models import tiny_causal_lm, tiny_encoder, word_tokenizer

CPU = torch.device("cpu")


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


def _captions(tmp_path: Path, captions: list[str]) -> Manifest:
    """A captions-only manifest (language models never open the images)."""
    return Manifest("toy", [Sample(f"s{i}", c, str(tmp_path / f"{i}.png")) for i, c in enumerate(captions)])


# --- a model folder's own code ---------------------------------------------------

CODE = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n"


@pytest.mark.parametrize("where", ["custom_model_type", "builtin_model_type", "tokenizer_config"])
def test_model_folder_code_never_runs_and_stdin_is_not_read(tmp_path, monkeypatch, where):
    """An auto_map in config.json (with a model type transformers lacks, which
    made it prompt, or one it has) or in tokenizer_config.json is refused
    before transformers is asked; a 'y' waiting on stdin is never read."""
    folder = tmp_path / "colleague_model"
    tiny_encoder().save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    marker = tmp_path / "marker"
    for module in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (folder / f"{module}.py").write_text(CODE.format(marker=str(marker)))
    name = "tokenizer_config.json" if where == "tokenizer_config" else "config.json"
    data = json.loads((folder / name).read_text())
    if where == "tokenizer_config":
        data["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    else:
        data["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                            "AutoModel": "modeling_evil.EvilModel"}
        if where == "custom_model_type":
            data["model_type"] = "prh_evil"
    (folder / name).write_text(json.dumps(data))

    prompts = []
    monkeypatch.setattr(builtins, "input", lambda *a: prompts.append(a) or "y")
    stdin = io.StringIO("y\n" * 8)
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(ModelError) as err:
        get_embedder(f"hf:{folder}").load(CPU)
    msg = _one_line(err)
    assert str(folder) in msg and "prh does not run a model folder's own code" in msg
    assert not marker.exists() and prompts == [] and stdin.tell() == 0


def _calls(attr: str) -> list[tuple[str, ast.Call]]:
    repo = Path(__file__).resolve().parents[1]
    found = []
    for path in sorted((repo / "prh").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == attr:
                found.append((f"{path.relative_to(repo)}:{node.lineno}", node))
    return found


def _keyword(call: ast.Call, name: str):
    return next((k.value.value for k in call.keywords
                 if k.arg == name and isinstance(k.value, ast.Constant)), "unset")


def test_every_transformers_load_refuses_remote_code_and_every_torch_load_is_weights_only():
    loads = _calls("from_pretrained")
    assert len(loads) >= 5  # config, model and tokenizer; the GGUF conversion's two
    assert [w for w, c in loads if _keyword(c, "trust_remote_code") is not False] == []
    assert [w for w, c in _calls("load") if getattr(c.func.value, "id", None) == "torch"
            and _keyword(c, "weights_only") is not True] == []


# --- pickled weights ---------------------------------------------------------------


class _Payload:
    """Unpickling this object writes a marker file (as any code could run)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "ran")


def test_malicious_pytorch_model_bin_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "pickled_model"
    tiny_encoder().save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ModelError) as err:
        get_embedder(f"hf:{folder}").load(CPU)
    msg = _one_line(err)
    assert str(folder / "pytorch_model.bin") in msg and "only as plain tensors" in msg
    assert not marker.exists()


def test_malicious_timm_weights_file_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "marker"
    weights = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload(marker)}, weights)
    with pytest.raises(ModelError) as err:
        get_embedder("timm:test_resnet", weights=str(weights)).load(CPU)
    msg = _one_line(err)
    assert str(weights) in msg and "only as plain tensors" in msg
    assert not marker.exists()


# --- over-long captions --------------------------------------------------------------


def test_caption_beyond_minilm_limit_is_cut_and_counted_in_log_and_file(tmp_path):
    """3,000 words into MiniLM (512 positions) used to raise IndexError."""
    from prh.jobio import logged
    from prh.steps import embed as embed_step

    long = " ".join(["cat"] * 3000)  # one token per word: [CLS] cat x 3000 [SEP]
    captions = ["a red apple", long, " ".join(["cat"] * 510), "a dog"]
    manifest = _captions(tmp_path, captions).save(tmp_path / "manifest.json")
    out, log = tmp_path / "minilm.h5", tmp_path / "embed.log"
    model = {"source": "minilm_l6", "modality": "language", "batch_size": 2, "device": "cpu",
             "dtype": "float32", "storage_dtype": "float32", "pool": None}
    with logged(log):
        embed_step.run(model, manifest, out, name="minilm_l6")
    with h5py.File(out) as f:
        assert f.attrs["n_truncated_captions"] == 1 and f.attrs["max_caption_tokens"] == 512
        layers = [f["feats"][k][()] for k in sorted(f["feats"])]
    # cut to [CLS] + 510 words + [SEP]: the same as the 510-word caption
    for a in layers:
        np.testing.assert_allclose(a[1], a[2], rtol=1e-4, atol=1e-5)
    assert "1 of 4 captions are longer than the model's 512 tokens" in log.read_text()


def test_caption_beyond_causal_lm_limit_is_cut_and_scored_on_the_part_kept():
    """The causal LM path (start token prepended by prh) cuts to the model's
    64 positions, start token included, and its bits per byte are those of
    the 63 words kept."""
    words = ("red apple cat " * 40).split()  # 120 words, one token each
    emb = HFTextEmbedder("tiny", model=tiny_causal_lm(), tokenizer=word_tokenizer(), causal=True)
    emb.load(CPU)
    assert emb.max_tokens == 64 and emb.n_truncated == 0
    with torch.inference_mode():
        got = emb.embed_batch([" ".join(words), "a cat"])
        want = emb.embed_batch([" ".join(words[:63]), "a cat"])
    assert emb.n_truncated == 1
    for a, b in zip(got.layers, want.layers):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(got.bpb, want.bpb)


# --- py: sources ----------------------------------------------------------------------

EMBEDDER = """
import torch
from prh.models.base import BatchFeatures, Embedder

class Mine(Embedder):
    modality, pools = "language", ("mean",)
    NAMES = ["only"]

    def load(self, device, dtype=torch.float32):
        pass

    @property
    def layer_names(self):
        return list(self.NAMES)

    @property
    def param_count(self):
        return 0

    def embed_batch(self, batch):
        return BatchFeatures([torch.tensor([[float(len(c)), 1.0] for c in batch])])
"""


def _py(tmp_path: Path, body: str, name: str = "mine.py") -> Path:
    path = tmp_path / "user_code" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(EMBEDDER + body)
    return path


def test_py_factory_that_raises_names_file_model_and_exception(tmp_path):
    path = _py(tmp_path, "def build():\n    raise RuntimeError('needs a GPU')\n")
    with pytest.raises(ModelError) as err:
        get_embedder(f"py:{path}:build", modality="language")
    msg = _one_line(err)
    assert msg.startswith(f"py:{path}:build: ") and "build()" in msg
    assert "RuntimeError: needs a GPU" in msg


def test_py_embed_batch_returning_a_tensor_names_model_file_expected_and_got(tmp_path):
    path = _py(tmp_path, "class Bare(Mine):\n"
                         "    def embed_batch(self, batch):\n"
                         "        return torch.zeros(len(batch), 2)\n"
                         "def build():\n    return Bare('bare')\n")
    out = tmp_path / "out.h5"
    with pytest.raises(ModelError) as err:
        embed(_captions(tmp_path, ["a", "bb"]), f"py:{path}:build", out, modality="language",
              progress=False)
    msg = _one_line(err)
    assert f"py:{path}:build" in msg and "embed_batch returned a Tensor of shape (2, 2)" in msg
    assert "expected BatchFeatures" in msg
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_py_embedder_with_no_layers_is_one_line(tmp_path):
    path = _py(tmp_path, "class Empty(Mine):\n    NAMES = []\n"
                         "def build():\n    return Empty('empty')\n")
    out = tmp_path / "out.h5"
    with pytest.raises(ModelError) as err:
        embed(_captions(tmp_path, ["a", "bb"]), f"py:{path}:build", out, modality="language",
              progress=False)
    msg = _one_line(err)
    assert f"py:{path}:build" in msg and "has no layers" in msg and not out.exists()


def test_py_file_imports_a_module_beside_it_and_sys_path_is_left_as_it_was(tmp_path):
    (tmp_path / "user_code").mkdir()
    (tmp_path / "user_code" / "prh_test_helper_mod.py").write_text("WIDTH = 3\n")
    path = _py(tmp_path, "from prh_test_helper_mod import WIDTH\n"
                         "class Wide(Mine):\n"
                         "    def embed_batch(self, batch):\n"
                         "        return BatchFeatures([torch.ones(len(batch), WIDTH)])\n"
                         "def build():\n    return Wide('wide')\n")
    before = list(sys.path)
    try:
        res = embed(_captions(tmp_path, ["a", "bb"]), f"py:{path}:build", tmp_path / "out.h5",
                    modality="language", progress=False)
    finally:
        sys.modules.pop("prh_test_helper_mod", None)
    assert res["n_layers"] == 1 and sys.path == before
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["feats"]["000"].shape == (2, 3)


def test_cli_embed_of_a_py_model_takes_modality_and_names_the_option(tmp_path, capsys):
    from prh.cli import main

    path = _py(tmp_path, "def build():\n    return Mine('mine')\n")
    manifest = _captions(tmp_path, ["a", "bb", "ccc"]).save(tmp_path / "manifest.json")
    out = tmp_path / "out.h5"
    args = ["embed", "--model", f"py:{path}:build", "--manifest", str(manifest), "--out", str(out),
            "--no-progress", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--modality" in err and "\n" not in err and not out.exists()
    assert main(args + ["--modality", "language"]) == 0
    with h5py.File(out) as f:
        assert f.attrs["modality"] == "language" and f["feats"]["000"].shape == (3, 2)
    assert main(["embed", "--model", "minilm_l6", "--modality", "vision", "--manifest",
                 str(manifest), "--out", str(tmp_path / "m.h5")]) == 2
    assert "minilm_l6 is a language model" in capsys.readouterr().err
