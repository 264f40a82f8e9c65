"""The ``folder`` dataset: a user's own images and a captions file (CSV, TSV or
JSONL) beside them, and the content hash that makes an edit of either rerun
what depends on it."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .manifest import DatasetError, Manifest, Sample, check_n, image_error, sha256_file

def read_captions_text(p: Path) -> str:
    """A captions file's text: UTF-8 with or without a byte-order mark; a byte
    that is not UTF-8 is a one-line error naming the file and line."""
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DatasetError(f"{p}: line {line} is not UTF-8 (byte 0x{data[e.start]:02x}); "
                           "save the file as UTF-8") from None


def folder_sha256(path: str | os.PathLike) -> str:
    """Content hash of a folder dataset: every non-hidden file under the captions
    file's folder (the captions file and the images), by relative path and
    bytes. The workflow passes it to the dataset step, so editing a caption or
    replacing an image reruns the dataset and what follows, and a touch does
    not. Preparing the dataset refuses images it would not cover (outside the
    folder, hidden, not regular files)."""
    p = Path(path).expanduser().resolve()
    root = p if p.is_dir() else p.parent
    h = hashlib.sha256()
    if not root.is_dir():
        return ""
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}\0{sha256_file(f)}\n".encode("utf-8"))
    return h.hexdigest()


CAPTION_FILES = ("captions.csv", "captions.tsv", "captions.jsonl")


def _check_image(path: Path, where: str) -> None:
    """Fail at prepare time, naming the row, rather than in an embedding job:
    verify() checks a PNG's checksums, load() decodes (a truncated file)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
    except Exception as err:  # PIL raises many types for bad files
        raise image_error(err, path, where, "replace or drop it") from None


def _image_in_folder(root: Path, img: Any, where: str) -> Path:
    """The resolved path of a row's image, which must be a regular,
    non-hidden file inside ``root`` (the folder :func:`folder_sha256` covers)."""
    if not isinstance(img, str):
        raise DatasetError(f"{where}: image {img!r} is not a file path")
    try:
        path = (root / img).resolve()
    except (OSError, ValueError) as err:
        raise DatasetError(f"{where}: image path {img!r} cannot be used ({err})") from None
    if not path.is_relative_to(root):
        raise DatasetError(f"{where}: image {img!r} ({path}) is outside the dataset folder {root}; "
                           "copy the image into the folder (a symbolic link out of it does not "
                           "count) so that its content is part of the dataset")
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        raise DatasetError(f"{where}: image {img!r} is a hidden file or in a hidden folder, which "
                           "the dataset's content hash skips; rename it")
    if not path.exists():
        raise DatasetError(f"{where}: image file {path} does not exist")
    if not path.is_file():
        raise DatasetError(f"{where}: image {path} is not a regular file")
    return path


def prepare_folder(n_samples: int | None, *, path: str | None = None, name: str = "folder") -> Manifest:
    if not path:
        raise DatasetError("folder: give the captions file or folder, e.g. --dataset folder:/data/pairs "
                           "or --dataset-option path=/data/pairs/captions.csv")
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        found = [p / f for f in CAPTION_FILES if (p / f).exists()]
        if not found:
            raise DatasetError(f"folder: {p} has none of {', '.join(CAPTION_FILES)}")
        p = found[0]
    if not p.exists():
        raise DatasetError(f"folder: {p} does not exist")
    if not p.is_file():
        raise DatasetError(f"folder: {p} is not a regular file; give a captions file or folder")
    rows: list[dict[str, Any]]
    if p.suffix == ".jsonl":
        rows = []
        for ln, line in enumerate(read_captions_text(p).splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{p}:{ln}: not JSON ({e})") from None
                if not isinstance(rows[-1], dict):
                    raise DatasetError(f"{p}:{ln}: not a JSON object; write one "
                                       '{"image": ..., "caption": ...} per line')
    elif p.suffix in (".csv", ".tsv"):
        import io

        reader = csv.DictReader(io.StringIO(read_captions_text(p), newline=""),
                                delimiter="\t" if p.suffix == ".tsv" else ",")
        try:
            rows = list(reader)
        except csv.Error as e:
            raise DatasetError(f"{p}: line {reader.line_num}: not {p.suffix[1:].upper()} ({e})") from None
    else:
        raise DatasetError(f"folder: {p} is not .csv, .tsv or .jsonl")
    if not rows:
        raise DatasetError(f"folder: {p} has no rows")
    n = len(rows) if n_samples is None else check_n(n_samples, len(rows), name)
    samples, seen = [], set()
    for ln, row in enumerate(rows[:n], 1):
        img = row.get("image") or row.get("file")
        cap = row.get("caption") if row.get("caption") is not None else row.get("text")
        if not img or cap is None:
            raise DatasetError(f"{p}: row {ln} needs an 'image' (or 'file') and a 'caption' (or 'text')")
        if not isinstance(cap, str) or not isinstance(row.get("id", ""), (str, int, type(None))):
            raise DatasetError(f"{p}: row {ln}: the caption and id must be text; write them as "
                               "JSON strings")
        if not cap.strip():
            raise DatasetError(f"{p}: row {ln} ({img}): empty caption; write one or drop the row")
        img_path = _image_in_folder(p.parent, img, f"{p}: row {ln}")
        sid = str(row.get("id") or img)
        if sid in seen:
            raise DatasetError(f"{p}: row {ln}: sample id {sid!r} appears twice")
        seen.add(sid)
        _check_image(img_path, f"{p}: row {ln}")
        samples.append(Sample(sid, str(cap), str(img_path), sha256_file(img_path)))
    return Manifest(name, samples, {"n_samples": n, "path": str(p)})
