"""The ``ids`` dataset: sample ids alone, for file: models. Its file is
untrusted input refused line by line, its manifest is lean and hashes the
ids, a million of them prepare in seconds, and the config refuses a model
that would embed on it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from prh import cli
from prh import datasets as D
from prh.config import Config, ConfigError
from prh.steps import embed as embed_step


def _ids_file(tmp_path: Path, text: str | bytes, name: str = "ids.txt") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_ids_prepare_in_file_order_with_no_captions_or_images(tmp_path):
    path = _ids_file(tmp_path, "b7\nimg/0001\nα-3\r\nlast")  # CRLF, no final newline
    m = D.prepare("ids", None, path=str(path))
    assert m.ids == ["b7", "img/0001", "α-3", "last"] and m.ids_only
    assert m.captions == [""] * 4 and {s.image for s in m.samples} == {""}
    assert m.params == {"n_samples": 4, "path": str(path.resolve())}
    assert D.prepare(f"ids:{path}", 2).ids == ["b7", "img/0001"]
    # a dataset with captions is not ids alone
    assert not D.Manifest("x", [D.Sample("a", "", ""), D.Sample("b", "a cat", "")]).ids_only


def test_ids_manifest_is_lean_and_round_trips(tmp_path):
    path = _ids_file(tmp_path, "a\nb\"q\nc\n")
    m = D.prepare("ids", None, path=str(path))
    out = m.save(tmp_path / "manifest.json")
    text = out.read_text()
    assert '  {"id": "a"},\n  {"id": "b\\"q"},\n  {"id": "c"}\n ]\n}\n' in text
    data = json.loads(text)
    assert data["samples"] == [{"id": "a"}, {"id": 'b"q'}, {"id": "c"}]
    back = D.load_manifest(out)
    assert back.ids == m.ids and back.content_sha256 == m.content_sha256 == data["content_sha256"]
    assert back.ids_only and back.to_dict(tmp_path)["samples"] == data["samples"]


def test_the_content_hash_covers_the_ids_and_their_order(tmp_path):
    def sha(text):
        return D.prepare("ids", None, path=str(_ids_file(tmp_path, text))).content_sha256

    first = sha("a\nb\nc\n")
    assert sha("a\nb\nc") == first  # the final newline is no id
    assert len({first, sha("a\nb\nd\n"), sha("b\na\nc\n"), sha("a\nb\n")}) == 4



def test_the_content_hash_of_captioned_samples_is_what_it_was():
    """The hash is built from json's string encoder now; every features file
    records it, so it must equal json.dumps' per sample, escapes and all."""
    import hashlib

    samples = [D.Sample("x\"\\y", "a cat \u00e9 \U0001f600 \n\t\x00 \u2028", "/i.png", "ab12"),
               D.Sample("plain", "", "", ""), D.Sample(7, "seven", "", "")]
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.id, s.caption, s.image_sha256], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    assert D.Manifest("d", samples).content_sha256 == h.hexdigest()


@pytest.mark.parametrize("text, says", [
    (b"", "no ids; write one sample id per line"),
    (b"\n", "no ids"),
    (b"a\n\nb\n", "line 2 is empty; write one id per line, no blank lines"),
    (b"a\nb\n \t \n", "line 3 holds the control character '\\t'"),
    (b"a\nb\n   \n", "line 3 is empty"),
    (b"a\n b\n", "line 2: id ' b' has spaces around it"),
    (b"a\nb\nc\nb\na\n", "line 4: id 'b' appears again (first on line 2); ids must be unique"),
    (b"a\nb\xff\n", "line 2 is not UTF-8 (byte 0xff); save the file as UTF-8"),
    (b"a\nb\x00c\n", "line 2 holds the control character '\\x00'"),
    (b"a\rb\n", "line 1 holds the control character '\\r'"),
    (b"a\nb\n\n", "line 3 is empty"),
])
def test_a_bad_ids_file_is_one_line_naming_file_line_and_value(tmp_path, text, says):
    path = _ids_file(tmp_path, text)
    with pytest.raises(D.DatasetError) as err:
        D.prepare("ids", None, path=str(path))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path.resolve()}: ") and says in msg, msg


def test_n_samples_beyond_the_file_and_paths_that_are_not_files_are_refused(tmp_path):
    path = _ids_file(tmp_path, "a\nb\nc\n")
    with pytest.raises(D.DatasetError, match=rf"^{path.resolve()}: n_samples=4 but the file "
                                             r"has 3 ids; choose 1\.\.3"):
        D.prepare("ids", 4, path=str(path))
    with pytest.raises(D.DatasetError, match=r"is not a regular file"):
        D.prepare("ids", None, path=str(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    with pytest.raises(D.DatasetError, match=rf"^ids: {fifo} is not a regular file"):
        D.prepare("ids", None, path=str(fifo))
    with pytest.raises(D.DatasetError, match="does not exist"):
        D.prepare("ids", None, path=str(tmp_path / "gone.txt"))
    with pytest.raises(D.DatasetError, match="give the ids file"):
        D.prepare("ids", None)


def test_a_million_ids_prepare_in_seconds_into_a_lean_manifest(tmp_path, monkeypatch):
    """Nothing per sample is read or hashed but the id; the manifest holds
    about the ids' own bytes."""
    n = 10**6
    path = _ids_file(tmp_path, "".join(f"item-{i:07d}\n" for i in range(n)))
    import PIL.Image

    for module in (D.manifest, D.ids):
        monkeypatch.setattr(module, "sha256_file", lambda *a: pytest.fail("a file was hashed"))
    monkeypatch.setattr(PIL.Image, "open", lambda *a: pytest.fail("an image was opened"))
    t0 = time.perf_counter()
    m = D.prepare("ids", None, path=str(path))
    out = m.save(tmp_path / "manifest.json")
    seconds = time.perf_counter() - t0
    monkeypatch.undo()
    assert m.n == n and m.ids[-1] == f"item-{n - 1:07d}"
    # each sample line is `  {"id": "item-0000000"},` : 28 bytes for a 12-byte id
    assert out.stat().st_size < n * 30
    # a loose bound for a shared machine (about 3 s on two busy cores): a
    # per-sample file access or a quadratic step would take minutes
    assert seconds < 60
    assert D.load_manifest(out).content_sha256 == m.content_sha256


def test_prh_prepare_dataset_takes_every_id_without_n_samples(tmp_path, capsys):
    path = _ids_file(tmp_path, "".join(f"s{i}\n" for i in range(1500)))
    out = tmp_path / "m.json"
    assert cli.main(["prepare-dataset", "--dataset", f"ids:{path}", "--out", str(out)]) == 0
    assert D.load_manifest(out).n == 1500


# --- the config ---------------------------------------------------------------------


def _config(tmp_path: Path, models: dict[str, str], **dataset) -> dict:
    (tmp_path / "feats.npz").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # exists; read by the job
    entry = {"source": "ids", "path": str(tmp_path / "ids.txt"), **dataset}
    return {"datasets": {"mine": entry},
            "models": {name: ({"source": f"file:{tmp_path / 'feats.npz'}", "modality": mod}
                              if mod in ("vision", "language") else {"source": mod})
                       for name, mod in models.items()},
            "metrics": {"mutual_knn": {"topk": 3}}}


FILE_MODELS = {"v": "vision", "l": "language"}


def test_config_counts_the_ids_when_n_samples_is_left_out(tmp_path):
    _ids_file(tmp_path, "".join(f"s{i}\n" for i in range(12)))
    cfg = Config(_config(tmp_path, FILE_MODELS))
    assert cfg.n_samples("mine") == 12 and cfg.raw["datasets"]["mine"]["n_samples"] == 12
    assert Config(_config(tmp_path, FILE_MODELS, n_samples=8)).n_samples("mine") == 8


@pytest.mark.parametrize("dataset, ids, says", [
    ({"n_samples": 13}, 12, "config: datasets.mine.n_samples: 13, but {p} holds 12 ids; lower "
                            "it or leave it out to take them all"),
    ({}, 3, "config: datasets.mine: {p} holds 3 ids; a dataset needs at least 4"),
    ({}, None, "config: datasets.mine.path: ids: {p} does not exist"),
])
def test_config_refuses_an_ids_file_that_cannot_give_the_samples(tmp_path, dataset, ids, says):
    if ids is not None:
        _ids_file(tmp_path, "".join(f"s{i}\n" for i in range(ids)))
    with pytest.raises(ConfigError) as err:
        Config(_config(tmp_path, FILE_MODELS, **dataset))
    assert str(err.value).startswith(says.format(p=tmp_path / "ids.txt")), str(err.value)


def test_config_refuses_a_bad_line_of_the_ids_file_at_plan_time(tmp_path):
    _ids_file(tmp_path, "a\nb\nc\nd\nb\n")
    with pytest.raises(ConfigError, match=r"^config: datasets\.mine\.path: .*ids\.txt: line 5: "
                                          r"id 'b' appears again \(first on line 2\)"):
        Config(_config(tmp_path, FILE_MODELS))


def test_config_refuses_a_model_that_embeds_on_an_ids_dataset(tmp_path):
    _ids_file(tmp_path, "".join(f"s{i}\n" for i in range(12)))
    with pytest.raises(ConfigError) as err:
        Config(_config(tmp_path, {"v": "vision", "minilm": "minilm_l6"}))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("config: models.minilm: minilm_l6 embeds images or captions, but "
                          "datasets.mine (source ids) holds sample ids alone; ids datasets "
                          "take only file: models"), msg
    # the schema: an ids dataset needs its path; the others still need n_samples
    cfg = _config(tmp_path, FILE_MODELS)
    del cfg["datasets"]["mine"]["path"]
    with pytest.raises(ConfigError, match="^config: datasets.mine: 'path' is a required property"):
        Config(cfg)
    cfg["datasets"]["mine"] = {"source": "emoji"}
    with pytest.raises(ConfigError, match="^config: datasets.mine: 'n_samples' is a required"):
        Config(cfg)


def test_config_refuses_blocks_of_a_column_an_ids_dataset_lacks(tmp_path):
    _ids_file(tmp_path, "".join(f"s{i}\n" for i in range(12)))
    cfg = _config(tmp_path, FILE_MODELS)
    cfg["calibration"] = {"blocks": "image", "n_permutations": 20}
    with pytest.raises(ConfigError, match=r"^config: calibration\.blocks: image: datasets\.mine "
                                          r"\(source ids\) has no images or captions"):
        Config(cfg)
    cfg["calibration"]["enabled"] = False  # no permutation, no resample: nothing to group
    Config(cfg)


def test_embedding_an_ids_manifest_is_refused_before_any_model_loads(tmp_path):
    from prh.embed import embed
    from prh.models.base import ModelError

    m = D.prepare("ids", None, path=str(_ids_file(tmp_path, "a\nb\nc\nd\n")))
    with pytest.raises(ModelError, match=r"^model minilm_l6: dataset ids holds sample ids alone "
                                         r".*ids datasets take only file: models"):
        embed(m, "minilm_l6", tmp_path / "out.h5", progress=False)
    assert not (tmp_path / "out.h5").exists()


def test_file_features_import_onto_an_ids_manifest(tmp_path):
    """The usage doc's route: ids.txt, a features .npz with those ids, the import."""
    ids = [f"doc-{i}" for i in range(10)]
    path = _ids_file(tmp_path, "\n".join(ids) + "\n")
    manifest = D.prepare("ids", None, path=str(path)).save(tmp_path / "manifest.json")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", sample_ids=np.array(ids), a=rng.standard_normal((10, 4)))
    out = tmp_path / "features.h5"
    model = {"source": f"file:{tmp_path / 'f.npz'}", "modality": "language",
             "storage_dtype": "float32", "layer_names": ["a"]}
    embed_step.run(model, manifest, out, name="m")
    from prh.formats.features import read_metadata

    meta = read_metadata(out)
    assert meta["sample_ids"] == ids
    assert meta["manifest_sha256"] == D.load_manifest(manifest).content_sha256


# --- a real run -----------------------------------------------------------------------


@pytest.mark.slow
def test_workflow_on_an_ids_dataset_with_file_models_runs_to_the_report(ids_run, tmp_path):
    """Nothing downstream needs a caption: alignment, calibration, statistics,
    figures, findings and the HTML report all run (the ``ids_run`` fixture);
    editing the ids reruns the dataset and everything after it, touching the
    file reruns nothing."""
    import csv

    from file_workflow import D as OUT, IDS
    from workflow_helpers import copy_run, pending, smk

    wd = copy_run(ids_run, tmp_path / "wf")
    m = D.load_manifest(wd / OUT / "manifest.json")
    assert m.ids == IDS and m.ids_only
    with open(wd / OUT / "alignment.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows and all(0 <= float(r["score"]) <= 1 for r in rows)
    assert any(r["p_value"] for r in rows)  # the cross-modal pairs are calibrated
    assert "# Findings: toy" in (wd / OUT / "findings.md").read_text()
    smk(wd, "--report", "results/report.html")
    assert (wd / "results/report.html").stat().st_size > 100_000
    ids_txt = wd / "data" / "ids.txt"
    os.utime(ids_txt)
    assert pending(wd) == set()
    ids_txt.write_text("\n".join(reversed(IDS)) + "\n")
    planned = pending(wd)
    assert {f"{OUT}/manifest.json", f"{OUT}/features/vis_a.h5", f"{OUT}/alignment.tsv"} <= planned


def test_usage_doc_ids_example_plans_prepares_and_imports(tmp_path, monkeypatch):
    """docs/usage.md's ids route as written: its Python writes the files, its
    YAML is a config that plans, and each model's file imports."""
    import yaml

    from prh.steps import prepare_dataset

    text = (Path(__file__).resolve().parents[1] / "docs/usage.md").read_text()
    code = text.split("<!-- ids-example -->")[1].split("```python")[1].split("```")[0]
    config = yaml.safe_load(text.split("<!-- ids-config -->")[1].split("```yaml")[1].split("```")[0])
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/usage.md", "exec"), {})
    cfg = Config(config)
    assert cfg.n_samples("docs") == 200
    prepare_dataset.run(cfg.raw["datasets"]["docs"], tmp_path / "manifest.json")
    for model in cfg.models:
        embed_step.run(cfg.embed_params(model), tmp_path / "manifest.json",
                       tmp_path / f"{model}.h5", name=model)
    from prh.formats.features import read_features

    assert [a.shape for a in read_features(tmp_path / "text_model.h5")] == [(200, 64)] * 2
