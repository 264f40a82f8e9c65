"""A finished run moved or copied to another folder plans nothing: every path
Snakemake records (inputs, library inputs, params, logs) is relative to the
workflow folder."""

from __future__ import annotations

import pytest

from file_workflow import snapshot
from prh.imports import workdir_paths
from workflow_helpers import copy_run, pending, smk


def _plans_nothing(wd):
    res = smk(wd, "-n")
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]
    assert pending(wd) == set()


def test_library_inputs_are_relative_to_the_working_directory_when_under_it(tmp_path,
                                                                            monkeypatch):
    checkout = tmp_path / "checkout"
    monkeypatch.chdir(tmp_path)
    assert workdir_paths([checkout / "prh" / "x.py"]) == ["checkout/prh/x.py"]
    assert workdir_paths([checkout / "prh" / "x.py"], checkout) == ["prh/x.py"]
    # a working directory beside the checkout (snakemake -d): absolute, so it can move alone
    assert workdir_paths([checkout / "prh" / "x.py"], tmp_path / "run") == [
        str(checkout / "prh" / "x.py")]


def test_a_manifest_records_images_in_the_working_folder_relative_to_itself(tmp_path,
                                                                          monkeypatch):
    from prh.datasets import Manifest, Sample, load_manifest

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "a.png").write_bytes(b"png")
    outside = tmp_path / "cache.png"
    outside.write_bytes(b"png")
    monkeypatch.chdir(project)
    m = Manifest("d", [Sample("a", "an a", str(project / "data" / "a.png")),
                       Sample("b", "a b", str(outside))], {"path": str(project / "data")})
    m.save(project / "results" / "d" / "manifest.json")
    text = (project / "results" / "d" / "manifest.json").read_text()
    assert str(project) not in text and "../../data/a.png" in text
    assert str(outside) in text  # outside the working folder: it does not move with it
    moved = tmp_path / "moved"
    project.rename(moved)
    got = load_manifest(moved / "results" / "d" / "manifest.json")
    assert [s.image for s in got.samples] == [str(moved / "data" / "a.png"), str(outside)]
    assert got.params["path"] == str(moved / "data")
    assert got.content_sha256 == m.content_sha256


@pytest.mark.slow
def test_a_finished_run_moved_or_copied_elsewhere_plans_nothing(file_run, tmp_path):
    records = sorted((file_run / ".snakemake/metadata").iterdir())
    assert records and all(str(file_run.parent) not in r.read_text() for r in records)
    manifests = list((file_run / "results").glob("*/manifest.json"))
    assert manifests and all(str(file_run.parent) not in m.read_text() for m in manifests)
    results = snapshot(file_run)

    copied = copy_run(file_run, tmp_path / "copied")
    _plans_nothing(copied)

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    copied.rename(moved)  # the folder it was planned in is gone
    _plans_nothing(moved)
    smk(moved)  # a real run there: still nothing to do, every result as it was
    assert snapshot(moved) == results
