"""Tiny random-weight models and a test-built tokenizer (no network, no files)."""

from __future__ import annotations

import torch

WORDS = ("a red green blue apple face cat dog with open mouth smiling heart flag of the "
         "keycap star house sun moon tree car").split()


def word_tokenizer(padding_side: str = "right", bos: bool = False, *, bos_token: bool = True,
                   eos_token: bool = True):
    """A whitespace WordLevel tokenizer wrapped as a transformers fast tokenizer.

    ``bos``: the tokenizer prepends [BOS] itself (LLaMA-style). ``bos_token`` /
    ``eos_token``: whether [BOS] / [EOS] (ids 2 / 3, always in the vocabulary)
    are declared as the tokenizer's BOS / EOS token.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    vocab = {w: i for i, w in enumerate(specials + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        assert bos_token, "a tokenizer that adds [BOS] declares it"
        tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 2)])
    named = {"bos_token": "[BOS]"} if bos_token else {}
    if eos_token:
        named["eos_token"] = "[EOS]"
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   padding_side=padding_side, **named)


def word_ids(text: str) -> list[int]:
    """Ids of ``text``'s words in :func:`word_tokenizer`'s vocabulary ([UNK] = 1), no special token."""
    return [4 + WORDS.index(w) if w in WORDS else 1 for w in text.split()]


def tiny_causal_lm(vocab_size: int = 4 + len(WORDS)):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    return LlamaForCausalLM(cfg).eval()


def tiny_encoder(vocab_size: int = 4 + len(WORDS)):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=64, pad_token_id=0)
    return BertModel(cfg).eval()


def tiny_vit():
    import timm

    torch.manual_seed(0)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                          embed_dim=32, depth=3, num_heads=2, num_classes=5).eval()
    # The eval transform is resolved from the pretrained config: make it match 32 px.
    m.pretrained_cfg = {**m.pretrained_cfg, "input_size": (3, 32, 32), "crop_pct": 1.0}
    return m
