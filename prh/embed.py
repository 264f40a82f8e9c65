"""The embedding stage: a manifest's samples -> a model -> one HDF5 file.

:func:`embed` runs the samples through the model batch by batch, in manifest
order, and streams each batch's pooled features into a
:class:`prh.formats.features.FeatureWriter` (layout in
:mod:`prh.formats.features`). A complete
file with the same model, weights, dataset, samples, pooling and storage dtype
is left alone unless ``force``.

Weights: the pretrained ones, or with ``weights="random"`` an untrained
baseline of a vision model, seeded random initialisation (see
:mod:`prh.models.vision`). The file records ``weights`` ("pretrained" or
"random") and, for random weights, ``seed``. Files written before these
attributes existed have no ``weights`` and are recomputed once.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .formats import features as storage
from .datasets import Manifest, load_image
from .models.base import Embedder, ModelError, check_features
from .devices import resolve_device
from .jobio import check_output_target
from .models.registry import get_embedder, set_weights, user_code

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 15.0

MODEL_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _setup_torch(device: torch.device, threads: int | None) -> None:
    torch.manual_seed(0)
    if device.type == "cpu":
        # Default intra-op threads can exceed the cores granted to this process
        # (containers, Slurm); oversubscription slows convolutions several-fold.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, int(threads or cores or 1)))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class ProgressLog:
    """Progress of a loop as log lines, for jobs without a progress bar (a
    workflow job's log): at most one line every ``interval`` seconds, with
    samples done / total, rate (samples/s) and ETA. ``clock`` is for tests."""

    def __init__(self, total: int, what: str, interval: float = PROGRESS_INTERVAL_S,
                 clock=time.monotonic, logger: logging.Logger = log):
        self.total, self.what, self.interval = total, what, interval
        self.clock, self.logger = clock, logger
        self.start = self.last = clock()
        self.done = 0

    def update(self, n: int) -> str | None:
        """Count ``n`` more samples; returns the line when one was logged."""
        self.done += n
        now = self.clock()
        if now - self.last < self.interval and self.done < self.total:
            return None
        if self.done >= self.total and self.last == self.start and now - self.start < self.interval:
            return None  # finished before the first line was due: the summary line says it
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        line = (f"{self.what}: {self.done}/{self.total} samples ({100 * self.done / self.total:.0f}%), "
                f"{rate:.1f} samples/s, elapsed {_duration(elapsed)}, "
                f"ETA {_duration(eta) if eta != float('inf') else 'unknown'}")
        self.logger.info("%s", line)
        return line


def embed(manifest: Manifest, model: str | Embedder, out: str | os.PathLike, *, batch_size: int = 32,
          device: str | torch.device | None = "cpu", dtype: str = "float32",
          model_dtype: str = "float32", pool: str | None = None, force: bool = False,
          progress: bool = True, threads: int | None = None, weights: str | None = None,
          seed: int | None = None, modality: str | None = None,
          options: dict[str, Any] | None = None,
          progress_interval: float = PROGRESS_INTERVAL_S) -> dict[str, Any]:
    """Embed every sample of ``manifest`` with ``model`` into ``out`` (HDF5).

    ``dtype`` is the storage dtype of the features (float32 or float16);
    ``model_dtype`` the dtype the model computes in. ``weights``: None for
    the pretrained weights, "random" for seeded random ones (``seed``,
    default 0; vision models only), or a local weights file or folder; with
    an :class:`Embedder` passed in, None keeps its own. ``modality`` and
    ``options`` are for ``py:`` sources (the factory's keyword arguments).
    Without a progress bar (``progress=False``: workflow jobs) a log line
    every ``progress_interval`` seconds gives samples done, rate and ETA. Returns a summary dict (``skipped`` is True when an
    up-to-date file was left alone).
    """
    from tqdm import tqdm

    out = Path(out)
    check_output_target(out)  # before the model loads: a FIFO would also block is_complete
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if dtype not in storage.STORAGE_DTYPES:
        raise ValueError(f"storage dtype {dtype!r} is not supported; use one of {', '.join(storage.STORAGE_DTYPES)}")
    if model_dtype not in MODEL_DTYPES:
        raise ValueError(f"model dtype {model_dtype!r} is not supported; use one of {', '.join(MODEL_DTYPES)}")
    if manifest.ids_only:
        who = model if isinstance(model, str) else model.name
        raise ModelError(f"model {who}: dataset {manifest.dataset} holds sample ids alone (no "
                         "images or captions) to embed; ids datasets take only file: models "
                         "(precomputed features)")
    # The file records the source it was asked for (for py: sources the
    # user's embedder names itself), which the layer cache step checks.
    recorded = model if isinstance(model, str) else None
    if isinstance(model, str):
        embedder = get_embedder(model, pool, weights, seed, modality=modality, options=options)
    else:
        embedder = model if weights is None and seed is None else set_weights(model, weights, seed)

    recorded = recorded or embedder.name
    expect = {"model": recorded, "dataset": manifest.dataset, "manifest_sha256": manifest.content_sha256,
              "n_samples": manifest.n, "dtype": dtype, **embedder.weights_attrs()}
    if pool:
        expect["pool_requested"] = pool
    if not force:
        ok, why = storage.is_complete(out, expect)
        if ok:
            log.info("%s is up to date (%s on %s, %d samples); use --force to recompute",
                     out, embedder.name, manifest.dataset, manifest.n)
            return {"skipped": True, "out": str(out)}
        if out.exists():
            log.info("recomputing %s: %s", out, why)

    dev = resolve_device(device)
    _setup_torch(dev, threads)
    if embedder.modality == "vision":
        manifest.check_images()

    # errors in a py: source's code name the model and its file
    who = f"model {recorded}" + (f" ({embedder.user_file})" if embedder.user_file else "")
    t0 = time.perf_counter()
    with user_code(embedder, who, "load()"):
        embedder.load(dev, MODEL_DTYPES[model_dtype])
        layer_names, param_count = list(embedder.layer_names), int(embedder.param_count)
    load_s = time.perf_counter() - t0
    if not layer_names:
        raise ModelError(f"{who}: the embedder has no layers (layer_names is empty after load()); "
                         "it must name each layer embed_batch returns")
    log.info("loaded %s (%s, %d parameters, %d layers, %s) on %s in %.1fs", embedder.name, embedder.modality,
             param_count, len(layer_names),
             f"random weights, seed {embedder.seed}" if embedder.weights else "pretrained weights", dev, load_s)

    attrs = {"model": recorded, "modality": embedder.modality, "pool": embedder.pool,
             "pool_requested": pool or "", "dataset": manifest.dataset, "manifest_sha256": manifest.content_sha256,
             "param_count": param_count, "prh_version": __version__, "device": str(dev),
             "model_dtype": model_dtype, "batch_size": batch_size, "load_seconds": load_s,
             **embedder.weights_attrs(), **_library_versions(), **embedder.versions(),
             **embedder.file_attrs()}
    forward_s = 0.0
    samples = manifest.samples
    with storage.FeatureWriter(out, sample_ids=manifest.ids, layer_names=layer_names,
                               attrs=attrs, dtype=dtype, with_bpb=embedder.has_bpb) as writer, \
            torch.inference_mode():
        bar = tqdm(range(0, len(samples), batch_size), desc=f"{embedder.name} on {manifest.dataset}",
                   unit="batch", disable=not progress, mininterval=1.0)
        ticker = None if progress else ProgressLog(len(samples), f"{embedder.name} on {manifest.dataset}",
                                                   progress_interval)
        for start in bar:
            chunk = samples[start:start + batch_size]
            inputs = [load_image(s) for s in chunk] if embedder.modality == "vision" \
                else [s.caption for s in chunk]
            t = time.perf_counter()
            with user_code(embedder, who, "embed_batch()"):
                feats = embedder.embed_batch(inputs)
            check_features(feats, len(chunk), len(layer_names), who)
            _sync(dev)
            forward_s += time.perf_counter() - t
            writer.write(start, feats.layers, feats.bpb)
            if ticker is not None:
                ticker.update(len(chunk))
        writer.attrs["seconds"] = time.perf_counter() - t0
        writer.attrs["forward_seconds"] = forward_s
        if embedder.n_truncated is not None:
            writer.attrs["n_truncated_captions"] = embedder.n_truncated
            writer.attrs["max_caption_tokens"] = embedder.max_tokens or 0
            if embedder.n_truncated:
                log.warning("%s: %d of %d captions are longer than the model's %d tokens; each was "
                            "cut to its first %d tokens", embedder.name, embedder.n_truncated,
                            manifest.n, embedder.max_tokens, embedder.max_tokens)
    total = time.perf_counter() - t0
    log.info("wrote %s: %d samples x %d layers in %.1fs (forward %.1fs)", out, manifest.n,
             len(layer_names), total, forward_s)
    return {"skipped": False, "out": str(out), "seconds": total, "forward_seconds": forward_s,
            "load_seconds": load_s, "n_layers": len(layer_names)}


def _library_versions() -> dict[str, str]:
    import h5py
    import numpy
    return {"numpy_version": numpy.__version__, "h5py_version": h5py.__version__}
