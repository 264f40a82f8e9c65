"""Plumbing shared by every workflow job: atomic outputs, the HDF5 opener,
TSV reading and writing, logs, threads.

Files written through :func:`atomic_output` appear whole or not at all
(temporary file in the same folder, then rename), so an interrupted job never
leaves a truncated output behind. :func:`logged` sends a job's output and
errors to its log file.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import signal
import threading
import math
import numbers
import logging
import os
import re
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def temp_prefix(path: str | os.PathLike) -> str:
    """The prefix of a temporary file beside ``path``: ``.<name>.w<pid>-<host>.``
    (mkstemp adds 8 random characters and ``.tmp``). The writer's process id
    and host let a later run tell a temporary file of a killed writer from a
    live one's (:func:`prh.reruns.remove_orphan_temps`)."""
    return f".{Path(path).name}.w{os.getpid()}-{_host()}."


TEMP_WRITER = re.compile(r"\.w(?P<pid>[0-9]+)-(?P<host>[A-Za-z0-9_]+)\.[a-z0-9_]+\.tmp$")


def temp_writer(name: str) -> tuple[int, str] | None:
    """(pid, host) of a temporary file's writer from its name, or None for a
    name without them (written before they were recorded)."""
    m = TEMP_WRITER.search(name)
    return (int(m["pid"]), m["host"]) if m else None


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file onto ``path``. mkstemp makes files
    private (0600); they get the mode a plain open would give them."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


NO_SPACE = "No space left on device"


def is_disk_full(err: BaseException) -> bool:
    """Whether an error (or one it was raised from) is a full disk; h5py puts
    the words on the second line of a generic message."""
    seen = 0
    while err is not None and seen < 10:
        if getattr(err, "errno", None) == errno.ENOSPC or NO_SPACE in str(err):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def disk_full_error(path: str | os.PathLike) -> OSError:
    return OSError(errno.ENOSPC, f"{NO_SPACE} while writing {path}; free space there and rerun")


def error_line(err: BaseException) -> str:
    """One line for an error: a full disk says so first, an OSError names its
    file, anything else is the message's first line."""
    if is_disk_full(err) and NO_SPACE not in str(err).split("\n", 1)[0]:
        return f"{NO_SPACE}"
    if isinstance(err, OSError) and err.strerror:
        return f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def terminate_on_sigterm() -> None:
    """Turn SIGTERM (a cluster's time limit, ``kill``) into SystemExit, so that
    temporary files are removed by the ``finally`` blocks that own them."""
    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success,
    delete it on any error (a full disk is reported naming ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except Exception as err:
        if is_disk_full(err):
            raise disk_full_error(path) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def open_h5(path: str | os.PathLike, what: str):
    """An HDF5 file opened for reading, or a one-line ValueError naming it
    (the one opener of every prh file format)."""
    import h5py

    if not os.path.exists(path):
        raise ValueError(f"cannot read {what} {path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"cannot read {what} {path}: {err}") from None


def fmt(value: Any) -> str:
    """A TSV cell: integers as they are, other numbers with 6 significant
    digits, NaN and None empty."""
    if value is None or isinstance(value, (bool, numbers.Integral)):
        return "" if value is None else str(value)
    if isinstance(value, numbers.Real):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_tsv(out: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with atomic_output(out) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(columns)
            for row in rows:
                w.writerow(row)


def read_tsv(path: str | os.PathLike, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a TSV as dicts of strings; a file without the expected columns
    is a one-line ValueError naming it and the missing columns."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: not a prh table: missing column(s) "
                                 f"{', '.join(missing)}")
            return list(reader)
    except OSError as err:
        raise ValueError(f"cannot read table {path}: {err.strerror or err}") from None


@contextlib.contextmanager
def logged(log_path: str | os.PathLike) -> Iterator[None]:
    """Send a job's stdout, stderr and ``prh`` log records to its log file; on
    failure write the traceback there too and a one-line error to the
    console, then re-raise."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console = sys.__stderr__
    terminate_on_sigterm()
    with open(log_path, "a", buffering=1) as log:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
        prh_log = logging.getLogger("prh")
        old_level = prh_log.level
        prh_log.addHandler(handler)
        prh_log.setLevel(logging.INFO)
        try:
            yield
        except BaseException as err:
            traceback.print_exc(file=log)
            line = f"error: {type(err).__name__}: {error_line(err)}"
            log.write(line + "\n")
            if console is not None:
                console.write(f"{line} (full log: {log_path})\n")
            raise
        finally:
            prh_log.removeHandler(handler)
            prh_log.setLevel(old_level)
            sys.stdout, sys.stderr = old_out, old_err


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))
