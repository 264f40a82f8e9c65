"""Datasets and manifests: folder, prh_wit on a local copy, emoji from npm."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from prh import datasets as D


def _rgba(path, color, alpha):
    a = np.zeros((8, 8, 4), dtype=np.uint8)
    a[..., :3] = color
    a[..., 3] = alpha
    Image.fromarray(a, "RGBA").save(path)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "pairs"
    (d / "img").mkdir(parents=True)
    rows = [("img/b.png", "a blue square", (0, 0, 255)), ("img/a.png", "a red square", (255, 0, 0)),
            ("img/c.png", "a green square", (0, 255, 0))]
    for f, _, c in rows:
        _rgba(d / f, c, 255)
    with open(d / "captions.csv", "w") as fh:
        fh.write("image,caption\n" + "".join(f"{f},{c}\n" for f, c, _ in rows))
    return d


def test_folder_csv_keeps_file_order(folder):
    m = D.prepare(f"folder:{folder}", None)
    assert m.dataset == "folder" and m.n == 3
    assert m.ids == ["img/b.png", "img/a.png", "img/c.png"]
    assert m.captions == ["a blue square", "a red square", "a green square"]
    assert np.asarray(D.load_image(m.samples[1]))[0, 0].tolist() == [255, 0, 0]
    m2 = D.prepare("folder", 2, path=str(folder / "captions.csv"))
    assert m2.ids == m.ids[:2]


def test_folder_jsonl_with_ids(tmp_path):
    _rgba(tmp_path / "x.png", (1, 2, 3), 255)
    (tmp_path / "captions.jsonl").write_text(
        json.dumps({"id": "one", "file": "x.png", "text": "first"}) + "\n"
        + json.dumps({"id": "two", "image": "x.png", "caption": "second"}) + "\n")
    m = D.prepare(f"folder:{tmp_path}", None)
    assert m.ids == ["one", "two"] and m.captions == ["first", "second"]


def test_transparent_pixels_become_white(tmp_path):
    _rgba(tmp_path / "t.png", (10, 20, 30), 0)
    _rgba(tmp_path / "h.png", (0, 0, 0), 128)
    t = np.asarray(D.load_image(D.Sample("t", "c", str(tmp_path / "t.png"))))
    h = np.asarray(D.load_image(D.Sample("h", "c", str(tmp_path / "h.png"))))
    assert t.shape == (8, 8, 3) and (t == 255).all()
    assert abs(int(h[0, 0, 0]) - 127) <= 1  # half black over white


def test_unreadable_image_names_the_sample(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(D.DatasetError, match="sample s42.*bad.png"):
        D.load_image(D.Sample("s42", "c", str(tmp_path / "bad.png")))


def test_manifest_round_trip_and_hash(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    path = m.save(tmp_path / "out" / "manifest.json")
    m2 = D.load_manifest(path)
    assert m2.samples == m.samples and m2.content_sha256 == m.content_sha256
    # The hash covers captions and image bytes, not where the files live.
    changed = D.Manifest(m.dataset, [D.Sample(s.id, s.caption + "!", s.image, s.image_sha256)
                                     for s in m.samples])
    assert changed.content_sha256 != m.content_sha256
    moved = D.Manifest(m.dataset, [D.Sample(s.id, s.caption, "/elsewhere.png", s.image_sha256)
                                   for s in m.samples])
    assert moved.content_sha256 == m.content_sha256
    d = json.loads(path.read_text())
    d["samples"][0]["caption"] = "edited"
    path.write_text(json.dumps(d))
    with pytest.raises(D.DatasetError, match="edited"):
        D.load_manifest(path)


def test_changed_image_is_detected(folder):
    m = D.prepare(f"folder:{folder}", None)
    m.check_images()
    _rgba(folder / "img" / "a.png", (9, 9, 9), 255)
    with pytest.raises(D.DatasetError, match="img/a.png.*changed"):
        m.check_images()


def test_bad_names_and_sizes(folder):
    with pytest.raises(D.DatasetError, match="unknown dataset 'nope'; known: emoji, prh_wit, folder"):
        D.prepare("nope", 3)
    with pytest.raises(D.DatasetError, match="n_samples=4.*3 samples"):
        D.prepare(f"folder:{folder}", 4)
    with pytest.raises(D.DatasetError, match="folder:"):
        D.prepare("folder", 3)


def _write_wit_like(root, n=5, text_column="text", image_column="image"):
    """A local dataset of the same shape as minhuh/prh (an image and a list of captions)."""
    import datasets as hfds

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)) for _ in range(n)]
    texts = [[f"caption {i}", f"other caption {i}"] for i in range(n)]
    ds = hfds.Dataset.from_dict({image_column: images, text_column: texts},
                                features=hfds.Features({image_column: hfds.Image(),
                                                        text_column: hfds.Sequence(hfds.Value("string"))}))
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return images, texts


def test_prh_wit_path_on_a_local_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "cache"))
    images, texts = _write_wit_like(tmp_path / "wit")
    m = D.prepare("prh_wit", 4, path=str(tmp_path / "wit"))
    assert m.dataset == "prh_wit" and m.ids == ["00000", "00001", "00002", "00003"]
    assert m.captions == [t[0] for t in texts[:4]]  # caption_idx 0, as the paper
    for s, im in zip(m.samples, images):
        np.testing.assert_array_equal(np.asarray(D.load_image(s)), np.asarray(im))
    m1 = D.prepare("prh_wit", 2, path=str(tmp_path / "wit"), caption_idx="1")
    assert m1.captions == ["other caption 0", "other caption 1"]
    again = D.prepare("prh_wit", 4, path=str(tmp_path / "wit"))
    assert again.content_sha256 == m.content_sha256


def test_prh_wit_column_names_are_options(tmp_path, monkeypatch):
    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "cache"))
    _write_wit_like(tmp_path / "wit", n=3, text_column="captions", image_column="jpg")
    with pytest.raises(D.DatasetError, match="no column 'image'.*captions"):
        D.prepare("prh_wit", 3, path=str(tmp_path / "wit"))
    m = D.prepare("prh_wit", 3, path=str(tmp_path / "wit"), image_column="jpg", text_column="captions")
    assert m.captions == ["caption 0", "caption 1", "caption 2"]


def test_prh_wit_unreachable_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DatasetError) as e:
        D.prepare("prh_wit", 3, path=str(tmp_path / "does-not-exist"))
    assert "\n" not in str(e.value) and "emoji" in str(e.value)


def test_emoji_tarball_sha256_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("PRH_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "fake.tgz"
    fake.write_bytes(b"tampered")
    monkeypatch.setenv("PRH_EMOJI_TARBALL", str(fake))
    with pytest.raises(D.DatasetError, match="sha256"):
        D.prepare("emoji", 4)
    assert not (tmp_path / "cache" / f"{D.EMOJI_PACKAGE}-{D.EMOJI_VERSION}").exists()


@pytest.mark.slow
def test_emoji_subset_is_seeded_and_reproducible():
    # Uses the shared cache: the npm tarball is fetched once (npm pack) and reused.
    a = D.prepare("emoji", 32)
    b = D.prepare("emoji", 32)
    c = D.prepare("emoji", 32, seed=1)
    assert a.ids == b.ids and a.content_sha256 == b.content_sha256
    assert a.ids != c.ids
    assert len(set(a.ids)) == 32
    assert all(cap == cap.lower() and cap for cap in a.captions)
    full = D.prepare("emoji", None)
    assert full.n == 1911
    order = {sid: i for i, sid in enumerate(full.ids)}
    assert [order[i] for i in a.ids] == sorted(order[i] for i in a.ids)  # subset keeps the order
    assert np.asarray(D.load_image(a.samples[0])).shape == (64, 64, 3)
    apple = next(s for s in full.samples if s.caption == "red apple")
    assert apple.id == "1F34E"


def test_folder_tsv_and_bad_rows_name_the_row(folder):
    (folder / "captions.csv").unlink()
    (folder / "captions.tsv").write_text("file\ttext\tid\nimg/a.png\ta red, square\tA\n"
                                         "img/b.png\tblue\tB\n")
    m = D.prepare(f"folder:{folder}", None)
    assert m.ids == ["A", "B"] and m.captions == ["a red, square", "blue"]
    tsv = folder / "captions.tsv"
    tsv.write_text("file\ttext\tid\nimg/a.png\ta\tA\nimg/b.png\tb\tA\n")
    with pytest.raises(D.DatasetError, match=r"captions\.tsv: row 2: sample id 'A' appears twice"):
        D.prepare(f"folder:{folder}", None)
    tsv.write_text("file\ttext\nimg/a.png\ta\nimg/b.png\t  \n")
    with pytest.raises(D.DatasetError, match=r"captions\.tsv: row 2 \(img/b\.png\): empty caption"):
        D.prepare(f"folder:{folder}", None)
    (folder / "img/broken.png").write_bytes(b"not a png")
    tsv.write_text("file\ttext\nimg/a.png\ta\nimg/broken.png\tb\n")
    with pytest.raises(D.DatasetError, match=r"captions\.tsv: row 2: image file .*broken\.png "
                                             r"cannot be read"):
        D.prepare(f"folder:{folder}", None)


def test_cli_prepare_dataset_on_a_folder_takes_all_rows(folder, tmp_path, capsys):
    from prh import cli

    out = tmp_path / "m.json"
    assert cli.main(["prepare-dataset", "--dataset", f"folder:{folder}", "--out", str(out)]) == 0
    assert D.load_manifest(out).n == 3


def test_prh_datasets_lists_each_source_as_the_config_spells_it(tiny_config, capsys):
    """Every example `prh datasets` prints is a valid config entry whose path
    and options the dataset accepts; no entry advertises the command line's
    `folder:DIR` spelling, which the config's schema refuses."""
    import yaml

    from prh import cli
    from prh.config.schema import validate

    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    examples = [yaml.safe_load(ln.split("e.g. ", 1)[1]) for ln in out.splitlines() if "e.g. " in ln]
    assert len(examples) == len(D.DATASETS)
    for example in examples:
        (key, entry), = example["datasets"].items()
        tiny_config["datasets"] = {key: entry}
        validate(tiny_config)
        options = {k: v for k, v in entry.items() if k == "path"} | entry.get("options", {})
        assert D.dataset_options(entry["source"], options) == options
    assert {e["datasets"][k]["source"] for e in examples for k in e["datasets"]} == set(D.DATASETS)
    assert not re.search(r"folder:\S", out), out
    assert "source: folder" in out and "path: " in out
