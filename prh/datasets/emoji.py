"""The ``emoji`` dataset (the offline default): the npm package
emoji-datasource-google, fetched once into the cache folder and checked by
sha256; images and names as captions."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..cachedir import cache_root
from .manifest import DEFAULT_SEED, DatasetError, Manifest, Sample, check_n, sha256_file

log = logging.getLogger(__name__)

EMOJI_PACKAGE = "emoji-datasource-google"
EMOJI_VERSION = "16.0.0"
EMOJI_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"

def _emoji_root() -> Path:
    return cache_root() / f"{EMOJI_PACKAGE}-{EMOJI_VERSION}"


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


def prepare_emoji(n_samples: int | None, seed: int = DEFAULT_SEED) -> Manifest:
    pkg = ensure_emoji()
    entries = json.loads((pkg / "emoji.json").read_text(encoding="utf-8"))
    entries = [e for e in entries if e.get("has_img_google") and e.get("name")]
    entries.sort(key=lambda e: (e.get("sort_order", 0), e["unified"]))
    n_total = len(entries)
    n = n_total if n_samples is None else check_n(n_samples, n_total, "emoji")
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
