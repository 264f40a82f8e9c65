"""Pair blocks (alignment.pair_block): which pairs a block job scores, what it
asks for, its file, and that every reader gets from a block file exactly what
it gets from the per-pair files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from file_factories import write_layer_cache
from prh import config as C
from prh.config import Config, ConfigError
from prh.formats.pair import read_pair, read_pairs
from prh.formats.scorecard import write_scorecard
from prh.steps import aggregate, pair_scores, scorecard

N = 24


def _zoo(m: int) -> dict:
    """M bundled models, alternately vision and language, in config order."""
    sources = ("efficientnet_lite0", "glove_6b_50d")
    return {f"m{i:02d}": {"source": sources[i % 2]} for i in range(m)}


def _config(tiny_config, m: int, block: int, **alignment) -> Config:
    tiny_config["models"] = _zoo(m)
    tiny_config["alignment"] = {"pair_block": block, **alignment}
    return Config(tiny_config)


# ---------------------------------------------------------------------------
# decisions (prh.config)


def test_one_job_per_pair_is_the_default_and_keeps_the_pair_files(tiny_config):
    cfg = Config(tiny_config)
    assert cfg.pair_block == C.schema_defaults("alignment", "pair_block") == 1
    assert not cfg.blocked
    assert cfg.pair_files("emoji") == [C.pair_path("emoji", x, y) for x, y in cfg.pairs()]
    assert cfg.pair_file("emoji", "minilm_l6", "glove_6b_50d") == \
        "results/emoji/pairs/glove_6b_50d__minilm_l6.h5"


@pytest.mark.parametrize("m, block, pairs", [(7, 3, "all"), (10, 4, "cross_modal"), (5, 2, "all")])
def test_blocks_hold_every_pair_once_between_runs_of_b_models(tiny_config, m, block, pairs):
    cfg = _config(tiny_config, m, block, pairs=pairs)
    assert cfg.blocked
    pos = {name: i for i, name in enumerate(cfg.models)}
    seen = []
    for name in cfg.pair_blocks():
        i, j = map(int, name.split("-"))
        assert i <= j
        for x, y in cfg.block_pairs(name):
            assert x < y  # named as the pair file would be
            assert sorted((pos[x] // block, pos[y] // block)) == [i, j]
            assert cfg.pair_file("emoji", y, x) == C.pair_block_path("emoji", name)
        assert cfg.block_models(name) == sorted(
            {model for p in cfg.block_pairs(name) for model in p}, key=pos.get)
        seen += cfg.block_pairs(name)
    assert sorted(seen) == sorted(cfg.pairs()) and len(seen) == len(set(seen))
    sizes = [min(block, m - start) for start in range(0, m, block)]
    if pairs == "all":  # every (i, j), i < j, has pairs; (i, i) when run i has two models
        assert len(cfg.pair_blocks()) == (len(sizes) * (len(sizes) - 1) // 2
                                          + sum(n > 1 for n in sizes))
    assert cfg.pair_files("emoji") == [C.pair_block_path("emoji", b) for b in cfg.pair_blocks()]


def test_adding_a_model_at_the_end_changes_only_the_last_runs_blocks(tiny_config):
    before = _config(tiny_config, 7, 3)  # runs: m00-m02, m03-m05, m06
    after = _config(tiny_config, 8, 3)  # m07 joins the last run
    changed = {b for b in after.pair_blocks()
               if b not in before.pair_blocks() or after.block_pairs(b) != before.block_pairs(b)}
    assert changed == {"0-2", "1-2", "2-2"}
    # a full last run: the new model starts a run of its own, no block changes
    full = _config(tiny_config, 6, 3)
    grown = _config(tiny_config, 7, 3)
    assert all(grown.block_pairs(b) == full.block_pairs(b) for b in full.pair_blocks())
    assert set(grown.pair_blocks()) - set(full.pair_blocks()) == {"0-2", "1-2"}


def test_block_params_calibrate_only_cross_modal_pairs(tiny_config):
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 20}
    cfg = _config(tiny_config, 6, 2, pairs="all")
    for b in cfg.pair_blocks():
        params = cfg.block_params(b)
        pairs = [tuple(p) for p in params["pairs"]]
        assert pairs == cfg.block_pairs(b)
        assert params["calibrated"] == [cfg.cross_modal(x, y) for x, y in pairs]
        # a calibration setting reruns only the blocks that hold a calibrated pair
        want = cfg.calibration_params(*pairs[params["calibrated"].index(True)]) \
            if any(params["calibrated"]) else {}
        assert params["calibration"] == want
    # m00, m02, m04 are vision: block 0-0 is m00 x m01 (cross-modal); 0-1 mixes both
    assert cfg.block_params("0-0")["calibrated"] == [True]
    assert cfg.block_params("0-1")["calibrated"] == [False, True, True, False]


def test_peak_loaded_follows_first_and_last_use():
    layers = {"a": 1, "b": 10, "c": 100, "d": 1000}.get
    # a and c leave after their last pair, before d arrives; b waits for d
    assert C.peak_loaded([("a", "b"), ("a", "c"), ("b", "d")], layers) == 1010
    # b leaves after its only pair; a waits for its second
    assert C.peak_loaded([("a", "b"), ("c", "d"), ("a", "c")], layers) == 1101
    assert C.peak_loaded([("a", "b")], layers) == 11
    assert C.peak_loaded([("a", "d"), ("b", "c")], layers) == 1001


def test_block_cost_counts_one_start_each_model_once_and_every_pair(tiny_config):
    tiny_config["datasets"]["emoji"]["n_samples"] = 1024
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 50}
    cfg = _config(tiny_config, 6, 3)
    cal, plain = cfg._specs[True], cfg._specs[False]
    for b in cfg.pair_blocks():
        c = cfg.block_cost("emoji", b)
        pairs = cfg.block_pairs(b)
        models = {m for p in pairs for m in p}
        work = sum(C.cost.pair_work_s(1024, cfg.model_layers(x), cfg.model_layers(y),
                                      cal if cfg.calibrated_pair(x, y) else plain)
                   for x, y in pairs)
        assert c["seconds"] == pytest.approx(
            C.cost.start_s() + C.cost.fixed_s("pair") + work
            + sum(C.cost.model_s(1024, cfg.model_layers(m), 0, cal) for m in models))
        assert c["pairs"] == len(pairs)
        assert c["layers"] == C.peak_loaded(pairs, cfg.model_layers)
        assert cfg.block_resources("emoji", b) == {
            "mem_mb": math.ceil(C.MEM_SAFETY * c["mb"]),
            "runtime": max(C.MIN_RUNTIME_MIN, math.ceil(C.RUNTIME_SAFETY * c["seconds"] / 60))}
    # block 0-1: run 1 (m03 glove, m04 lite, m05 glove) stays loaded while
    # run 0's models come and go, the largest of them a lite0
    lite, glove = cfg.model_layers("m00"), cfg.model_layers("m01")
    assert cfg.block_cost("emoji", "0-1")["layers"] == 2 * glove + lite + lite
    assert cfg.block_cost("emoji", "0-0")["layers"] == 2 * lite + glove


def test_unknown_block_and_too_many_layer_figures_are_one_line_errors(tiny_config):
    cfg = _config(tiny_config, 4, 2)
    with pytest.raises(ConfigError, match="pair block '7-9' does not exist"):
        cfg.block_pairs("7-9")
    # 13 vision x 13 language models: 169 cross-modal pairs are fine, 26 x 26 are not
    assert len(_config(tiny_config, 26, 5).layer_plot_pairs()) == 169
    with pytest.raises(ConfigError, match="plots.layer_pairs: cross_modal gives 676 pairs"):
        _config(tiny_config, 52, 5)
    tiny_config["plots"] = {"layer_pairs": "none"}
    assert _config(tiny_config, 52, 5).layer_plot_pairs() == []


# ---------------------------------------------------------------------------
# the block step and the readers


@pytest.fixture(scope="module")
def layer_caches(tmp_path_factory):
    d = tmp_path_factory.mktemp("layer_cache")
    shapes = {"a": [8, 16, 12], "b": [10, 10], "c": [6], "d": [9, 7]}
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((N, 4))
    paths = {}
    for name, widths in shapes.items():
        layers = [np.hstack([shared, rng.standard_normal((N, w))]).astype(np.float32)
                  for w in widths]
        paths[name] = write_layer_cache(d / f"{name}.h5", layers, topk=[3, 5], cca_dims=[4])
    return paths


METRICS = {"mutual_knn": {"topk": 5}, "cycle_knn": {"topk": 3}, "cka": {}}
CALIBRATION = {"n_permutations": 20, "alpha": 0.05, "seed": 3,
               "aggregates": ["max", "mean"], "metrics": ["mutual_knn", "cycle_knn"]}
PAIRS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("c", "d")]
CALIBRATED = [True, False, True, False, True]


@pytest.fixture(scope="module")
def both(layer_caches, tmp_path_factory):
    """The same pairs scored one file per pair and as one block file."""
    d = tmp_path_factory.mktemp("pairs")
    single = {}
    for (x, y), cal in zip(PAIRS, CALIBRATED):
        single[(x, y)] = d / f"{x}__{y}.h5"
        pair_scores.run(layer_caches[x], layer_caches[y], single[(x, y)], metrics=METRICS,
                        model_x=x, model_y=y, device="cpu",
                        calibration=CALIBRATION if cal else {})
    block = d / "blocks" / "0-1.h5"
    pair_scores.run_block(layer_caches, block, block="0-1", pairs=PAIRS, calibrated=CALIBRATED,
                          metrics=METRICS, device="cpu", calibration=CALIBRATION)
    return single, block


def test_a_block_file_holds_exactly_the_per_pair_files_scores(both):
    single, block = both
    assert [p.name for p in block.parent.iterdir()] == ["0-1.h5"]  # no temporary left
    got = list(read_pairs(block))
    assert [(p["model_x"], p["model_y"]) for p in got] == PAIRS
    for pair in got:
        want = read_pair(single[(pair["model_x"], pair["model_y"])])
        assert pair["metrics"] == want["metrics"] and pair["provenance"] == want["provenance"]
        for order in ("xy", "yx"):
            assert set(pair[order]) == set(want[order])
            for metric, S in want[order].items():
                np.testing.assert_array_equal(pair[order][metric], S)
        assert set(pair["calibration"]) == set(want["calibration"])
        for key, per in want["calibration"].items():
            for how, fields in per.items():
                for field, value in fields.items():
                    np.testing.assert_array_equal(pair["calibration"][key][how][field], value)
    assert {k[1] for k in got[0]["calibration"]} == {"mutual_knn", "cycle_knn"}
    assert got[1]["calibration"] == {}  # an uncalibrated pair of the block
    # one pair by name, in either order; a plain pair file reads as before
    assert read_pair(block, ("d", "c"))["model_x"] == "c"
    with pytest.raises(ValueError, match="holds no pair b x d"):
        read_pair(block, ("b", "d"))
    with pytest.raises(ValueError, match="is a block of pairs"):
        read_pair(block)
    assert [p["model_y"] for p in read_pairs(block, model="d")] == ["d", "d"]


def test_aggregate_and_scorecards_read_blocks_as_pair_files(both, tmp_path):
    single, block = both
    out = {}
    for kind, files in (("single", list(single.values())), ("block", [block])):
        out[kind] = tmp_path / kind
        out[kind].mkdir()
        aggregate.run(files, dataset="toy", models=["a", "b", "c", "d"], metrics=list(METRICS),
                      out_h5=out[kind] / "alignment.h5", out_tsv=out[kind] / "alignment.tsv",
                      out_aggregates_tsv=out[kind] / "aggregates.tsv", pairs=PAIRS)
    for name in ("alignment.tsv", "aggregates.tsv"):
        assert (out["block"] / name).read_text() == (out["single"] / name).read_text()
    modalities = dict.fromkeys("abcd", "vision")
    for model in "abcd":
        mine = [single[p] for p in PAIRS if model in p]
        want = scorecard.scorecard_rows(model, mine, dataset="toy", metrics=list(METRICS),
                                        modalities=modalities)
        got = scorecard.scorecard_rows(model, [block], dataset="toy", metrics=list(METRICS),
                                       modalities=modalities)
        assert len(got) == len(mine) * len(METRICS)
        write_scorecard(tmp_path / "want.tsv", want)
        write_scorecard(tmp_path / "got.tsv", got)
        assert (tmp_path / "got.tsv").read_text() == (tmp_path / "want.tsv").read_text()
    # the aggregate still refuses files that are not the configured pairs
    with pytest.raises(ValueError, match=r"missing b__d"):
        aggregate.run([block], dataset="toy", models=["a", "b", "c", "d"],
                      metrics=list(METRICS), out_h5=tmp_path / "x.h5",
                      out_tsv=tmp_path / "x.tsv", pairs=PAIRS + [("b", "d")])


def test_block_step_refuses_layer_caches_of_other_samples(layer_caches, layer_cache_file, tmp_path):
    from prh.provenance import ProvenanceError

    layers = [np.random.default_rng(9).standard_normal((N, 5)).astype(np.float32)]
    other = layer_cache_file("other.h5", layers, topk=[3, 5], cca_dims=[4],
                             attrs={"manifest_sha256": "0123456789abcdef"})
    caches = {**layer_caches, "e": other}
    with pytest.raises(ProvenanceError, match="come from different manifests"):
        pair_scores.run_block(caches, tmp_path / "b.h5", block="0-0", pairs=[("a", "e")],
                              calibrated=[False], metrics=METRICS, device="cpu",
                              calibration={})
    assert not (tmp_path / "b.h5").exists()
