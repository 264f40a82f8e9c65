"""Plumbing shared by every workflow job: atomic outputs, the HDF5 opener,
TSV reading and writing, logs, threads.

Files written through :func:`atomic_output` appear whole or not at all
(temporary file in the same folder, then rename), so an interrupted job never
leaves a truncated output behind, and never in place of anything but a
regular file (:func:`check_output_target`). :func:`logged` sends a job's
output and errors to its log file.
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
import stat
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


_SPECIAL = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
            (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file"))


def check_output_target(path: str | os.PathLike) -> None:
    """Refuse an output path that exists and is not a regular file: the
    rename that publishes a file would replace a device, pipe, socket, folder
    or symbolic link with a regular file (as root, swapping a system device
    or ``/dev/stdout``). A link is not followed either: writing through it
    would let whoever made the link choose which file prh overwrites. A
    one-line ValueError names the path."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror}") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        try:
            target = os.stat(path).st_mode
        except OSError:
            kind = "a symbolic link"
        else:
            kind = "a symbolic link to " + next((k for test, k in _SPECIAL if test(target)),
                                                "a special file")
        remedy = "give the path of the file itself, or remove the link"
    else:
        kind = next((k for test, k in _SPECIAL if test(mode)), "a special file")
        remedy = "choose a file path for the output"
    raise ValueError(f"refusing to write {path}: it is {kind}, not a regular file; {remedy}")


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file onto ``path``, never over anything
    but a regular file (:func:`check_output_target`). mkstemp makes files
    private (0600); they get the mode a plain open would give them."""
    check_output_target(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


#: errno of each error that means "no room to write": the words the system
#: (and HDF5, inside its own messages) uses for it, and what to do
NO_ROOM = {
    errno.ENOSPC: ("No space left on device", "free space there and rerun"),
    errno.EDQUOT: ("Disk quota exceeded", "free space in your quota and rerun"),
    errno.EFBIG: ("File too large", "a file size limit (ulimit -f) is reached; raise it or "
                  "write elsewhere"),
}
NO_SPACE = NO_ROOM[errno.ENOSPC][0]


def no_room_errno(err: BaseException | None) -> int | None:
    """The :data:`NO_ROOM` errno of an error (or of one it was raised from),
    else None; h5py puts the words on the second line of a generic message."""
    seen = 0
    while err is not None and seen < 10:
        code = getattr(err, "errno", None)
        if code in NO_ROOM:
            return code
        text = str(err)
        for code, (words, _) in NO_ROOM.items():
            if words in text:
                return code
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def is_disk_full(err: BaseException | None) -> bool:
    """Whether an error is a full disk, a full quota or a file size limit."""
    return no_room_errno(err) is not None


def disk_full_error(path: str | os.PathLike, err: BaseException | None = None) -> OSError:
    """One-line OSError for running out of room while writing ``path``
    (the kind taken from ``err``; a full disk without one)."""
    code = no_room_errno(err) or errno.ENOSPC
    words, remedy = NO_ROOM[code]
    return OSError(code, f"{words} while writing {path}; {remedy}")


def error_line(err: BaseException) -> str:
    """One line for an error: running out of room says so first, an OSError
    names its file, anything else is the message's first line."""
    code = no_room_errno(err)
    if code is not None and NO_ROOM[code][0] not in str(err).split("\n", 1)[0]:
        return NO_ROOM[code][0]
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


class SoftFailFile:
    """A binary file for h5py's ``fileobj`` driver that never reports a
    failed write to HDF5.

    Once HDF5 has seen a write fail (a full disk), closing the file's objects
    fails half-way and a later close or garbage collection crashes the
    interpreter (h5py 3.16 / HDF5 2.0: exit 139, the temporary file left
    behind). This file instead records the first failed write as
    :attr:`error` and keeps what it could not write in memory, so that HDF5
    reads back what it wrote and closes cleanly; the writer then raises
    :meth:`check`'s one-line error and deletes the file. Memory grows only
    after a failure, by what is written after it: writers call :meth:`check`
    between large writes."""

    def __init__(self, path: str | os.PathLike):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.pos = self.size = 0
        self.error: OSError | None = None
        self._unwritten: list[tuple[int, bytes]] = []  # (offset, bytes), later ones win

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        if self.error is None:
            try:
                while done < len(view):
                    wrote = os.pwrite(self.fd, view[done:], self.pos + done)
                    if wrote <= 0:
                        raise OSError(errno.EIO, "a write made no progress")
                    done += wrote
            except OSError as err:
                self.error = err
        if done < len(view):
            self._unwritten.append((self.pos + done, bytes(view[done:])))
        self.pos += len(view)
        self.size = max(self.size, self.pos)
        return len(view)

    def read(self, n: int = -1) -> bytes:
        n = max(0, self.size - self.pos) if n < 0 else n
        data = bytearray(os.pread(self.fd, n, self.pos))
        data.extend(bytes(n - len(data)))
        for off, piece in self._unwritten:
            lo, hi = max(off, self.pos), min(off + len(piece), self.pos + n)
            if lo < hi:
                data[lo - self.pos:hi - self.pos] = piece[lo - off:hi - off]
        self.pos += n
        return bytes(data)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as err:
                self.error = err
        self.size = size
        return size

    def flush(self) -> None:
        pass

    def check(self, path: str | os.PathLike) -> None:
        """Raise the one-line error of the first failed write, naming ``path``
        (the final name; this file is its temporary)."""
        if self.error is not None:
            if is_disk_full(self.error):
                raise disk_full_error(path, self.error)
            raise OSError(self.error.errno, f"cannot write {path}: {self.error.strerror}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success,
    delete it on any error (a full disk is reported naming ``path``). A
    ``path`` that is not a regular file is refused before anything is written."""
    path = Path(path)
    check_output_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except Exception as err:
        if is_disk_full(err):
            raise disk_full_error(path, err) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def open_h5(path: str | os.PathLike, what: str, *, whole: bool = True):
    """An HDF5 file opened for reading, or a one-line ValueError naming it
    (the one opener of every prh file format). With ``whole`` every object of
    the file is checked by :func:`h5_plain`; a reader of a few groups of a
    large file passes False and checks each group it reads with
    :func:`h5_member`."""
    import h5py

    if not os.path.exists(path):
        raise ValueError(f"cannot read {what} {path}: no such file")
    if not os.path.isfile(path):
        raise ValueError(f"cannot read {what} {path}: not a regular file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"cannot read {what} {path}: {err}") from None
    try:
        if whole:
            h5_plain(f, path, what)
    except BaseException:
        f.close()
        raise
    return f


PLAIN_ONLY = ("prh reads only datasets stored in the file itself: write the data there "
              "(no soft or external links, external storage or virtual datasets)")


def _h5_refusal(path, what: str, full: str, why: str) -> ValueError:
    return ValueError(f"cannot read {what} {path}: {full} {why}; {PLAIN_ONLY}")


def _h5_name(group, name: bytes | str) -> str:
    name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
    return "/" + f"{group.name.strip('/')}/{name.strip('/')}".strip("/")


def _h5_link(group, name: bytes) -> str | None:
    """Why the link ``name`` under ``group`` is refused, None for a hard link."""
    import h5py

    links = group.id.links
    kind = links.get_info(name).type
    if kind == h5py.h5l.TYPE_HARD:
        return None
    if kind == h5py.h5l.TYPE_SOFT:
        return f"is a soft link to {links.get_val(name).decode('utf-8', 'replace')}"
    if kind == h5py.h5l.TYPE_EXTERNAL:
        file, target = (v.decode("utf-8", "replace") for v in links.get_val(name))
        return f"is an external link to {target} in {file}"
    return "is a user-defined link"


def h5_plain(obj, path: str | os.PathLike, what: str) -> None:
    """Refuse an HDF5 group or dataset, and everything under it, that reaches
    outside its file: an external link, a soft link (a prh file never writes
    one, and one that dangles or points elsewhere would make a layer read
    other data than its name says), a dataset whose bytes live in an
    external raw file, a virtual dataset. Their data is another file's, which
    no rule tracks as an input. Links are listed, never followed."""
    import h5py

    def check_dataset(name: bytes | str, dsid) -> None:
        if dsid.get_offset() is not None:  # contiguous bytes in this file; cheaper than a plist
            return
        plist = dsid.get_create_plist()
        why = None
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            why = "is a virtual dataset (its data lives in other datasets or files)"
        elif plist.get_external_count():
            target = plist.get_external(0)[0].decode("utf-8", "replace")
            why = f"keeps its data in the external file {target}"
        if why:
            raise _h5_refusal(path, what, _h5_name(obj, name), why)

    if isinstance(obj, h5py.Dataset):
        check_dataset("", obj.id)
        return
    bad = obj.id.links.visit(lambda name, info: None if info.type == h5py.h5l.TYPE_HARD
                             else name, info=True)
    if bad is not None:
        raise _h5_refusal(path, what, _h5_name(obj, bad), _h5_link(obj, bad))
    datasets: list[bytes] = []
    h5py.h5o.visit(obj.id, lambda name, info: datasets.append(name)
                   if info.type == h5py.h5o.TYPE_DATASET else None, info=True)
    for name in datasets:
        check_dataset(name, h5py.h5d.open(obj.id, name))


def h5_member(f, name: str, path: str | os.PathLike, what: str):
    """``f[name]`` checked by :func:`h5_plain`, every link on the way to it
    too, or None when the file holds no ``name``."""
    import h5py

    obj = f
    for part in (p.encode("utf-8") for p in name.split("/") if p):
        if not isinstance(obj, h5py.Group) or not obj.id.links.exists(part):
            return None
        why = _h5_link(obj, part)
        if why:
            raise _h5_refusal(path, what, _h5_name(obj, part), why)
        obj = obj[part.decode("utf-8")]
    h5_plain(obj, path, what)
    return obj


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
