"""Failure-safe reruns: what the workflow does around its jobs (torch-free).

Snakemake removes a job's old output before the job starts and removes what a
failed job wrote. What follows from that is handled here, from the Snakefile's
``onstart``/``onsuccess``/``onerror`` handlers:

- a failing re-embedding must not cost the previous good features file:
  :func:`keep_previous` hard-links each existing file to a hidden ``.<name>.prev``
  beside it before any job runs; :func:`drop_backups` removes the links whose
  file is still (or again) in place when the run ends and keeps the others.
  The embedding step (:mod:`prh.steps.embed`) moves a kept file back into
  place, without recomputing, when its model, manifest and settings are the
  requested ones; so a failing setting fails on every rerun (never "Nothing
  to be done" with features that do not match the config), and going back to
  the old settings costs nothing;
- a failure costs no result it did not produce: Snakemake removes only the
  failed job's own output, and every finished output that derives from it is
  kept. Kept is not current, and Snakemake alone would say "Nothing to be
  done" (it does not rebuild outputs that are newer than their inputs when
  an intermediate file is missing). So :func:`present_files` notes, at the
  start, which files exist; after a failed run :func:`stale_outputs` finds
  the outputs downstream of the files the run lost, and :func:`mark_stale`
  gives each a new mark in the marks file, which the rules pass to its job
  as a parameter: the next run plans them again (``--summary`` says "update
  pending"), and a failure elsewhere marks nothing;
- a job killed with SIGKILL (or a node that died) leaves its temporary file
  (``.<name>.w<pid>-<host>.<random>.tmp``, :func:`prh.jobio.atomic_output`)
  beside its output: :func:`remove_orphan_temps` removes, at the next run's
  start, those under results/ older than the run's start whose writer is gone.
  The writer's process id and host are in the name: on this host, a file is
  removed only when no process has that id (a live writer's, in another run or
  a ``prh`` command, is kept; a reused id keeps it too, the safe side). A
  writer on another host (a cluster node) cannot be asked, and a name without
  a writer (from before it was recorded) says nothing: those are removed only
  when not modified for ``stale_after_s`` (default 24 h, longer than any job's
  runtime request in the shipped configs; a live features writer touches its
  file every batch).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Collection, Iterable, Mapping, Sequence


def backup_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(f".{p.name}.prev")


def keep_previous(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Hard-link (or copy, where links are not possible) each existing file to
    its backup path; returns the files kept."""
    kept = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        bak = backup_path(path)
        if bak.exists():
            bak.unlink()
        try:
            os.link(path, bak)
        except OSError:
            shutil.copy2(path, bak)
        kept.append(path)
    return kept


def drop_backups(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the backups of files that are in place; returns the backups kept
    (their file is missing: its job failed)."""
    kept = []
    for path in map(Path, paths):
        bak = backup_path(path)
        if not bak.exists():
            continue
        if path.exists():
            bak.unlink()
        else:
            kept.append(bak)
    return kept


Groups = Mapping[str, tuple[Sequence[str], Sequence[str]]]


def present_files(groups: Groups) -> set[str]:
    """The files named in ``groups`` (outputs and what they derive from) that
    exist: taken when a run starts, the files it then loses are its holes."""
    named = {f for outputs, upstream in groups.values() for f in (*outputs, *upstream)}
    return {f for f in named if os.path.exists(f)}


def stale_outputs(groups: Groups, gone: Collection[str]) -> dict[str, list[str]]:
    """``groups``: name -> (outputs, the files they derive from), in dependency
    order; ``gone``: the files a failed run removed. An output is out of date
    when a file it derives from is gone or itself out of date; returns, per
    file gone, the existing outputs out of date because of it (each under the
    first such file). Removes nothing."""
    cause = {f: f for f in gone}  # out-of-date file -> the file gone behind it
    stale: dict[str, list[str]] = {}
    for outputs, upstream in groups.values():
        root = next((cause[u] for u in upstream if u in cause), None)
        if root is None:
            continue
        for o in outputs:
            cause.setdefault(o, root)
            if o not in gone and os.path.exists(o):
                stale.setdefault(root, []).append(o)
    return stale


def marks_path(results: str) -> str:
    """The marks file (:func:`mark_stale`) of a results folder."""
    return f"{results}/.stale_marks.json"


def read_marks(path: str | os.PathLike) -> dict[str, str]:
    """The marks file: output -> its latest mark ({} when there is none)."""
    try:
        marks = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the stale-output marks ({err}); delete the "
                         "file (the jobs it marked then rerun once)") from None
    if not isinstance(marks, dict) or not all(isinstance(v, str) for v in marks.values()):
        raise ValueError(f"{path}: not a mapping of output -> mark; delete the file (the jobs "
                         "it marked then rerun once)")
    return marks


def mark_stale(path: str | os.PathLike, stale: Mapping[str, Sequence[str]]) -> None:
    """Give each output in ``stale`` (:func:`stale_outputs`) a new mark. The
    rules pass an output's mark to its job as a parameter, so a new mark
    reruns the job (Snakemake's params trigger) and a mark it already ran
    with reruns nothing; marks are therefore kept after the rebuild."""
    if not stale:
        return
    from .jobio import atomic_output

    marks = read_marks(path)
    when = datetime.now().isoformat(timespec="microseconds")
    for root, outputs in stale.items():
        for o in outputs:
            marks[o] = f"{root} was lost by the failed run of {when}"
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(marks, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def describe_stale(stale: Mapping[str, Sequence[str]], shown: int = 6) -> list[str]:
    """One line per file gone, for :func:`stale_outputs`' answer."""
    lines = []
    for root, outputs in stale.items():
        more = f" and {len(outputs) - shown} more" if len(outputs) > shown else ""
        lines.append(f"kept {', '.join(outputs[:shown])}{more}: out of date, since {root} "
                     "is missing; marked, so that the next run rebuilds them")
    return lines


STALE_TEMP_S = 24 * 3600


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by another user
        return True
    return True


def remove_orphan_temps(root: str | os.PathLike, before: float, *,
                        stale_after_s: float = STALE_TEMP_S, host: str | None = None,
                        alive=pid_alive) -> list[Path]:
    """Remove the temporary files (``.*.tmp``) under ``root`` last modified
    before ``before`` (the run's start, epoch seconds) whose writer is gone
    (see the module's docstring); returns the files removed. ``host`` and
    ``alive`` are for tests."""
    from .jobio import _host, temp_writer

    root = Path(root)
    if not root.is_dir():
        return []
    host = _host() if host is None else host
    removed = []
    for path in sorted(root.rglob(".*.tmp")):
        try:
            if not path.is_file():
                continue
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if mtime >= before:
            continue
        writer = temp_writer(path.name)
        if writer is not None and writer[1] == host:
            gone = not alive(writer[0])
        else:
            gone = before - mtime > stale_after_s
        if gone:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed
