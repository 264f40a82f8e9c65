"""Datasets read through Hugging Face ``datasets`` (``prh_wit``, the paper's
data, or a local folder of parquet files): images written once into the cache
folder so that the manifest can name files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..jobio import atomic_output
from ..cachedir import cache_root
from .manifest import DatasetError, Manifest, Sample, check_n, sha256_file

def prepare_hub(n_samples: int | None, *, path: str = "minhuh/prh", revision: str | None = "wit_1024",
                 split: str = "train", image_column: str = "image", text_column: str = "text",
                 caption_idx: int = 0, name: str = "prh_wit") -> Manifest:
    import datasets as hfds

    local = os.path.exists(path)
    try:
        # A local folder has no revisions; passing one would make datasets look for a git ref.
        ds = hfds.load_dataset(path, split=split, **({} if local else {"revision": revision}))
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetError(f"{name}: cannot load dataset {path!r} (revision {revision!r}, split {split!r}): "
                           f"{first}; without the hub use the offline `emoji` dataset") from None
    for col in (image_column, text_column):
        if col not in ds.column_names:
            raise DatasetError(f"{name}: dataset {path!r} has no column {col!r} (columns: "
                               f"{', '.join(ds.column_names)}); set image_column/text_column")
    n = len(ds) if n_samples is None else check_n(n_samples, len(ds), name)
    ds = ds.select(range(n))
    if isinstance(ds.features[image_column], hfds.Image):
        ds = ds.cast_column(image_column, hfds.Image(decode=False))  # keep the original bytes
    key = hashlib.sha256(json.dumps([os.path.abspath(path) if local else path, revision, split,
                                     image_column]).encode()).hexdigest()[:12]
    out_dir = cache_root() / "datasets" / f"{name}-{key}"
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, row in enumerate(ds):
        sid = f"{i:05d}"
        caption = row[text_column]
        if isinstance(caption, (list, tuple)):
            if not caption:
                raise DatasetError(f"{name}: sample {sid} has no caption")
            if not 0 <= caption_idx < len(caption):
                raise DatasetError(f"{name}: sample {sid} has {len(caption)} captions; choose "
                                   f"caption_idx in 0..{len(caption) - 1}")
            caption = caption[caption_idx]
        img_path = _materialise_image(row[image_column], out_dir, sid)
        samples.append(Sample(sid, str(caption), str(img_path), sha256_file(img_path)))
    return Manifest(name, samples, {"n_samples": n, "path": path, "revision": revision, "split": split,
                                    "image_column": image_column, "text_column": text_column,
                                    "caption_idx": caption_idx})


def _materialise_image(value: Any, out_dir: Path, sid: str) -> Path:
    """Write one dataset image as a file (original bytes where available)."""
    if isinstance(value, dict) and value.get("bytes"):
        data = value["bytes"]
        ext = _sniff_ext(data)
    elif isinstance(value, dict) and value.get("path") and os.path.exists(value["path"]):
        data = Path(value["path"]).read_bytes()
        ext = Path(value["path"]).suffix or _sniff_ext(data)
    elif hasattr(value, "save"):  # a PIL image
        import io
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        data, ext = buf.getvalue(), ".png"
    else:
        raise DatasetError(f"sample {sid}: image value of type {type(value).__name__} is not an image")
    path = out_dir / f"{sid}{ext}"
    if not path.exists() or path.read_bytes() != data:
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
    return path


def _sniff_ext(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    return ".img"
