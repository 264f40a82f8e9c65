"""The ``ids`` dataset: sample ids alone, one per line of a UTF-8 text file.

It carries no images and no captions, so only ``file:`` models (features
computed elsewhere, named by these ids) can run on it; the config refuses
any other model on it at plan time. Its manifest holds the ids and nothing
per sample besides, so preparing a million ids takes about a second: no
file is opened but the ids file itself. The manifest's content hash covers
the ids in order, so an edited id list gives another hash and every
imported features file must be imported again.

The file is untrusted input: it must be a regular file of UTF-8 text; an
empty line, an id with spaces around it or a control character in it, a
repeated id, and ``n_samples`` beyond the number of ids are each refused in
one line naming the file, the line and the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .manifest import DatasetError, Manifest, Sample, sha256_file

# Control characters other than the line break: HDF5 stores strings up to
# a NUL, and a tab or carriage return in an id is a mistake no one sees.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def read_ids(path: str | os.PathLike) -> list[str]:
    """The ids of an ids file, in order; every problem is a one-line
    :class:`DatasetError` naming the file and the line."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"ids: {p} does not exist; write one sample id per line")
    if not p.is_file():
        raise DatasetError(f"ids: {p} is not a regular file; give a text file with one "
                           "sample id per line")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DatasetError(f"{p}: line {line} is not UTF-8 (byte 0x{data[e.start]:02x}); "
                           "save the file as UTF-8") from None
    text = text.replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise DatasetError(f"{p}: no ids; write one sample id per line")
    bad = _CONTROL.search(text)
    if bad:
        raise DatasetError(f"{p}: line {_line_of(text, bad.start())} holds the control "
                           f"character {bad.group()!r}; write one plain id per line")
    ids = text.split("\n")
    # one pass in C for the common case; Python loops only once something is wrong
    if any(not i or i != i.strip() for i in ids):
        for ln, i in enumerate(ids, 1):
            if not i.strip():
                raise DatasetError(f"{p}: line {ln} is empty; write one id per line, "
                                   "no blank lines")
            if i != i.strip():
                raise DatasetError(f"{p}: line {ln}: id {i!r} has spaces around it; ids are "
                                   "compared exactly, so remove them")
    if len(set(ids)) != len(ids):
        first: dict[str, int] = {}
        for ln, i in enumerate(ids, 1):
            if i in first:
                raise DatasetError(f"{p}: line {ln}: id {i!r} appears again (first on line "
                                   f"{first[i]}); ids must be unique")
            first[i] = ln
    return ids


def count_ids(path: str | os.PathLike) -> int:
    """How many ids the file holds (checked as :func:`read_ids` checks them)."""
    return len(read_ids(path))


def ids_sha256(path: str | os.PathLike) -> str:
    """Content hash of an ids file; the workflow passes it to the dataset
    step, so editing the file reruns it and a touch does not."""
    p = Path(path).expanduser()
    return sha256_file(p) if p.is_file() else ""


def prepare_ids(n_samples: int | None, *, path: str | None = None, name: str = "ids") -> Manifest:
    """The first ``n_samples`` ids of the file at ``path`` (all when None)."""
    if not path:
        raise DatasetError("ids: give the ids file, e.g. --dataset ids:data/ids.txt or, in the "
                           "config, path: data/ids.txt")
    p = Path(path).expanduser().resolve()
    ids = read_ids(p)
    n = len(ids)
    if n_samples is not None:
        try:
            n = int(n_samples)
        except (TypeError, ValueError):
            raise DatasetError(f"{p}: n_samples must be an integer, got {n_samples!r}") from None
        if not 1 <= n <= len(ids):
            raise DatasetError(f"{p}: n_samples={n} but the file has {len(ids)} ids; choose "
                               f"1..{len(ids)} or leave n_samples out to take them all")
    return Manifest(name, [Sample(i, "", "") for i in ids[:n]], {"n_samples": n, "path": str(p)})
