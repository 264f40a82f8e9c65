"""The statistics step: intervals, paired comparisons and the competence trend
from one set of shared resamples, read back from its tables."""

from __future__ import annotations

import numpy as np
import pytest

from file_factories import write_layer_cache
from prh.inference.permutation import block_permutations
from prh.inference.resampling import resample_indices
from prh.scoring import aggregate
from prh.sweep.dispatch import sweep
from prh.datasets import Manifest, Sample, sample_blocks
from prh.metric_info import get_metric
from prh.formats.statistics import read_comparisons, read_intervals, read_trend
from prh.formats.layer_cache import load_layer_cache
from prh.steps.statistics import run as statistics

N = 60
STRENGTH = {"v_weak": 0.3, "v_mid": 1.0, "v_strong": 3.0}   # shared-latent weight
COMPETENCE = {"v_weak": 10.0, "v_mid": 20.0, "v_strong": 30.0}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Three vision models whose alignment with two language models rises with
    their competence (more shared latent), on one manifest with 2-caption blocks."""
    d = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((N, 6))

    def model(weight):
        return [(weight * latent @ rng.standard_normal((6, 12))
                 + rng.standard_normal((N, 12))).astype(np.float32) for _ in range(2)]

    feats = {m: model(w) for m, w in STRENGTH.items()}
    feats["lang_a"] = model(2.0)
    feats["lang_b"] = model(0.5)
    ids = [f"s{i:03d}" for i in range(N)]
    samples = [Sample(i, f"caption {k}", str(d / f"img{k // 2}.png"), f"sha{k // 2}")
               for k, i in enumerate(ids)]
    manifest = d / "manifest.json"
    Manifest("toy", samples).save(manifest)
    paths = {}
    for name, layers in feats.items():
        paths[name] = write_layer_cache(d / f"{name}.h5", layers, topk=[5], sample_ids=ids)
    return d, paths, manifest


def _run(zoo, tmp_path, **over):
    d, paths, manifest = zoo
    vision, language = list(STRENGTH), ["lang_a", "lang_b"]
    kw = dict(dataset="toy", out_intervals=tmp_path / "intervals.tsv",
              out_comparisons=tmp_path / "comparisons.tsv", out_trend=tmp_path / "trend.tsv",
              metrics={"cka": {}, "mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 5}},
              pairs=[(v, l) for v in vision for l in language],
              comparisons=[[["v_strong", "lang_a"], ["v_weak", "lang_a"]],
                           [["lang_a", "v_mid"], ["lang_b", "v_mid"]]],
              trend=True, aggregates=["max", "mean"], method="auto", level=0.95, seed=0,
              blocks=None, modalities={**dict.fromkeys(vision, "vision"),
                                       **dict.fromkeys(language, "language")},
              competence={m: {"competence": c, "competence_source": "test"}
                          for m, c in COMPETENCE.items()},
              manifest=manifest)
    kw.update(over)
    statistics(paths, **kw)
    return (read_intervals(tmp_path / "intervals.tsv"),
            read_comparisons(tmp_path / "comparisons.tsv"), read_trend(tmp_path / "trend.tsv"))


def test_tables_hold_the_scores_their_intervals_differences_and_trend(zoo, tmp_path):
    _, paths, _ = zoo
    intervals, comparisons, trend = _run(zoo, tmp_path)
    st = {m: load_layer_cache(p, device="cpu") for m, p in paths.items()}
    # 6 pairs x (cka, mutual_knn: one row; cycle_knn: xy, yx and mean) x 2 aggregates
    assert len(intervals) == 6 * (1 + 1 + 3) * 2
    by = {(r["model_x"], r["model_y"], r["metric"], r["order"], r["aggregate"]): r
          for r in intervals}
    for (x, y, metric, order, how), r in by.items():
        if order == "mean":
            want = (aggregate(sweep(st[x], st[y], metric, topk=5), how)
                    + aggregate(sweep(st[y], st[x], metric, topk=5), how)) / 2
        else:
            p = {} if metric == "cka" else {"topk": 5}
            want = aggregate(sweep(st[x], st[y], metric, **p), how)
        # centred on the full-sample score, with a real width
        assert float(r["score"]) == pytest.approx(want, abs=1e-5), (x, y, metric, order)
        assert float(r["low"]) < float(r["score"]) < float(r["high"])
        assert r["method"] == "jackknife"
        assert r["coverage"] == get_metric(metric).interval_coverage
        assert int(r["n_resamples"]) == {"cka": 20, "mutual_knn": 5, "cycle_knn": 5}[metric]
    # comparisons: difference = score_a - score_b, the strong model clearly above the weak
    assert len(comparisons) == 2 * 3 * 2
    row = next(r for r in comparisons if r["metric"] == "cka" and r["aggregate"] == "max"
               and r["a_x"] == "v_strong")
    assert float(row["score_a"]) == pytest.approx(float(by["v_strong", "lang_a", "cka", "xy",
                                                          "max"]["score"]), abs=1e-5)
    assert float(row["difference"]) == pytest.approx(float(row["score_a"]) - float(row["score_b"]),
                                                     abs=1e-5)
    assert float(row["low"]) > 0 and float(row["p_value"]) < 0.01
    assert float(row["p_bh"]) >= float(row["p_value"])
    # the (language, vision) comparison reads pairs stored as (vision, language)
    lang = next(r for r in comparisons if r["metric"] == "cka" and r["a_x"] == "lang_a"
                and r["aggregate"] == "max")
    assert float(lang["score_a"]) == pytest.approx(
        float(by["v_mid", "lang_a", "cka", "xy", "max"]["score"]), abs=1e-5)
    # the trend: vision models by competence, per partner and pooled, both statistics
    assert {r["modality"] for r in trend} == {"vision"}   # two language models: no trend
    pooled = {(r["metric"], r["statistic"]): r for r in trend
              if r["partner"] == "pooled" and r["aggregate"] == "max"}
    assert len(pooled) == 3 * 2
    assert float(pooled["cka", "spearman"]["estimate"]) == pytest.approx(1.0)
    assert float(pooled["cka", "slope"]["low"]) > 0
    assert pooled["cka", "slope"]["models"] == "v_weak,v_mid,v_strong"
    assert pooled["cka", "slope"]["competence"] == "10,20,30"
    # 3 models: the best ordering has probability 1/6 (both signs: 2/6)
    assert float(pooled["cka", "spearman"]["p_models"]) == pytest.approx(2 / 6)


def test_blocks_keep_blocks_whole_in_resamples_and_permutations(zoo, tmp_path):
    _, paths, manifest = zoo
    labels = sample_blocks(manifest, "image_sha256")
    assert len(set(labels)) == N // 2
    for idx in resample_indices(N, "jackknife", 5, blocks=labels):
        kept = {labels[i] for i in idx}
        # every kept block is kept whole (both its captions)
        assert len(idx) == 2 * len(kept)
    for idx in resample_indices(N, "subsample", 4, blocks=labels):
        assert len(idx) == 2 * len({labels[i] for i in idx}) == N // 2
    perm = block_permutations(labels)(N, 20, 0)
    for row in perm:
        for i in range(0, N, 2):
            assert labels[row[i]] == labels[row[i + 1]]
    intervals, _, _ = _run(zoo, tmp_path, blocks="image_sha256")
    (tmp_path / "plain").mkdir()
    plain, _, _ = _run(zoo, tmp_path / "plain")
    a = {(r["model_x"], r["model_y"], r["metric"], r["order"], r["aggregate"]): r
         for r in intervals}
    b = {(r["model_x"], r["model_y"], r["metric"], r["order"], r["aggregate"]): r
         for r in plain}
    assert a.keys() == b.keys()
    assert all(a[k]["score"] == b[k]["score"] for k in a)       # same scores,
    assert any(a[k]["se"] != b[k]["se"] for k in a)             # other resamples
    with pytest.raises(ValueError, match="blocks column 'colour' is not a manifest column"):
        sample_blocks(manifest, "colour")


def test_files_from_other_samples_are_refused(zoo, tmp_path):
    d, paths, manifest = zoo
    other = d / "other.h5"
    rng = np.random.default_rng(9)
    write_layer_cache(other, [rng.standard_normal((N, 4)).astype(np.float32)], topk=[5],
                      sample_ids=[f"t{i}" for i in range(N)])
    with pytest.raises(ValueError, match="disagree on their samples"):
        statistics({**paths, "v_weak": other}, dataset="toy", out_intervals=tmp_path / "i.tsv",
                   out_comparisons=tmp_path / "c.tsv", out_trend=tmp_path / "t.tsv",
                   metrics={"cka": {}}, pairs=[("v_weak", "lang_a")], comparisons=[],
                   trend=False, aggregates=["max"], method="auto", level=0.95, seed=0,
                   blocks=None, modalities={}, competence={})
    assert not (tmp_path / "i.tsv").exists()
