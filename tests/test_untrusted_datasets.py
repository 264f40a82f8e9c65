"""Untrusted dataset inputs (issue 18): images, caption rows and dataset
options from anywhere end in one line naming the file, row, sample or option
and what to do; a folder dataset uses no image its content hash does not
cover."""

from __future__ import annotations

import json
import os
import signal
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from prh import cli
from prh import datasets as D


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path, side=30_000):
    """A PNG whose header declares side x side pixels (far over PIL's limit)
    with one compressed row of data: a few hundred bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (side + 1), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))


def _image(path, color=(200, 30, 30), size=32, fmt=None):
    rng = np.random.default_rng(sum(color))
    a = np.clip(rng.normal(color, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path, format=fmt)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "pairs"
    d.mkdir()
    _image(d / "ok.png")
    return d


def _prepare_one(folder, image, caption="a caption"):
    (folder / "captions.csv").write_text(f"image,caption\nok.png,fine\n{image},{caption}\n")
    with pytest.raises(D.DatasetError) as err:
        D.prepare(f"folder:{folder}", None)
    msg = str(err.value)
    assert "\n" not in msg and "captions.csv: row 2" in msg
    return msg


def test_decompression_bomb_names_the_row_and_the_sample(folder):
    _bomb_png(folder / "bomb.png")
    assert (folder / "bomb.png").stat().st_size < 10_000
    msg = _prepare_one(folder, "bomb.png")
    assert "bomb.png is refused" in msg and "900000000 pixels" in msg and "downscale it" in msg
    # a manifest written elsewhere (or before) still fails in one line at embed time
    with pytest.raises(D.DatasetError, match=r"^sample s7: image file .*bomb\.png is refused.*"
                                             r"downscale it or drop it$"):
        D.load_image(D.Sample("s7", "c", str(folder / "bomb.png")))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused_at_prepare_naming_the_row(folder, fmt):
    path = folder / f"cut.{fmt.lower()}"
    _image(path, size=256, fmt=fmt)
    _truncate(path)
    msg = _prepare_one(folder, path.name)
    assert path.name in msg and "truncated" in msg.lower() and "replace or drop it" in msg
    with pytest.raises(D.DatasetError, match=r"sample s1: .*truncated.*prepare the dataset again"):
        D.load_image(D.Sample("s1", "c", str(path)))


@pytest.mark.parametrize("where", ["parent", "absolute", "link out", "hidden"])
def test_images_outside_the_folder_are_refused_naming_the_row(folder, tmp_path, where):
    outside = tmp_path / "elsewhere.png"
    _image(outside)
    if where == "parent":
        image = "../elsewhere.png"
    elif where == "absolute":
        image = str(outside)
    elif where == "link out":
        (folder / "link.png").symlink_to(outside)
        image = "link.png"
    else:
        (folder / ".cache").mkdir()
        _image(folder / ".cache" / "x.png")
        image = ".cache/x.png"
    msg = _prepare_one(folder, image)
    assert repr(image) in msg
    assert ("hidden" if where == "hidden" else "outside the dataset folder") in msg


def test_a_link_inside_the_folder_is_used_and_hashed(folder):
    (folder / "sub").mkdir()
    (folder / "same.png").symlink_to(folder / "ok.png")
    (folder / "captions.csv").write_text("image,caption\nsame.png,one\n")
    m = D.prepare(f"folder:{folder}", None)
    assert m.samples[0].image == str(folder / "ok.png")
    before = D.folder_sha256(folder)
    _image(folder / "ok.png", color=(1, 2, 3))
    assert D.folder_sha256(folder) != before


@pytest.fixture
def no_blocking():
    """Opening a FIFO for reading waits for a writer: fail instead of hanging."""
    def on_alarm(signum, frame):
        raise TimeoutError("blocked reading a special file")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_special_files_as_images_or_captions_are_refused(folder, tmp_path, no_blocking):
    os.mkfifo(folder / "pipe.png")
    msg = _prepare_one(folder, "pipe.png")
    assert "pipe.png is not a regular file" in msg
    other = tmp_path / "other"
    other.mkdir()
    os.mkfifo(other / "captions.csv")
    with pytest.raises(D.DatasetError, match="captions.csv is not a regular file"):
        D.prepare(f"folder:{other}", None)


def test_caption_rows_of_the_wrong_shape_name_the_line(folder):
    (folder / "captions.jsonl").write_text('["ok.png", "a list, not an object"]\n')
    with pytest.raises(D.DatasetError, match=r"captions\.jsonl:1: not a JSON object"):
        D.prepare(f"folder:{folder}", None)
    (folder / "captions.jsonl").write_text(json.dumps({"image": "ok.png", "caption": ["a", "b"]}))
    with pytest.raises(D.DatasetError, match=r"row 1: the caption and id must be text"):
        D.prepare(f"folder:{folder}", None)
    (folder / "captions.jsonl").write_text(json.dumps({"image": 3, "caption": "c"}))
    with pytest.raises(D.DatasetError, match=r"row 1: image 3 is not a file path"):
        D.prepare(f"folder:{folder}", None)


def test_dataset_option_of_the_wrong_type_names_the_option(capsys, tmp_path):
    # checked before anything is fetched or read
    assert cli.main(["prepare-dataset", "--dataset", "emoji", "--dataset-option", "seed=abc",
                     "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("prh: error: dataset emoji: option seed='abc' is not an integer; "
                   "give a whole number, e.g. seed=0")
    # the workflow's dataset options take the same path
    with pytest.raises(D.DatasetError, match=r"option caption_idx=1\.5 is not an integer"):
        D.prepare("prh_wit", 4, caption_idx=1.5)
    assert not (tmp_path / "m.json").exists()


def test_unknown_repeated_and_misplaced_dataset_options_are_one_line(capsys, tmp_path):
    out = str(tmp_path / "m.json")
    for opts, words in ((["sed=1"], "dataset emoji has no option 'sed'; its options: seed"),
                        (["n_samples=3"], "n_samples is not an option; give it with --n-samples"),
                        (["seed=1", "seed=2"], "--dataset-option seed is given twice")):
        args = ["prepare-dataset", "--dataset", "emoji", "--out", out]
        for o in opts:
            args += ["--dataset-option", o]
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err


def test_caption_index_past_a_samples_captions_names_the_sample(tmp_path, monkeypatch):
    import datasets as hfds

    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "cache"))
    ds = hfds.Dataset.from_dict({"image": [Image.new("RGB", (4, 4))] * 2, "text": [["a", "b"], ["c"]]},
                                features=hfds.Features({"image": hfds.Image(),
                                                        "text": hfds.Sequence(hfds.Value("string"))}))
    (tmp_path / "wit" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "wit" / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(D.DatasetError, match=r"sample 00001 has 1 captions; choose caption_idx in 0\.\.0"):
        D.prepare("prh_wit", 2, path=str(tmp_path / "wit"), caption_idx="1")
