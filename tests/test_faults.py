"""The fault suite (issue 13): each fault a researcher meets, reproduced on
tiny generated data, ends in a clear one-line error or a correct result, with
earlier results intact and no temporary file left."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from file_factories import write_features
from prh import reruns
from prh.alignment import layer_scores
from prh.datasets import DatasetError, Manifest, Sample, prepare
from prh.formats.pair import read_pair
from prh.metrics import cka_ratio
from prh.provenance import ProvenanceError
from prh.scoring import best_layer_pair
from prh.steps import aggregate, layer_cache, pair_scores

N = 24
CACHE = dict(q=0.95, exact=False, normalize=True, topk=[5], cca_dims=[], layers=False,
             device="cpu")
METRICS = {"mutual_knn": {"topk": 5}, "cka": {}}


def make_manifest(tmp: Path, ids, name="m.json") -> tuple[Path, Manifest]:
    m = Manifest("toy", [Sample(i, f"caption {i}", f"/nonexistent/{i}.png", "") for i in ids])
    return m.save(tmp / name), m


def make_features(path: Path, manifest: Manifest, feats, model="toy_model", ids=None,
                  dtype="float32"):
    return write_features(path, feats, sample_ids=manifest.ids if ids is None else ids,
                          dtype=dtype,
                          attrs={"model": model, "manifest_sha256": manifest.content_sha256})


def toy(seed=0, n=N, layers=2, width=8):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, width)).astype(np.float32) for _ in range(layers)]


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


IDS = [f"s{i:02d}" for i in range(N)]


# -- 1. provenance -------------------------------------------------------------

def test_reordered_features_are_refused_naming_files_position_and_ids(tmp_path):
    mpath, m = make_manifest(tmp_path, IDS)
    feats = toy()
    perm = np.r_[1, 0, 2:N]
    f = make_features(tmp_path / "f.h5", m, [x[perm] for x in feats],
                      ids=[IDS[i] for i in perm])
    with pytest.raises(ProvenanceError) as err:
        layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["toy_model"], **CACHE)
    msg = one_line(err)
    assert str(f) in msg and str(mpath) in msg and "position 0" in msg
    assert "'s01'" in msg and "'s00'" in msg
    assert not (tmp_path / "s.h5").exists()


def test_another_models_features_copied_into_place_are_refused(tmp_path):
    mpath, m = make_manifest(tmp_path, IDS)
    f = make_features(tmp_path / "f.h5", m, toy(), model="glove_6b_50d")
    with pytest.raises(ProvenanceError) as err:
        layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["minilm_l6"], **CACHE)
    assert "glove_6b_50d" in one_line(err) and "minilm_l6" in one_line(err)


def test_features_of_another_manifest_of_the_same_ids_are_refused(tmp_path):
    mpath, m = make_manifest(tmp_path, IDS)
    other = Manifest("toy", [Sample(i, "edited", "/x.png", "") for i in IDS])
    f = make_features(tmp_path / "f.h5", other, toy())
    with pytest.raises(ProvenanceError) as err:
        layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["toy_model"], **CACHE)
    assert "manifest" in one_line(err) and str(f) in one_line(err)


def _cache(tmp, name, ids, seed=0, manifest=None):
    ids = list(ids)
    mpath, m = manifest or make_manifest(tmp, ids, f"{name}.json")
    f = make_features(tmp / f"{name}.f.h5", m, toy(seed))
    out = tmp / f"{name}.s.h5"
    layer_cache.run(f, out, manifest=mpath, model=["toy_model"], **CACHE)
    return out


def test_pair_of_layer_caches_from_different_subsets_is_refused(tmp_path):
    sx = _cache(tmp_path, "x", IDS)
    sy = _cache(tmp_path, "y", IDS[:5] + ["t05"] + IDS[6:], seed=1)
    with pytest.raises(ProvenanceError) as err:
        pair_scores.run(sx, sy, tmp_path / "p.h5", metrics=METRICS, model_x="x", model_y="y",
                        device="cpu", calibration=None)
    msg = one_line(err)
    assert str(sx) in msg and str(sy) in msg and "position 5" in msg and "'t05'" in msg
    assert not (tmp_path / "p.h5").exists()


def _pairs(tmp_path):
    man = make_manifest(tmp_path, IDS)
    caches = {m: _cache(tmp_path, m, IDS, seed=i, manifest=man) for i, m in enumerate("abc")}
    paths = {}
    for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
        paths[(x, y)] = tmp_path / f"{x}__{y}.h5"
        pair_scores.run(caches[x], caches[y], paths[(x, y)], metrics=METRICS, model_x=x,
                        model_y=y, device="cpu", calibration=None)
    return paths


def test_aggregate_refuses_missing_pairs_and_records_provenance(tmp_path):
    paths = _pairs(tmp_path)
    out = {k: tmp_path / f"out.{k}" for k in ("h5", "tsv", "agg")}
    kw = dict(dataset="toy", models=["a", "b", "c"], metrics=list(METRICS), out_h5=out["h5"],
              out_tsv=out["tsv"], out_aggregates_tsv=out["agg"], pairs=list(paths))
    with pytest.raises(ProvenanceError) as err:
        aggregate.run([paths[("a", "b")], paths[("a", "c")]], **kw)
    assert "missing b__c" in one_line(err)
    assert not out["h5"].exists()
    aggregate.run(list(paths.values()), **kw)
    with h5py.File(out["h5"]) as f:
        assert len(f.attrs["sample_ids_sha256"]) == 64
    assert read_pair(paths[("a", "b")])["provenance"]["manifest_sha256"]


def test_aggregate_refuses_pair_files_of_different_samples(tmp_path):
    paths = _pairs(tmp_path / "one")
    (tmp_path / "two").mkdir()
    sx = _cache(tmp_path / "two", "b", IDS[::-1])
    sy = _cache(tmp_path / "two", "c", IDS[::-1], seed=2)
    pair_scores.run(sx, sy, tmp_path / "bc.h5", metrics=METRICS, model_x="b", model_y="c",
                    device="cpu", calibration=None)
    with pytest.raises(ProvenanceError) as err:
        aggregate.run([paths[("a", "b")], paths[("a", "c")], tmp_path / "bc.h5"], dataset="toy",
                      models=["a", "b", "c"], metrics=list(METRICS), out_h5=tmp_path / "o.h5",
                      out_tsv=tmp_path / "o.tsv", pairs=list(paths))
    assert "different samples" in one_line(err) and str(tmp_path / "bc.h5") in one_line(err)


def test_cca_dim_above_a_layer_width_is_refused_naming_parameter_file_and_layer(tmp_path):
    mpath, m = make_manifest(tmp_path, IDS)
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(N, w)).astype(np.float32) for w in (12, 5, 9)]
    f = make_features(tmp_path / "f.h5", m, feats)
    params = {**CACHE, "cca_dims": [6]}
    with pytest.raises(ValueError) as err:
        layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["toy_model"], **params)
    msg = one_line(err)
    assert "metrics.svcca.cca_dim: 6" in msg and str(f) in msg
    assert "'layer.1' has width 5" in msg and "at most 5" in msg
    assert not (tmp_path / "s.h5").exists()
    # at the narrowest width it is scored
    layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["toy_model"],
                    **{**CACHE, "cca_dims": [5]})
    assert (tmp_path / "s.h5").is_file()


def test_cca_dim_above_n_is_refused_at_the_layer_cache_job_too(tmp_path):
    mpath, m = make_manifest(tmp_path, IDS)
    f = make_features(tmp_path / "f.h5", m, toy(width=40))
    with pytest.raises(ValueError) as err:
        layer_cache.run(f, tmp_path / "s.h5", manifest=mpath, model=["toy_model"],
                        **{**CACHE, "cca_dims": [30]})
    msg = one_line(err)
    assert "metrics.svcca.cca_dim: 30" in msg and f"N={N}" in msg and f"at most {N}" in msg


# -- 2. degenerate inputs ------------------------------------------------------

@pytest.mark.parametrize("metric,params", [("mutual_knn", {"topk": 5}), ("cycle_knn", {"topk": 5}),
                                           ("lcs_knn", {"topk": 5}), ("cka", {}),
                                           ("cknna", {"topk": 5})])
def test_constant_layers_score_nan_and_never_win_the_max(metric, params):
    X = np.stack(toy(1, layers=2), axis=1)
    Y = np.stack(toy(2, layers=2), axis=1)
    X[:, 1] = 3.0
    Y[:, 0] = 3.0 + 1e-7 * np.random.default_rng(0).normal(size=Y[:, 0].shape)  # near-constant
    S = layer_scores(X, Y, metric, device="cpu", **params)
    assert np.isnan(S[1]).all() and np.isnan(S[:, 0]).all()
    best, (i, j) = best_layer_pair(S)
    assert (i, j) == (0, 1) and best < 1.0


@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_huge_and_tiny_features_score_as_unit_scale(scale):
    X, Y = np.stack(toy(3), 1), np.stack(toy(4), 1)
    ref = layer_scores(X, Y, "cka", device="cpu", q=1.0)
    got = layer_scores(X * np.float32(scale), Y, "cka", device="cpu", q=1.0)
    np.testing.assert_allclose(got, ref, rtol=1e-4)


def test_float16_storage_refuses_values_beyond_its_range(tmp_path):
    _, m = make_manifest(tmp_path, IDS)
    feats = toy()
    feats[1][3, 2] = 1e5
    with pytest.raises(ValueError) as err:
        make_features(tmp_path / "f16.h5", m, feats, dtype="float16")
    assert "float16" in one_line(err) and "layer 001" in one_line(err)
    assert not list(tmp_path.glob("*f16*"))


def test_cka_ratio_of_a_negative_denominator_product_is_nan():
    r = cka_ratio(torch.tensor([1.7e-3], dtype=torch.float64),
                  torch.tensor([-1e-4], dtype=torch.float64), torch.tensor([2e-4], dtype=torch.float64))
    assert torch.isnan(r).all()


# -- 3. failure-safe reruns ----------------------------------------------------

def test_previous_features_are_kept_when_the_rerun_fails(tmp_path):
    f = tmp_path / "features" / "m.h5"
    f.parent.mkdir()
    f.write_bytes(b"good")
    reruns.keep_previous([f])
    f.unlink()  # what Snakemake does before (and after) a failing job
    bak = reruns.backup_path(f)
    assert reruns.drop_backups([f]) == [bak] and bak.read_bytes() == b"good"
    f.write_bytes(b"new")  # a successful rerun replaces it
    assert reruns.drop_backups([f]) == [] and not bak.exists()


def test_only_outputs_downstream_of_a_file_the_run_lost_are_marked_and_all_are_kept(tmp_path):
    up, hole, cache, pair, other, table = (str(tmp_path / n) for n in
                                           ("f.h5", "g.h5", "s.h5", "p.h5", "o.h5", "t.tsv"))
    for f in (up, cache, pair, other, table):
        Path(f).write_text("old")
    groups = {"cache": ([cache], [up]), "other": ([other], [hole]),  # hole: missing all along
              "pair": ([pair], [cache, other]), "table": ([table], [pair])}
    present = reruns.present_files(groups)
    assert present == {up, cache, pair, other, table}
    os.unlink(up)  # what Snakemake does to a failed job's output
    gone = {f for f in present if not os.path.exists(f)}
    stale = reruns.stale_outputs(groups, gone)
    assert stale == {up: [cache, pair, table]}
    assert all(Path(f).read_text() == "old" for f in (cache, pair, other, table))  # kept
    marks_file = tmp_path / "marks.json"
    reruns.mark_stale(marks_file, stale)
    marks = reruns.read_marks(marks_file)
    assert set(marks) == {cache, pair, table} and up in marks[cache]
    reruns.mark_stale(marks_file, {up: [cache]})  # a later failure: a new mark, others kept
    again = reruns.read_marks(marks_file)
    assert again[cache] != marks[cache] and again[pair] == marks[pair]
    assert reruns.stale_outputs(groups, set()) == {}
    marks_file.write_text("{")
    with pytest.raises(ValueError, match="marks.json: cannot read .*delete the file"):
        reruns.read_marks(marks_file)


# -- 4. clean failure paths ----------------------------------------------------

def test_disk_full_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    _, m = make_manifest(tmp_path, IDS)
    real_close = h5py.File.close

    def full_close(self):
        real_close(self)
        raise RuntimeError("Can't decrement id ref count (file write failed)\n"
                           "No space left on device")
    monkeypatch.setattr(h5py.File, "close", full_close)
    with pytest.raises(OSError) as err:
        make_features(tmp_path / "f.h5", m, toy())
    msg = one_line(err)
    assert "No space left on device" in msg and str(tmp_path / "f.h5") in msg
    assert not list(tmp_path.glob("*.h5*")) and not list(tmp_path.glob(".*tmp"))


def test_sigterm_removes_the_temporary_file(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        from prh.jobio import logged
        from prh.formats.features import FeatureWriter
        with logged({str(tmp_path / 'job.log')!r}):
            with FeatureWriter({str(tmp_path / 'f.h5')!r}, sample_ids=["a", "b"]) as w:
                w.write(0, [np.ones((1, 3), np.float32)])
                print("ready", file=sys.__stdout__, flush=True)
                time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert p.stdout.readline().strip() == "ready"
    assert list(tmp_path.glob(".f.h5.*.tmp"))
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".f.h5.*")) and not (tmp_path / "f.h5").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _temp(folder: Path, name: str, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"partial")
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_orphan_temps_are_removed_only_when_their_writer_is_gone(tmp_path):
    from prh.jobio import _host, temp_writer

    host, dead, now = _host(), _dead_pid(), time.time()
    d = tmp_path / "results" / "emoji" / "features"
    day = 24 * 3600
    gone = [_temp(d, f".a.h5.w{dead}-{host}.abc123_x.tmp", 60),  # killed writer, this host
            _temp(d, f".b.h5.w1-otherhost.abc123_x.tmp", 2 * day),  # other host, untouched 2 days
            _temp(tmp_path / "results", ".c.tsv.k2j4h5g6.tmp", 2 * day)]  # old name, 2 days
    kept = [_temp(d, f".d.h5.w{os.getpid()}-{host}.abc123_x.tmp", 2 * day),  # live writer
            _temp(d, f".e.h5.w1-otherhost.abc123_x.tmp", 3600),  # other host, recent
            _temp(d, ".f.h5.k2j4h5g6.tmp", 3600),  # old name, recent
            _temp(d, f".g.h5.w{dead}-{host}.abc123_x.tmp", -60),  # after the run's start
            _temp(d, ".h.h5.prev", 2 * day), _temp(d, "i.h5", 2 * day)]
    assert temp_writer(gone[0].name) == (dead, host) and temp_writer(gone[2].name) is None
    removed = reruns.remove_orphan_temps(tmp_path / "results", now)
    assert sorted(removed) == sorted(gone)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in gone)
    assert reruns.remove_orphan_temps(tmp_path / "nowhere", now) == []


def test_sigkill_leaves_a_temp_that_the_next_run_removes_and_a_live_one_is_kept(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        from prh.formats.features import FeatureWriter
        with FeatureWriter({str(tmp_path / 'f.h5')!r}, sample_ids=["a", "b"]) as w:
            w.write(0, [np.ones((1, 3), np.float32)])
            print("ready", file=sys.__stdout__, flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    try:
        assert p.stdout.readline().strip() == "ready"
        (tmp,) = tmp_path.glob(".f.h5.*.tmp")
        assert f".w{p.pid}-" in tmp.name
        assert reruns.remove_orphan_temps(tmp_path, time.time() + 1) == []  # its writer lives
        assert tmp.exists()
    finally:
        p.kill()
        p.wait(timeout=30)
    assert tmp.exists()  # SIGKILL runs no cleanup
    assert reruns.remove_orphan_temps(tmp_path, time.time() + 1) == [tmp]
    assert not list(tmp_path.glob(".*"))


def test_cli_os_error_is_one_line_exit_2(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "manifest.json").mkdir()  # the output path is a folder: IsADirectoryError
    folder = _folder(tmp_path, "image,caption\na.png,a cat\n")
    res = subprocess.run([sys.executable, "-m", "prh.cli", "prepare-dataset", "--dataset",
                          f"folder:{folder}", "--n-samples", "1", "--out", str(ro / "manifest.json")],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "manifest.json" in lines[0], res.stderr


def _folder(tmp: Path, text: str | bytes, name="captions.csv") -> Path:
    d = tmp / "pairs"
    d.mkdir(exist_ok=True)
    for n in ("a", "b"):
        Image.new("RGB", (4, 4), (10, 20, 30)).save(d / f"{n}.png")
    (d / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return d


def test_captions_with_a_bom_read_as_utf8(tmp_path):
    d = _folder(tmp_path, "\ufeffimage,caption\na.png,café\nb.png,dog\n")
    assert prepare("folder", 2, path=str(d)).captions == ["café", "dog"]


def test_latin1_captions_name_file_and_line(tmp_path):
    d = _folder(tmp_path, "image,caption\na.png,cat\nb.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DatasetError) as err:
        prepare("folder", 2, path=str(d))
    assert "captions.csv" in one_line(err) and "line 3" in one_line(err)


def test_empty_captions_are_refused_naming_the_row(tmp_path):
    d = _folder(tmp_path, "image,caption\na.png,cat\nb.png,  \n")
    with pytest.raises(DatasetError) as err:
        prepare("folder", 2, path=str(d))
    assert "row 2" in one_line(err) and "empty" in one_line(err)


# -- the workflow: a failing re-embedding and a failed pair job ------------------

@pytest.mark.slow
def test_workflow_failed_reembedding_keeps_features_and_rerun_never_passes_stale(
        tmp_path, workflow_copy):
    from workflow_helpers import smk, write_config

    cfg = {"datasets": {"emoji": {"source": "emoji", "n_samples": 24}},
           "models": {"glove_6b_50d": {"source": "glove_6b_50d", "modality": "language"},
                      "glove_b": {"source": "glove_6b_50d", "modality": "language"}},
           "alignment": {"threads": 1, "pairs": "all"},
           "metrics": {"mutual_knn": {"topk": 5}},
           "calibration": {"enabled": False}}
    wd = workflow_copy(cfg)
    smk(wd, "--cores", "1", "align")
    feats = wd / "results/emoji/features/glove_b.h5"
    tsv = wd / "results/emoji/alignment.tsv"
    good = feats.read_bytes()
    cfg["models"]["glove_b"]["device"] = "cuda"  # fails on a CPU host
    write_config(wd, cfg)
    from prh.jobio import _host

    orphan = _temp(feats.parent, f".glove_b.h5.w{_dead_pid()}-{_host()}.abc123_x.tmp", 60)
    live = _temp(wd / "results/emoji", f".x.tsv.w{os.getpid()}-{_host()}.abc123_x.tmp", 60)
    res = smk(wd, "--cores", "1", "align", check=False)
    assert not orphan.exists() and live.exists()  # onstart: a killed writer's temp file only
    assert "left by a killed job" in res.stderr
    live.unlink()
    assert res.returncode != 0 and tsv.exists()  # results downstream of the failure kept
    assert f"since {feats.relative_to(wd)} is missing" in res.stderr  # and named out of date
    bak = feats.parent / ".glove_b.h5.prev"
    assert bak.read_bytes() == good  # the previous good features are kept
    assert not list(feats.parent.glob(".*tmp"))
    res = smk(wd, "--cores", "1", "align", check=False)
    assert res.returncode != 0  # the failing setting fails again, never "Nothing to be done"
    del cfg["models"]["glove_b"]["device"]  # back to the old settings: put back, not recomputed
    write_config(wd, cfg)
    smk(wd, "--cores", "1", "align")
    assert feats.read_bytes() == good and tsv.exists() and not bak.exists()
    assert "put back" in (wd / "logs/emoji/embed/glove_b.log").read_text()
    # a failed pair job: its output is gone, the aggregate outputs are kept and
    # planned again, so that every rerun fails until the layer cache is made anew
    (wd / "results/emoji/layer_cache/glove_b.h5").write_bytes(b"truncated")
    res = smk(wd, "--cores", "1", "align", check=False)
    assert res.returncode != 0 and tsv.exists()
    res = smk(wd, "--cores", "1", "align", check=False)
    assert res.returncode != 0 and tsv.exists()
