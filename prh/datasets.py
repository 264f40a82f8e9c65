"""Paired image/caption datasets, by name, and the manifest that fixes their samples.

A dataset gives N samples (stable id, image, caption) in a fixed order.
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

The cache folder is ``$PRH_CACHE`` if set, else ``~/.cache/prh``.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .jobio import atomic_output

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1

EMOJI_PACKAGE = "emoji-datasource-google"
EMOJI_VERSION = "16.0.0"
EMOJI_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"
DEFAULT_N_SAMPLES = 1024
DEFAULT_SEED = 0


class DatasetError(ValueError):
    """A dataset that cannot be prepared or read; the message says which and why."""


def cache_dir() -> Path:
    """Where downloaded data is unpacked: ``$PRH_CACHE`` or ``~/.cache/prh``."""
    env = os.environ.get("PRH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prh"


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


@dataclass(frozen=True)
class Sample:
    id: str
    caption: str
    image: str  # absolute path of the image file (the manifest file may record it relative)
    image_sha256: str = ""


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
        h = hashlib.sha256()
        for s in self.samples:
            h.update(json.dumps([s.id, s.caption, s.image_sha256], ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def to_dict(self, base: str | os.PathLike | None = None) -> dict[str, Any]:
        """The manifest as JSON data; with ``base`` (the manifest's folder),
        paths inside the working folder are written relative to ``base``."""
        params = dict(self.params)
        if isinstance(params.get("path"), str):
            params["path"] = portable_path(params["path"], base)
        return {
            "manifest_version": MANIFEST_VERSION,
            "dataset": self.dataset,
            "params": params,
            "n_samples": self.n,
            "content_sha256": self.content_sha256,
            "samples": [{"id": s.id, "caption": s.caption,
                         "image": portable_path(s.image, base) if s.image else s.image,
                         "image_sha256": s.image_sha256} for s in self.samples],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest as JSON, atomically (temporary file + os.replace)."""
        path = Path(path)
        with atomic_output(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(path.parent), f, ensure_ascii=False, indent=1)
                f.write("\n")
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
        samples = [Sample(s["id"], s["caption"], _absolute(s["image"], base),
                          s.get("image_sha256", "")) for s in d["samples"]]
        params = dict(d.get("params", {}))
        if isinstance(params.get("path"), str):
            params["path"] = _absolute(params["path"], base)
        m = Manifest(d["dataset"], samples, params)
    except FileNotFoundError:
        raise DatasetError(f"{path}: manifest not found; write it with `prh prepare-dataset`") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
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


def _image_error(err: Exception, path: str | os.PathLike, where: str, remedy: str) -> DatasetError:
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
        raise _image_error(e, sample.image, f"sample {sample.id}",
                          "replace or drop the file and prepare the dataset again") from None


# --- emoji -----------------------------------------------------------------

def _emoji_root() -> Path:
    return cache_dir() / f"{EMOJI_PACKAGE}-{EMOJI_VERSION}"


def _fetch_emoji_tarball(dest: Path) -> Path:
    """The npm tarball, from $PRH_EMOJI_TARBALL or `npm pack`, sha256 checked."""
    given = os.environ.get("PRH_EMOJI_TARBALL")
    if given:
        tgz = Path(given)
    else:
        tgz = dest / f"{EMOJI_PACKAGE}-{EMOJI_VERSION}.tgz"
        if not tgz.exists():
            if shutil.which("npm") is None:
                raise DatasetError(f"the emoji dataset needs `npm` to fetch {EMOJI_PACKAGE}@{EMOJI_VERSION}; "
                                   "install Node.js/npm, or set PRH_EMOJI_TARBALL to the .tgz")
            log.info("fetching %s@%s with npm pack into %s", EMOJI_PACKAGE, EMOJI_VERSION, dest)
            r = subprocess.run(["npm", "pack", f"{EMOJI_PACKAGE}@{EMOJI_VERSION}", "--silent",
                                "--pack-destination", str(dest)],
                               capture_output=True, text=True)
            if r.returncode != 0 or not tgz.exists():
                msg = (r.stderr or r.stdout).strip().splitlines()
                raise DatasetError(f"npm pack {EMOJI_PACKAGE}@{EMOJI_VERSION} failed: "
                                   f"{msg[-1] if msg else 'no output'}")
    digest = sha256_file(tgz)
    if digest != EMOJI_SHA256:
        raise DatasetError(f"{tgz}: sha256 {digest} is not the pinned {EMOJI_SHA256}; "
                           "delete it and fetch again")
    return tgz


def ensure_emoji() -> Path:
    """Fetch and unpack the emoji package once; return the unpacked `package` folder."""
    root = _emoji_root()
    done = root / "package" / ".complete"
    if done.exists():
        return root / "package"
    root.parent.mkdir(parents=True, exist_ok=True)
    # Unpack into a private folder, then rename: concurrent first uses (parallel
    # workflow jobs) never see a half-unpacked tree.
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        tgz = _fetch_emoji_tarball(work)
        with tarfile.open(tgz, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.name in ("package/emoji.json", "package/LICENSE", "package/package.json")
                       or m.name.startswith("package/img/google/64/")]
            tar.extractall(work, members=members, filter="data")
        (work / "package" / ".complete").write_text(EMOJI_SHA256 + "\n")
        if tgz.parent == work:
            tgz.unlink()
        try:
            os.rename(work, root)
        except OSError:
            if not done.exists():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return root / "package"


def _prepare_emoji(n_samples: int | None, seed: int = DEFAULT_SEED) -> Manifest:
    pkg = ensure_emoji()
    entries = json.loads((pkg / "emoji.json").read_text(encoding="utf-8"))
    entries = [e for e in entries if e.get("has_img_google") and e.get("name")]
    entries.sort(key=lambda e: (e.get("sort_order", 0), e["unified"]))
    n_total = len(entries)
    n = n_total if n_samples is None else _check_n(n_samples, n_total, "emoji")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n_total, size=n, replace=False))
    img_dir = pkg / "img" / "google" / "64"
    samples = []
    for i in pick:
        e = entries[int(i)]
        path = img_dir / e["image"]
        if not path.exists():
            raise DatasetError(f"sample {e['unified']}: image {path} missing from the emoji package")
        samples.append(Sample(e["unified"], e["name"].lower(), str(path), sha256_file(path)))
    return Manifest("emoji", samples, {"n_samples": n, "seed": seed,
                                        "source": f"npm:{EMOJI_PACKAGE}@{EMOJI_VERSION}",
                                        "source_sha256": EMOJI_SHA256})


def _check_n(n_samples: Any, n_total: int, name: str) -> int:
    try:
        n = int(n_samples)
    except (TypeError, ValueError):
        raise DatasetError(f"n_samples must be an integer, got {n_samples!r}") from None
    if not 1 <= n <= n_total:
        raise DatasetError(f"{name}: n_samples={n} but the dataset has {n_total} samples; "
                           f"choose 1..{n_total}")
    return n


# --- Hugging Face datasets (prh_wit) ------------------------------------------

def _prepare_hub(n_samples: int | None, *, path: str = "minhuh/prh", revision: str | None = "wit_1024",
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
    n = len(ds) if n_samples is None else _check_n(n_samples, len(ds), name)
    ds = ds.select(range(n))
    if isinstance(ds.features[image_column], hfds.Image):
        ds = ds.cast_column(image_column, hfds.Image(decode=False))  # keep the original bytes
    key = hashlib.sha256(json.dumps([os.path.abspath(path) if local else path, revision, split,
                                     image_column]).encode()).hexdigest()[:12]
    out_dir = cache_dir() / "datasets" / f"{name}-{key}"
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


# --- folder ----------------------------------------------------------------

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
        raise _image_error(err, path, where, "replace or drop it") from None


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


def _prepare_folder(n_samples: int | None, *, path: str | None = None, name: str = "folder") -> Manifest:
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
    n = len(rows) if n_samples is None else _check_n(n_samples, len(rows), name)
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


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    prepare: Callable[..., Manifest]


DATASETS: dict[str, DatasetInfo] = {
    "emoji": DatasetInfo("emoji", f"{EMOJI_PACKAGE}@{EMOJI_VERSION} (npm): emoji images and names, "
                         "offline default; options: seed", _prepare_emoji),
    "prh_wit": DatasetInfo("prh_wit", "the paper's WIT pairs: Hugging Face minhuh/prh rev wit_1024 (needs the hub); "
                           "options: path, revision, split, image_column, text_column, caption_idx",
                           _prepare_hub),
    "folder": DatasetInfo("folder", "your own images and captions: folder:<dir or captions file>; "
                          "captions.csv / .tsv (columns image or file, caption or text, optional "
                          "id) or .jsonl (one object per line, same keys); image paths relative "
                          "to the captions file, inside its folder (others are refused); "
                          "prepare-dataset takes all rows",
                          _prepare_folder),
}


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
