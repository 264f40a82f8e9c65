"""The workflow's library steps without Snakemake: pair files, aggregation, plots, job I/O."""

from __future__ import annotations

import csv
import json
import os

import h5py
import numpy as np
import pytest
import torch

from file_factories import write_layer_cache
from prh.alignment import LayerCache, sweep
from prh.metrics import METRICS
from prh.plots import alignment_heatmaps
from prh.jobio import atomic_output, logged
from prh.formats.alignment import read_alignment
from prh.formats.features import FeatureWriter
from prh.formats.pair import read_pair
from prh.formats.tables import ALIGNMENT_COLUMNS as TSV_COLUMNS
from prh.steps.aggregate import run as aggregate
from prh.steps.pair_scores import run as pair_scores

N = 24


def _features(seed, widths):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((N, w)).astype(np.float32) for w in widths]


@pytest.fixture(scope="module")
def layer_caches(tmp_path_factory):
    d = tmp_path_factory.mktemp("layer_cache")
    shapes = {"a": [8, 16, 12], "b": [10, 10], "c": [6]}
    paths, feats = {}, {}
    for seed, (name, widths) in enumerate(shapes.items()):
        feats[name] = _features(seed, widths)
        paths[name] = write_layer_cache(d / f"{name}.h5", feats[name], topk=[3, 5], cca_dims=[4])
    return paths, feats


def _features_files(d, feats):
    """Features files of the models, layers named "<model>.block<i>"."""
    out = {}
    for name, layers in feats.items():
        out[name] = d / f"features_{name}.h5"
        with FeatureWriter(out[name], sample_ids=[f"s{i}" for i in range(N)],
                           layer_names=[f"{name}.block{i}" for i in range(len(layers))]) as w:
            w.write(0, layers)
    return out


METRIC_PARAMS = {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 3}, "cka": {},
                 "cknna": {"topk": 5}, "svcca": {"cca_dim": 4}}


def test_pair_file_matches_direct_sweep_and_scores_asymmetric_metrics_both_ways(layer_caches, tmp_path):
    paths, feats = layer_caches
    out = tmp_path / "pairs" / "a__b.h5"
    pair_scores(paths["a"], paths["b"], out, metrics=METRIC_PARAMS, model_x="a", model_y="b",
                device="cpu", calibration=None)
    pair = read_pair(out)
    assert (pair["model_x"], pair["model_y"]) == ("a", "b")
    sa, sb = LayerCache.from_features(feats["a"]), LayerCache.from_features(feats["b"])
    for metric, params in METRIC_PARAMS.items():
        assert pair["xy"][metric].shape == (3, 2)
        np.testing.assert_allclose(pair["xy"][metric], sweep(sa, sb, metric, **params), atol=1e-9)
        if METRICS[metric].symmetric:
            assert metric not in pair["yx"]
        else:
            assert pair["yx"][metric].shape == (2, 3)
            np.testing.assert_allclose(pair["yx"][metric], sweep(sb, sa, metric, **params), atol=1e-9)
    assert json.loads(h5py.File(out, "r").attrs["metrics"])["mutual_knn"] == {"topk": 5}
    assert [p.name for p in out.parent.iterdir()] == ["a__b.h5"]  # no temporary left


def test_aggregate_builds_matrices_and_tidy_tsv(layer_caches, tmp_path):
    paths, feats = layer_caches
    metrics = ["mutual_knn", "cycle_knn", "cka"]
    params = {m: METRIC_PARAMS[m] for m in metrics}
    pair_paths = []
    for x, y in [("a", "b"), ("a", "c"), ("b", "c")]:
        p = tmp_path / f"{x}__{y}.h5"
        pair_scores(paths[x], paths[y], p, metrics=params, model_x=x, model_y=y,
                    device="cpu", calibration=None)
        pair_paths.append(p)
    models = ["c", "a", "b"]  # matrix order follows the configured order, not file order
    aggregate(pair_paths, dataset="toy", models=models, metrics=metrics,
              out_h5=tmp_path / "alignment.h5", out_tsv=tmp_path / "alignment.tsv",
              features=_features_files(tmp_path, feats))
    data = read_alignment(tmp_path / "alignment.h5")
    assert data["models"] == models and list(data["metrics"]) == metrics
    idx = {m: i for i, m in enumerate(models)}
    with open(tmp_path / "alignment.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert tuple(rows[0]) == TSV_COLUMNS
    # symmetric metrics: one row per unordered pair; cycle_knn: both orders
    assert sum(r["metric"] == "mutual_knn" for r in rows) == 3
    assert sum(r["metric"] == "cycle_knn" for r in rows) == 6
    assert sum(r["metric"] == "cka" for r in rows) == 3
    for r in rows:
        m = data["metrics"][r["metric"]]
        i, j = idx[r["model_x"]], idx[r["model_y"]]
        assert float(r["score"]) == pytest.approx(m["score"][i, j], abs=1e-5)
        assert (int(r["layer_x"]), int(r["layer_y"])) == (m["layer_x"][i, j], m["layer_y"][i, j])
        # the names next to the indices are those of the features files
        assert r["layer_x_name"] == f"{r['model_x']}.block{r['layer_x']}"
        assert r["layer_y_name"] == f"{r['model_y']}.block{r['layer_y']}"
        pair = read_pair(tmp_path / ("__".join(sorted([r["model_x"], r["model_y"]])) + ".h5"))
        s = pair["xy"][r["metric"]] if r["model_x"] < r["model_y"] else (
            pair["yx"][r["metric"]] if r["metric"] == "cycle_knn" else pair["xy"][r["metric"]].T)
        assert float(r["score"]) == pytest.approx(s.max(), abs=1e-5)
        assert s[int(r["layer_x"]), int(r["layer_y"])] == pytest.approx(s.max())
    for metric in ("mutual_knn", "cka"):
        s = data["metrics"][metric]
        np.testing.assert_array_equal(s["score"], s["score"].T)
        np.testing.assert_array_equal(s["layer_x"], s["layer_y"].T)
        assert np.isnan(np.diag(s["score"])).all()
    assert data["metrics"]["cycle_knn"]["symmetric"] is False

    pngs = [tmp_path / f"heat_{m}.png" for m in metrics]
    alignment_heatmaps(tmp_path / "alignment.h5", pngs, metrics, dpi=60,
                       modalities=["vision", "language", "vision"])
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aggregate_refuses_features_whose_layers_are_not_the_pair_files(layer_caches, tmp_path):
    paths, feats = layer_caches
    p = tmp_path / "a__b.h5"
    pair_scores(paths["a"], paths["b"], p, metrics={"cka": {}}, model_x="a", model_y="b",
                device="cpu", calibration=None)
    files = _features_files(tmp_path, {"a": feats["a"][:2], "b": feats["b"]})
    with pytest.raises(ValueError, match=r"features_a.h5 lists 2 layers but .*a__b.h5 scores 3 "
                                         r"layers of a; rerun its pair job"):
        aggregate([p], dataset="toy", models=["a", "b"], metrics=["cka"], features=files,
                  out_h5=tmp_path / "x.h5", out_tsv=tmp_path / "x.tsv")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.tsv").exists()


def test_aggregate_refuses_pairs_missing_a_metric(layer_caches, tmp_path):
    paths, _ = layer_caches
    p = tmp_path / "a__b.h5"
    pair_scores(paths["a"], paths["b"], p, metrics={"cka": {}}, model_x="a", model_y="b",
                device="cpu", calibration=None)
    with pytest.raises(ValueError, match="no scores for metric 'svcca'"):
        aggregate([p], dataset="toy", models=["a", "b"], metrics=["cka", "svcca"],
                  out_h5=tmp_path / "x.h5", out_tsv=tmp_path / "x.tsv")
    assert not (tmp_path / "x.h5").exists()


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list((tmp_path / "sub").iterdir()) == []
    old = os.umask(0o022)
    try:
        with atomic_output(target) as tmp:
            tmp.write_text("whole")
    finally:
        os.umask(old)
    assert target.read_text() == "whole"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_logged_writes_output_and_traceback_to_the_log(tmp_path, capsys):
    log = tmp_path / "logs" / "job.log"
    with logged(log):
        print("progress line")
    with pytest.raises(ValueError):
        with logged(log):
            raise ValueError("bad input x\nsecond line")
    text = log.read_text()
    assert "progress line" in text
    assert "Traceback" in text and "error: ValueError: bad input x" in text
