"""prh.config.cost: the jobs' cost model as pure functions of numbers, and
that every job's request goes through them."""

from __future__ import annotations

import math

import pytest

from prh.config import Config, cost


def test_resident_memory_is_one_formula():
    # 1500 MB, six float64 N x N matrices per layer, the kept layers at 8192 floats
    assert cost.resident_mb(1024, 10) == 1500 + 10 * 6 * 1024 * 1024 * 8 / 2**20
    assert cost.resident_mb(1024, 10, copies=2) == 1500 + 10 * 2 * 8
    assert cost.resident_mb(1024, 10, kept_width=8192) == \
        cost.resident_mb(1024, 10) + 10 * 1024 * 8192 * 4 / 2**20
    assert cost.resident_mb(1024, 0) == cost.BASE_MB


def test_requests_are_twice_the_estimate_and_at_least_ten_minutes():
    assert cost.requests(60, 1000.2) == {"runtime": 10, "mem_mb": 2001}
    assert cost.requests(3001, 10) == {"runtime": 101, "mem_mb": 20}


def test_pair_work_scales_with_layers_samples_orders_and_permutations():
    one = ((1, 0.5, 0.1, 0),)
    assert cost.pair_work_s(512, 1, 1, one) == 0.5
    assert cost.pair_work_s(1024, 3, 2, one) == 6 * 4 * 0.5
    assert cost.pair_work_s(512, 1, 1, ((2, 0.5, 0.1, 0),)) == 1.0
    assert cost.pair_work_s(512, 1, 1, ((1, 0.5, 0.1, 100),)) == pytest.approx(0.5 * 11)
    assert cost.pair_work_s(512, 1, 1, one + ((1, 0.25, 0.1, 0),)) == 0.75


def test_statistics_time_sums_the_resamples_over_the_pairs():
    terms = [(1, 0.5, 1.0, 20)]
    assert cost.statistics_s(512, [], terms) == cost.START_S
    assert cost.statistics_s(512, [(2, 3), (1, 1)], terms) == \
        pytest.approx(cost.START_S + 7 * 0.5 * 21)


def test_stats_and_curve_jobs_ask_the_same_formula_for_default_layers(tiny_config):
    cfg = Config(tiny_config)
    n = cfg.n_samples("emoji")
    for copies in (2, 4):
        assert cfg.kernel_mem_mb("emoji", copies) == \
            1500 + math.ceil(copies * cost.DEFAULT_LAYERS * n * n * 8 / 2**20)


def test_block_costs_follow_each_datasets_sample_count(tiny_config):
    tiny_config["datasets"]["big"] = {"source": "emoji", "n_samples": 1024}
    tiny_config["alignment"] = {"pair_block": 2}
    cfg = Config(tiny_config)
    for block in cfg.pair_blocks():
        small, big = cfg.block_cost("emoji", block), cfg.block_cost("big", block)
        assert big["mb"] > small["mb"] and big["seconds"] > small["seconds"], block
        pairs = cfg.block_pairs(block)
        assert big["seconds"] == pytest.approx(cost.START_S + sum(
            cfg.pair_cost("big", x, y)["seconds"] - cost.START_S for x, y in pairs))
