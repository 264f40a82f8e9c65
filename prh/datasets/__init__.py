"""Paired image/caption datasets (and lists of ids alone), by name, and the
manifest that fixes their samples.

A dataset gives N samples (stable id, image, caption; an ``ids`` dataset the
ids alone) in a fixed order.
Preparing it (:func:`prepare`) returns a :class:`Manifest`: the ids, captions,
image file paths, the sha256 of every image file and one content hash over
all of them. Every later stage reads the samples through the manifest, so two
models embed exactly the same images and captions in the same order, and an
embedding file records the manifest's ``content_sha256`` to show which
samples it holds.

Datasets (``DATASETS``):

- ``emoji`` (offline default): the npm package emoji-datasource-google@16.0.0,
  fetched with ``npm pack`` on first use into the cache folder, checked by
  sha256 and unpacked there (64 px PNGs + ``emoji.json``). Caption: the emoji's
  name, lower-cased ("red apple"). Id: its ``unified`` code point string.
  Entries with ``has_img_google``, in ``sort_order``; ``n_samples`` of them
  drawn with a seeded generator and kept in that order.
- ``prh_wit``: the paper's data, Hugging Face dataset ``minhuh/prh`` revision
  ``wit_1024`` split ``train`` through ``datasets.load_dataset``. Columns
  ``image`` and ``text`` (a list of captions; ``caption_idx`` picks one, 0 as
  the paper). Images are written once into the cache folder so the manifest
  can name files. Options ``path``, ``revision``, ``split``, ``image_column``,
  ``text_column``, ``caption_idx`` point it elsewhere (a local folder of
  parquet files works the same way). The first ``n_samples`` rows.
- ``folder``: a user's own data. Option ``path``: a CSV or JSONL file of
  (image file, caption) rows, or a folder holding ``captions.csv`` or
  ``captions.jsonl``. Columns: ``image`` (or ``file``) and ``caption`` (or
  ``text``), optional ``id`` (default: the image path relative to the folder).
  Image paths are relative to the captions file and must lead to regular,
  non-hidden files inside its folder, the files its content hash
  (:func:`folder_sha256`) covers, so that editing any image used reruns what
  depends on it: ``../x.png``, absolute paths and symbolic links out of the
  folder are refused naming the row. Each image is decoded when the dataset
  is prepared: truncated files and decompression bombs (over twice
  ``PIL.Image.MAX_IMAGE_PIXELS``) are refused naming the row. The first
  ``n_samples`` rows.
- ``ids``: sample ids alone, one per line of the UTF-8 text file ``path``,
  for runs whose models are all precomputed features (``file:`` sources,
  named by these ids). No captions, no images: the config refuses any other
  model on it. Empty lines, ids with spaces around them or control
  characters in them, and repeated ids are refused naming the line. The
  first ``n_samples`` ids (in the config, all of them when ``n_samples`` is
  left out).

The cache folder is :func:`prh.cachedir.cache_root`'s. Modules:
:mod:`.manifest` (the manifest, image loading), :mod:`.emoji`,
:mod:`.huggingface` (``prh_wit``), :mod:`.folder`, :mod:`.ids`; this one names them and
checks their options.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from .emoji import EMOJI_PACKAGE, EMOJI_SHA256, EMOJI_VERSION, ensure_emoji, prepare_emoji
from .folder import CAPTION_FILES, folder_sha256, prepare_folder, read_captions_text
from .huggingface import prepare_hub
from .ids import count_ids, ids_sha256, prepare_ids, read_ids
from .manifest import (BLOCK_COLUMNS, DEFAULT_N_SAMPLES, DEFAULT_SEED, MANIFEST_VERSION,
                       DatasetError, Manifest, Sample, load_image, load_manifest,
                       portable_path, sample_blocks, sha256_file)

__all__ = ["BLOCK_COLUMNS", "CAPTION_FILES", "DATASETS", "DEFAULT_N_SAMPLES", "DEFAULT_SEED",
           "EMOJI_PACKAGE", "EMOJI_SHA256", "EMOJI_VERSION", "MANIFEST_VERSION", "TAKES_ALL",
           "DatasetError", "DatasetInfo", "Manifest", "Sample", "count_ids",
           "dataset_options", "ensure_emoji", "folder_sha256", "ids_sha256", "load_image",
           "load_manifest", "local_sha256", "parse_dataset_name", "portable_path", "prepare",
           "prepare_emoji", "prepare_folder", "prepare_hub", "prepare_ids", "read_captions_text",
           "read_ids", "sample_blocks", "sha256_file"]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    prepare: Callable[..., Manifest]
    #: an entry of config.yaml's ``datasets:`` with this source: what `prh
    #: datasets` prints, so the listing spells the keys as the config does
    example: dict[str, Any]


DATASETS: dict[str, DatasetInfo] = {
    "emoji": DatasetInfo(
        "emoji", f"emoji images and their names, from the npm package {EMOJI_PACKAGE}@{EMOJI_VERSION} "
        "(offline default); options: seed", prepare_emoji,
        {"source": "emoji", "n_samples": DEFAULT_N_SAMPLES, "options": {"seed": DEFAULT_SEED}}),
    "prh_wit": DatasetInfo(
        "prh_wit", "the paper's WIT pairs: Hugging Face minhuh/prh rev wit_1024 (needs the hub); "
        "path: a hub id or a local folder of parquet files; options: revision, split, "
        "image_column, text_column, caption_idx", prepare_hub,
        {"source": "prh_wit", "n_samples": 1024, "path": "minhuh/prh",
         "options": {"revision": "wit_1024", "caption_idx": 0}}),
    "folder": DatasetInfo(
        "folder", "your own images and captions; path (required): a folder holding "
        f"{', '.join(CAPTION_FILES)}, or that file; columns image (or file), caption (or "
        "text), optional id (.jsonl: one object per line, same keys); image paths relative "
        "to the captions file, inside its folder (others are refused); prepare-dataset "
        "takes all rows", prepare_folder,
        {"source": "folder", "n_samples": 80, "path": "data/pairs"}),
    "ids": DatasetInfo(
        "ids", "sample ids alone, for file: models only (precomputed features named by these "
        "ids); path (required): a UTF-8 text file, one id per line; n_samples: the first n "
        "ids (all when left out)", prepare_ids,
        {"source": "ids", "path": "data/ids.txt"}),
}

#: the sources whose data is the user's own file: a command line without
#: --n-samples takes all of it (the others take DEFAULT_N_SAMPLES)
TAKES_ALL = ("folder", "ids")


def local_sha256(source: str, path: str) -> str:
    """Content hash of a dataset's local data (``folder``, ``ids``; "" for
    the others); the workflow passes it to the dataset step, so an edit
    reruns it and a touch does not."""
    if source == "folder":
        return folder_sha256(path)
    if source == "ids":
        return ids_sha256(path)
    return ""


def parse_dataset_name(name: str) -> tuple[str, dict[str, Any]]:
    """'folder:/x' -> ('folder', {'path': '/x'}); unknown names raise, listing the known ones."""
    base, sep, arg = name.partition(":")
    if base not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return base, ({"path": arg} if sep else {})


def dataset_options(base: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against dataset ``base``'s preparer: unknown names
    are refused listing the known ones, and the integer ones (``seed``,
    ``caption_idx``) converted from text (``--dataset-option seed=1``), naming
    the option whose value is not a whole number."""
    params = dict(list(inspect.signature(DATASETS[base].prepare).parameters.items())[1:])
    out = {}
    for key, value in options.items():
        if key == "n_samples":
            raise DatasetError(f"dataset {base}: n_samples is not an option; give it with "
                               "--n-samples (or the dataset's n_samples key)")
        if key not in params:
            raise DatasetError(f"dataset {base} has no option {key!r}; its options: "
                               f"{', '.join(params)} (see `prh datasets`)")
        default = params[key].default
        if isinstance(default, int) and not isinstance(default, bool):
            try:
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    raise ValueError
                value = int(value)
            except ValueError:
                raise DatasetError(f"dataset {base}: option {key}={value!r} is not an integer; "
                                   f"give a whole number, e.g. {key}={default}") from None
        out[key] = value
    return out


def prepare(name: str, n_samples: int | None = DEFAULT_N_SAMPLES, /, **options: Any) -> Manifest:
    """Prepare dataset ``name`` (with ``options``) and return its manifest."""
    base, extra = parse_dataset_name(name)
    return DATASETS[base].prepare(n_samples, **dataset_options(base, {**extra, **options}))
