"""The manifest that fixes a dataset's samples, and what every dataset shares.

A :class:`Manifest` holds the ids, captions, image file paths, the sha256 of
every image file and one content hash over all of them. Every later stage
reads the samples through the manifest, so two models embed exactly the same
images and captions in the same order, and an embedding file records the
manifest's ``content_sha256`` to show which samples it holds. A dataset of
ids alone (:mod:`.ids`) has samples with no caption and no image.

The JSON file writes one sample per line and leaves out a sample's empty
fields: an id alone takes its own length plus 14 bytes, so a million ids of
14 characters make 28 MB, written and read in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, Sequence

from ..jobio import atomic_output

MANIFEST_VERSION = 1

DEFAULT_N_SAMPLES = 1024
DEFAULT_SEED = 0


class DatasetError(ValueError):
    """A dataset that cannot be prepared or read; the message says which and why."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def portable_path(path: str, base: str | os.PathLike | None) -> str:
    """``path`` as the manifest in folder ``base`` records it: relative to
    ``base`` when both lie inside the working folder, so that a project moved
    or copied whole (images in its own data folder) still finds them; an
    image elsewhere (a package's data, a cache) keeps its absolute path."""
    if base is None:
        return path
    cwd = Path.cwd().resolve()
    target, base = Path(os.path.abspath(path)), Path(base).resolve()
    if target.is_relative_to(cwd) and base.is_relative_to(cwd):
        return os.path.relpath(target, base)
    return str(target)


def _absolute(path: str, base: Path) -> str:
    """A recorded path back as an absolute one (relative ones are relative
    to the manifest's folder)."""
    return path if not path or os.path.isabs(path) else os.path.normpath(base / path)


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    caption: str  # "" for a dataset of ids alone
    image: str  # absolute path of the image file (the manifest file may record it relative)
    image_sha256: str = ""


#: what a sample's line of the manifest file holds, in this order; empty ones are left out
SAMPLE_KEYS = ("id", "caption", "image", "image_sha256")


def _json_text(value: Any) -> str:
    return encode_basestring(value) if type(value) is str else json.dumps(value, ensure_ascii=False)


def _sample_json(s: Sample, base: str | os.PathLike | None) -> str:
    """A sample's line of the manifest file: a JSON object of its non-empty
    fields, built from json's string encoder (a million samples would take
    seconds through json.dumps)."""
    if not (s.caption or s.image or s.image_sha256):
        return f'{{"id": {_json_text(s.id)}}}'
    image = portable_path(s.image, base) if s.image else s.image
    return "{" + ", ".join(f'"{k}": {_json_text(v)}' for k, v in
                           zip(SAMPLE_KEYS, (s.id, s.caption, image, s.image_sha256)) if v) + "}"


def _hash_line(s: Sample) -> str:
    """``json.dumps([id, caption, image_sha256], ensure_ascii=False)``, the
    line the content hash takes per sample, built from json's own string
    encoder: a million dumps calls would take seconds."""
    if type(s.id) is str and type(s.caption) is str and type(s.image_sha256) is str:
        return (f"[{encode_basestring(s.id)}, {encode_basestring(s.caption)}, "
                f"{encode_basestring(s.image_sha256)}]\n")
    return json.dumps([s.id, s.caption, s.image_sha256], ensure_ascii=False) + "\n"


@dataclass
class Manifest:
    """The prepared samples of one dataset, in order."""

    dataset: str
    samples: list[Sample]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    @property
    def captions(self) -> list[str]:
        return [s.caption for s in self.samples]

    @property
    def content_sha256(self) -> str:
        """Hash of (id, caption, image sha256) of every sample, in order; not of paths."""
        return hashlib.sha256("".join(map(_hash_line, self.samples)).encode("utf-8")).hexdigest()

    @property
    def ids_only(self) -> bool:
        """Whether the samples are ids alone (no caption, no image): only
        precomputed (``file:``) features can be aligned on them."""
        return all(not s.caption and not s.image for s in self.samples)

    def _header(self, base: str | os.PathLike | None) -> dict[str, Any]:
        params = dict(self.params)
        if isinstance(params.get("path"), str):
            params["path"] = portable_path(params["path"], base)
        return {"manifest_version": MANIFEST_VERSION, "dataset": self.dataset, "params": params,
                "n_samples": self.n, "content_sha256": self.content_sha256}

    def to_dict(self, base: str | os.PathLike | None = None) -> dict[str, Any]:
        """The manifest as JSON data; with ``base`` (the manifest's folder),
        paths inside the working folder are written relative to ``base``."""
        return {**self._header(base), "samples": [json.loads(_sample_json(s, base))
                                                  for s in self.samples]}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest as JSON, atomically (temporary file + os.replace):
        the header indented, then one sample per line."""
        path = Path(path)
        head = json.dumps(self._header(path.parent), ensure_ascii=False, indent=1)
        with atomic_output(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(head[:-2] + ',\n "samples": [')
                f.write(",".join(["\n  " + _sample_json(s, path.parent) for s in self.samples]))
                f.write("\n ]\n}\n")
        return path

    def check_images(self) -> None:
        """Raise if an image file is missing or changed since the manifest was written."""
        for s in self.samples:
            if not os.path.exists(s.image):
                raise DatasetError(f"sample {s.id}: image file {s.image} is missing; "
                                   "prepare the dataset again")
            if s.image_sha256 and sha256_file(s.image) != s.image_sha256:
                raise DatasetError(f"sample {s.id}: image file {s.image} changed since the manifest "
                                   "was written (sha256 differs); prepare the dataset again")


def load_manifest(path: str | os.PathLike) -> Manifest:
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        base = path.resolve().parent
        samples = [Sample(s["id"], s.get("caption", ""), _absolute(s.get("image", ""), base),
                          s.get("image_sha256", "")) for s in d["samples"]]
        params = dict(d.get("params", {}))
        if isinstance(params.get("path"), str):
            params["path"] = _absolute(params["path"], base)
        m = Manifest(d["dataset"], samples, params)
    except FileNotFoundError:
        raise DatasetError(f"{path}: manifest not found; write it with `prh prepare-dataset`") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path}: not a prh manifest ({type(e).__name__}: {e})") from None
    if "content_sha256" in d and d["content_sha256"] != m.content_sha256:
        raise DatasetError(f"{path}: content_sha256 does not match its samples; the file was edited")
    return m


#: manifest columns that can mark blocks of samples (config calibration.blocks)
BLOCK_COLUMNS = ("image", "image_sha256", "caption")


def sample_blocks(manifest: str | os.PathLike, column: str,
                  ids: Sequence[str] | None = None) -> list[str]:
    """A block label per sample: the manifest's ``column`` (``image`` or
    ``image_sha256``: several captions of one image form one block), in the
    order of ``ids`` (the sample order of the features; checked against the
    manifest)."""
    if column not in BLOCK_COLUMNS:
        raise DatasetError(f"blocks column {column!r} is not a manifest column; "
                           f"choose one of {', '.join(BLOCK_COLUMNS)}")
    m = load_manifest(manifest)
    labels = {s.id: getattr(s, column) for s in m.samples}
    if ids is None:
        return [labels[s.id] for s in m.samples]
    missing = [i for i in ids if i not in labels]
    if missing:
        raise DatasetError(f"{manifest}: sample {missing[0]!r} of the features is not in the "
                           "manifest; rerun the workflow")
    return [labels[i] for i in ids]


def image_error(err: Exception, path: str | os.PathLike, where: str, remedy: str) -> DatasetError:
    """One line for an image PIL cannot (or will not) decode: ``where`` names
    the row or sample, ``remedy`` what to do."""
    from PIL import Image

    if isinstance(err, Image.DecompressionBombError):
        why = f"is refused: {str(err).rstrip('.')}; downscale it or drop it"
    else:
        text = str(err).strip().splitlines()
        why = f"cannot be read ({type(err).__name__}{': ' + text[0] if text else ''}); {remedy}"
    return DatasetError(f"{where}: image file {path} {why}")


def load_image(sample: Sample):
    """The sample's image as RGB; transparent pixels composited on white."""
    from PIL import Image

    try:
        with Image.open(sample.image) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return Image.alpha_composite(bg, im).convert("RGB")
            return im.convert("RGB")
    except Exception as e:  # PIL raises many types for bad files
        raise image_error(e, sample.image, f"sample {sample.id}",
                          "replace or drop the file and prepare the dataset again") from None


def check_n(n_samples: Any, n_total: int, name: str) -> int:
    try:
        n = int(n_samples)
    except (TypeError, ValueError):
        raise DatasetError(f"n_samples must be an integer, got {n_samples!r}") from None
    if not 1 <= n <= n_total:
        raise DatasetError(f"{name}: n_samples={n} but the dataset has {n_total} samples; "
                           f"choose 1..{n_total}")
    return n
