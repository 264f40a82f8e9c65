"""A finished run moved or copied to another folder plans nothing: every path
Snakemake records (inputs, library inputs, params, logs) is relative to the
workflow folder."""

from __future__ import annotations

import shutil

import pytest

from file_workflow import file_workflow, snapshot
from test_workflow import pending, smk

pytestmark = pytest.mark.slow


def _plans_nothing(wd):
    res = smk(wd, "-n")
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]
    assert pending(wd) == set()


def test_a_finished_run_moved_or_copied_elsewhere_plans_nothing(tmp_path):
    first = file_workflow(tmp_path / "first")
    smk(first)
    records = sorted((first / ".snakemake/metadata").iterdir())
    assert records and all(str(tmp_path) not in r.read_text() for r in records)
    results = snapshot(first)

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    first.rename(moved)  # the first folder is gone
    _plans_nothing(moved)

    copied = tmp_path / "copied"
    shutil.copytree(moved, copied, symlinks=True, copy_function=shutil.copy2)
    _plans_nothing(copied)
    smk(copied)  # a real run there: still nothing to do, every result as it was
    assert snapshot(copied) == results
