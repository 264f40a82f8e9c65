"""Failure-safe reruns: what the workflow does around its jobs (torch-free).

Snakemake removes a job's old output before the job starts and removes what a
failed job wrote. Two consequences are handled here, from the Snakefile's
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
- a failed upstream job must not leave the aggregate outputs looking up to
  date (a plain rerun would say "Nothing to be done" while ``alignment.tsv``
  holds old scores): :func:`remove_stale` deletes a dataset's aggregate outputs
  when any file they derive from is missing, so the next run recomputes them;
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

import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Sequence


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


def remove_stale(groups: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> list[str]:
    """``groups``: name -> (outputs, the files they derive from), in dependency
    order. Where an output exists but an upstream file is missing, remove the
    outputs (so later groups see them missing too: removals cascade); returns
    one line per group removed."""
    lines = []
    for name, (outputs, upstream) in groups.items():
        present = [o for o in outputs if os.path.exists(o)]
        missing = [u for u in upstream if not os.path.exists(u)]
        if present and missing:
            for o in present:
                os.unlink(o)
            lines.append(f"{name}: removed {', '.join(present)}: {missing[0]} is missing "
                         f"({len(missing)} upstream file(s)); the next run recomputes them")
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
