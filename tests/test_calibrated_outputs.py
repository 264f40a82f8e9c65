"""Calibration in the workflow's library steps: pair files, the aggregate's
matrices and TSV columns (with BH across pairs), and the sample-size table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from file_factories import write_layer_cache
from prh.alignment import LayerCache
from prh.calibration import calibrate_pair
from prh.formats.alignment import read_alignment
from prh.formats.pair import read_pair
from prh.formats.tables import AGGREGATE_COLUMNS, ALIGNMENT_COLUMNS as TSV_COLUMNS
from prh.steps.aggregate import run as aggregate
from prh.steps.pair_scores import run as pair_scores
from prh.formats.sample_size import SAMPLE_SIZE_COLUMNS as COLUMNS
from prh.steps.sample_size_curve import run as sample_size_table
from prh.scoring import benjamini_hochberg

N = 40
CAL = {"n_permutations": 20, "alpha": 0.1, "seed": 3,
       "aggregates": ["max", "mean", "matching"]}
METRICS = {"mutual_knn": {"topk": 4}, "cycle_knn": {"topk": 4}, "cka": {}, "svcca": {"cca_dim": 3}}


@pytest.fixture(scope="module")
def layer_caches(tmp_path_factory):
    """a and b share structure (b is a noisy projection of a); c is independent."""
    d = tmp_path_factory.mktemp("layer_cache")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((N, 6))
    feats = {
        "a": [base @ rng.standard_normal((6, 8)), base @ rng.standard_normal((6, 12))],
        "b": [base @ rng.standard_normal((6, 10)) + 0.3 * rng.standard_normal((N, 10))],
        "c": [rng.standard_normal((N, 9)), rng.standard_normal((N, 7))],
    }
    paths = {}
    for name, layers in feats.items():
        paths[name] = write_layer_cache(d / f"{name}.h5", [x.astype(np.float32) for x in layers],
                                        topk=[4], cca_dims=[3], store_layers=True)
    return paths, feats


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_calibrated_pair_file_holds_what_calibrate_pair_computes(layer_caches, tmp_path):
    paths, feats = layer_caches
    out = tmp_path / "a__b.h5"
    pair_scores(paths["a"], paths["b"], out, metrics=METRICS, model_x="a", model_y="b",
                calibration=CAL, device="cpu")
    pair = read_pair(out)
    direct = calibrate_pair(LayerCache.from_features([x.astype(np.float32) for x in feats["a"]]),
                            LayerCache.from_features([x.astype(np.float32) for x in feats["b"]]),
                            METRICS, **CAL)
    assert set(pair["calibration"]) == set(direct) == {
        ("xy", "mutual_knn"), ("xy", "cycle_knn"), ("yx", "cycle_knn"), ("xy", "cka"), ("xy", "svcca")}
    for key, (S, per) in direct.items():
        np.testing.assert_allclose(pair[key[0]][key[1]], S, atol=1e-6)
        for how, row in per.items():
            got = pair["calibration"][key][how]
            for field in ("score", "p_value", "tau", "calibrated", "null_mean", "null_std"):
                assert got[field] == pytest.approx(row[field], abs=1e-6), (key, how, field)
            np.testing.assert_allclose(got["null"], row["null"], atol=1e-6)
            assert got["n_permutations"] == 20 and got["alpha"] == 0.1
    # shared structure: p at its minimum 1/(K+1) and a calibrated score above 0
    best = pair["calibration"][("xy", "cka")]["max"]
    assert best["p_value"] == pytest.approx(1 / 21) and best["calibrated"] > 0


def test_aggregate_adds_calibration_columns_and_bh_over_the_runs_pairs(layer_caches, tmp_path):
    paths, _ = layer_caches
    metrics = {"mutual_knn": {"topk": 4}, "cycle_knn": {"topk": 4}, "cka": {}}
    files = []
    for x, y, cal in [("a", "b", CAL), ("a", "c", CAL), ("b", "c", None)]:  # b-c left out
        files.append(tmp_path / f"{x}__{y}.h5")
        pair_scores(paths[x], paths[y], files[-1], metrics=metrics, model_x=x, model_y=y,
                    calibration=cal, device="cpu")
    models = ["a", "b", "c"]
    aggregate(files, dataset="toy", models=models, metrics=list(metrics),
              out_h5=tmp_path / "alignment.h5", out_tsv=tmp_path / "alignment.tsv",
              out_aggregates_tsv=tmp_path / "aggregates.tsv")
    rows = _rows(tmp_path / "alignment.tsv")
    assert tuple(rows[0]) == TSV_COLUMNS
    data = read_alignment(tmp_path / "alignment.h5")
    assert data["aggregates"] == ["max", "matching", "mean"]
    for metric in metrics:
        mine = [r for r in rows if r["metric"] == metric]
        done = [r for r in mine if r["p_value"]]
        assert {(r["model_x"], r["model_y"]) for r in mine if not r["p_value"]} >= {("b", "c")}
        assert all(not r["p_bh"] and not r["calibrated"] for r in mine if not r["p_value"])
        want = benjamini_hochberg([float(r["p_value"]) for r in done])
        np.testing.assert_allclose([float(r["p_bh"]) for r in done], want, rtol=1e-5)
        m = data["metrics"][metric]
        for r in done:
            i, j = models.index(r["model_x"]), models.index(r["model_y"])
            for field in ("p_value", "calibrated", "null_mean", "null_std", "tau", "p_bh"):
                assert m[field][i, j] == pytest.approx(float(r[field]), rel=1e-5)
        assert np.isnan(m["p_value"][1, 2]) and np.isnan(m["p_value"][2, 1])
        assert m["alpha"] == pytest.approx(0.1) and m["n_permutations"] == 20
    # the a-b pair shares structure; a-c does not
    cka = {(r["model_x"], r["model_y"]): r for r in rows if r["metric"] == "cka"}
    assert float(cka[("a", "b")]["p_value"]) == pytest.approx(1 / 21)
    assert float(cka[("a", "b")]["calibrated"]) > float(cka[("a", "c")]["calibrated"])
    agg = _rows(tmp_path / "aggregates.tsv")
    assert tuple(agg[0]) == AGGREGATE_COLUMNS
    # one row per aggregate for every scored (ordered) pair: 3 + 6 + 3 per aggregate
    assert len(agg) == 3 * 12
    mean_ab = next(r for r in agg if r["metric"] == "cka" and r["aggregate"] == "mean"
                   and r["model_x"] == "a" and r["model_y"] == "b")
    assert float(mean_ab["score"]) == pytest.approx(read_pair(files[0])["xy"]["cka"].mean(), rel=1e-5)
    mean_bc = next(r for r in agg if r["metric"] == "cka" and r["aggregate"] == "mean"
                   and r["model_x"] == "b")
    assert float(mean_bc["score"]) == pytest.approx(read_pair(files[2])["xy"]["cka"].mean(), rel=1e-5)
    assert mean_bc["p_value"] == ""
    # where the max is reached, as in alignment.tsv; no single layer pair for the others
    best = {(r["model_x"], r["model_y"], r["metric"]): r for r in rows}
    for r in agg:
        cols = [r[c] for c in ("layer_x", "layer_y", "layer_x_name", "layer_y_name")]
        if r["aggregate"] == "max":
            b = best[(r["model_x"], r["model_y"], r["metric"])]
            assert cols == [b[c] for c in ("layer_x", "layer_y", "layer_x_name",
                                            "layer_y_name")] and cols[0] != ""
        else:
            assert cols == [""] * 4, r


def test_uncalibrated_run_keeps_calibration_columns_empty(layer_caches, tmp_path):
    paths, _ = layer_caches
    pair_scores(paths["a"], paths["c"], tmp_path / "a__c.h5", metrics={"cka": {}},
                model_x="a", model_y="c", calibration=None, device="cpu")
    aggregate([tmp_path / "a__c.h5"], dataset="toy", models=["a", "c"], metrics=["cka"],
              out_h5=tmp_path / "al.h5", out_tsv=tmp_path / "al.tsv")
    (row,) = _rows(tmp_path / "al.tsv")
    assert row["score"] and all(row[c] == "" for c in TSV_COLUMNS[7:])
    assert "p_value" not in read_alignment(tmp_path / "al.h5")["metrics"]["cka"]


def test_sample_size_table_rows_and_bad_sizes(layer_caches, tmp_path):
    paths, _ = layer_caches
    out = tmp_path / "sample_size.tsv"
    sample_size_table(paths, [("a", "b"), ("a", "c")], out, dataset="toy", sizes=[20, 12, 40],
                      metrics={"mutual_knn": {"topk": 4}, "cka": {}}, n_permutations=20, seed=1, alpha=0.05, device="cpu")
    rows = _rows(out)
    assert tuple(rows[0]) == COLUMNS and len(rows) == 2 * 2 * 3
    ab = [r for r in rows if r["model_y"] == "b" and r["metric"] == "cka"]
    assert [int(r["n"]) for r in ab] == [12, 20, 40]
    assert float(ab[-1]["p_value"]) == pytest.approx(1 / 21)
    with pytest.raises(ValueError, match="exceed the 40 samples"):
        sample_size_table(paths, [("a", "b")], tmp_path / "x.tsv", dataset="toy", sizes=[41],
                          metrics={"cka": {}}, n_permutations=20, alpha=0.05, seed=0, device="cpu")
    assert not (tmp_path / "x.tsv").exists()
    with pytest.raises(ValueError, match="no layer cache given for model"):
        sample_size_table({"a": paths["a"]}, [("a", "b")], tmp_path / "x.tsv", dataset="toy",
                          sizes=[20], metrics={"cka": {}}, n_permutations=20, alpha=0.05,
                          seed=0, device="cpu")


def test_only_the_chosen_metrics_are_calibrated(layer_caches, tmp_path):
    paths, _ = layer_caches
    out = tmp_path / "a__b.h5"
    pair_scores(paths["a"], paths["b"], out, metrics=METRICS, model_x="a", model_y="b",
                calibration={**CAL, "metrics": ["mutual_knn"]}, device="cpu")
    pair = read_pair(out)
    assert set(pair["xy"]) == set(METRICS)  # every metric scored
    assert {m for _, m in pair["calibration"]} == {"mutual_knn"}  # one calibrated
    full = tmp_path / "full.h5"
    pair_scores(paths["a"], paths["b"], full, metrics=METRICS, model_x="a", model_y="b",
                calibration=CAL, device="cpu")
    for metric in METRICS:
        np.testing.assert_allclose(pair["xy"][metric], read_pair(full)["xy"][metric], atol=1e-12)
    # the same seeded permutations, whatever else is calibrated with it
    for field in ("p_value", "tau", "null_mean"):
        assert (read_pair(full)["calibration"][("xy", "mutual_knn")]["max"][field]
                == pair["calibration"][("xy", "mutual_knn")]["max"][field])
