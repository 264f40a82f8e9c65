"""Untrusted output paths and full disks (issue 18): a write never replaces
anything but a regular file, and running out of room while a features file
is written ends in one line naming the file, with no crash and nothing left
behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from prh import cli
from prh.formats.features import FeatureWriter
from prh.jobio import atomic_output, check_output_target, publish

ROOT = Path(__file__).resolve().parents[1]


def _targets(tmp: Path) -> dict[str, Path]:
    fifo = tmp / "pipe.h5"
    os.mkfifo(fifo)
    folder = tmp / "folder.h5"
    folder.mkdir()
    link = tmp / "link.h5"
    link.symlink_to(fifo)
    # a link to a regular file is not followed: whoever made it would choose
    # which file gets overwritten
    victim = tmp / "victim.txt"
    victim.write_text("keep me")
    file_link = tmp / "file_link.h5"
    file_link.symlink_to(victim)
    return {"named pipe": fifo, "folder": folder, "link": link, "file link": file_link}


def _unchanged(targets: dict[str, Path]) -> None:
    assert stat.S_ISFIFO(os.lstat(targets["named pipe"]).st_mode)
    assert stat.S_ISDIR(os.lstat(targets["folder"]).st_mode)
    assert os.path.islink(targets["link"]) and stat.S_ISFIFO(os.stat(targets["link"]).st_mode)
    assert os.path.islink(targets["file link"]) and targets["file link"].read_text() == "keep me"


@pytest.mark.parametrize("kind", ["named pipe", "folder", "link", "file link"])
def test_atomic_output_and_publish_refuse_a_non_regular_target(tmp_path, kind):
    targets = _targets(tmp_path)
    target = targets[kind]
    with pytest.raises(ValueError) as err:
        with atomic_output(target) as tmp:
            tmp.write_text("x")
    msg = str(err.value)
    assert "\n" not in msg and str(target) in msg and "not a regular file" in msg
    # publish checks again: the target may have become special since the start
    tmp = tmp_path / "finished.tmp"
    tmp.write_text("x")
    with pytest.raises(ValueError, match="not a regular file"):
        publish(tmp, target)
    _unchanged(targets)
    assert not list(tmp_path.glob(".*.tmp"))


def test_dev_stdout_is_not_replaced_when_it_leads_to_a_file(tmp_path):
    # read-only: /dev/stdout is a link, here to the file stdout is sent to
    script = ("import sys; from prh.jobio import check_output_target\n"
              "try: check_output_target('/dev/stdout')\n"
              "except ValueError as e: sys.stderr.write(str(e))")
    with open(tmp_path / "out.txt", "w") as out:
        r = subprocess.run([sys.executable, "-c", script], stdout=out, stderr=subprocess.PIPE,
                           text=True, cwd=ROOT, timeout=60)
    assert r.stderr.startswith("refusing to write /dev/stdout: it is a symbolic link to a regular file")


def test_features_writer_refuses_a_fifo_before_writing(tmp_path):
    targets = _targets(tmp_path)
    with pytest.raises(ValueError, match="named pipe"):
        with FeatureWriter(targets["link"], sample_ids=["a"]) as w:
            w.write(0, [np.ones((1, 2), np.float32)])
    _unchanged(targets)
    assert not list(tmp_path.glob(".*"))


def test_a_device_is_named_as_such():
    # read-only: only stat()s /dev/null
    with pytest.raises(ValueError, match="/dev/null: it is a character device"):
        check_output_target("/dev/null")


@pytest.mark.parametrize("command", ["embed", "prepare-dataset"])
def test_cli_refuses_a_non_regular_out_before_any_work(tmp_path, capsys, command):
    targets = _targets(tmp_path)
    # the dataset does not exist: the output path is checked first
    args = [command, "--dataset", f"folder:{tmp_path / 'missing'}", "--out", str(targets["link"])]
    if command == "embed":
        args += ["--model", "efficientnet_lite0"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(targets["link"]) in err and "named pipe" in err
    _unchanged(targets)


# A features file written under a file size limit: h5py 3.16 / HDF5 2.0
# crashed (exit 139 or an abort) closing a file after a failed write, leaving
# the temporary file. The limit is set after the imports; Python ignores
# SIGXFSZ, so writes past it fail with EFBIG as a full disk fails them with
# ENOSPC.
JOB = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from prh.formats.features import FeatureWriter
    from prh.jobio import logged
    out, log, limit, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), 2000
    if limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        with logged(log):
            with FeatureWriter(out, sample_ids=[f"s{i}" for i in range(n)]) as w:
                for start in range(0, n, 100):
                    w.write(start, [np.ones((100, 256), np.float32), np.ones((100, 512), np.float32)])
    except Exception:
        sys.exit(1)
""")


def _job(out: Path, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", JOB, str(out), str(out.parent / "job.log"), str(limit)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_file_size_limit_while_writing_features_is_one_line_and_no_crash(tmp_path):
    full = tmp_path / "full" / "f.h5"
    full.parent.mkdir()
    assert _job(full, 0).returncode == 0
    size = full.stat().st_size
    # early (the file's first bytes), mid-data, and at the final metadata
    for limit in (2_000, size // 2, size - 1_000):
        out = tmp_path / str(limit) / "f.h5"
        out.parent.mkdir()
        r = _job(out, limit)
        assert r.returncode == 1, (limit, r.returncode, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert str(out) in lines[0] and "File too large" in lines[0] and "ulimit -f" in lines[0]
        assert os.listdir(out.parent) == ["job.log"]


def test_disk_full_while_writing_features_names_the_file(tmp_path, monkeypatch):
    real = os.pwrite
    budget = [50_000]

    def pwrite(fd, data, offset):
        if budget[0] < len(data):
            raise OSError(28, "No space left on device")
        budget[0] -= len(data)
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    out = tmp_path / "f.h5"
    with pytest.raises(OSError) as err:
        with FeatureWriter(out, sample_ids=[f"s{i}" for i in range(500)]) as w:
            for start in range(0, 500, 100):
                w.write(start, [np.ones((100, 64), np.float32)])
    msg = str(err.value)
    assert "\n" not in msg and f"No space left on device while writing {out}" in msg
    assert budget[0] < 50_000  # the writer did reach the disk
    assert not list(tmp_path.iterdir())
