"""prh.config.cost: the jobs' cost model, built from the work's structure
(per model, per layer pair, per permutation, per resample, per start-up),
its fitted constants, and that every job's request goes through it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prh.config import Config, ConfigError, cost
from prh.metric_info import METRICS

KNN = cost.spec("mutual_knn", 0, {"topk": 10})
CKA = cost.spec("cka", 0, {"kernel": "ip"})


def test_constants_cover_every_metric_and_term():
    c = cost.constants()
    assert set(c["metrics"]) == set(METRICS)
    for metric, terms in c["metrics"].items():
        assert set(terms) == {"sweep", "sweep_call", "layer", "null_pair", "null_moved",
                              "null_call", "resample_layer", "resample_svcca"}, metric
        assert all(math.isfinite(v) and v >= 0 for v in terms.values()), metric
        assert terms["sweep"] > 0, metric
    assert c["start_s"] > 0 and set(c["base_mb"]) == {"layer_cache", "pair", "statistics"}
    assert set(c["fixed_s"]) == {"pair", "statistics"}
    assert set(c["layer_cache"]) == {"gram", "svcca", "knn", "read", "file"}


def test_per_layer_work_is_counted_per_model_not_per_layer_pair():
    # the model's terms grow with its layers; a pair's sweeps with Lx x Ly
    one = (KNN,)
    per_file = cost.constants()["load"]["file"]
    assert cost.model_s(1024, 20, 0, one) - per_file == pytest.approx(
        2 * (cost.model_s(1024, 10, 0, one) - per_file))
    call = cost.constants()["metrics"]["mutual_knn"]["sweep_call"]  # per sweep, whatever its size
    work = lambda lx, ly: cost.pair_work_s(1024, lx, ly, one) - call  # noqa: E731
    assert work(20, 10) == pytest.approx(2 * work(10, 10))
    assert work(20, 20) == pytest.approx(4 * work(10, 10))
    assert cost.pair_s(1024, 20, 10, one, (0, 0)) == pytest.approx(
        cost.start_s() + cost.fixed_s("pair") + cost.model_s(1024, 20, 0, one) + cost.model_s(1024, 10, 0, one)
        + cost.pair_work_s(1024, 20, 10, one))


def test_nulls_grow_with_permutations_and_kernel_sweeps_with_n_squared():
    plain = cost.pair_work_s(1024, 8, 4, (CKA,))
    cal = cost.spec("cka", 200, {"kernel": "ip"})
    k200 = cost.pair_work_s(1024, 8, 4, (cal,))
    k400 = cost.pair_work_s(1024, 8, 4, (cost.spec("cka", 400, {"kernel": "ip"}),))
    assert k400 - plain == pytest.approx(2 * (k200 - plain))
    t = cost.constants()["metrics"]
    assert k200 - plain == pytest.approx(200 * (t["cka"]["null_pair"] * 8 * 4 * 1024**2
                                                + t["cka"]["null_moved"] * 4 * 1024**2
                                                + t["cka"]["null_call"]))
    sweep = lambda n, spec: cost.pair_work_s(n, 8, 4, (spec,)) - t[spec[0]]["sweep_call"]  # noqa: E731
    assert sweep(1024, CKA) == pytest.approx(4 * sweep(512, CKA))
    # a kNN sweep is N k lookups per layer pair: linear in N and in k
    assert sweep(1024, KNN) == pytest.approx(2 * sweep(512, KNN))
    assert sweep(1024, cost.spec("mutual_knn", 0, {"topk": 20})) == pytest.approx(2 * sweep(1024, KNN))
    # asymmetric metrics are scored in both orders
    cyc = cost.spec("cycle_knn", 0, {"topk": 10})
    assert cost.pair_work_s(1024, 8, 4, (cyc,)) == pytest.approx(
        2 * (t["cycle_knn"]["sweep"] * 8 * 4 * 1024 * 10 + t["cycle_knn"]["sweep_call"]))


def test_memory_counts_what_is_resident_at_once():
    n, mb = 1024, cost.MB
    # a Gram matrix per layer; kNN masks only with a kNN metric; kept layers at their width
    assert cost.model_bytes(n, 10, 0, (CKA,)) == 10 * (4 * n * n + 8 * n)
    assert cost.model_bytes(n, 10, 0, (KNN,)) == 10 * (6 * n * n + 16 * n * 10 + 8 * n)
    assert cost.model_bytes(n, 10, 512, (CKA,)) - cost.model_bytes(n, 10, 0, (CKA,)) == 10 * n * 512 * 4
    # a calibrated CKA's null: packed upper triangle on the fixed side, entry-major copy moved
    cal = (cost.spec("cka", 200, {}),)
    assert cost.model_bytes(n, 10, 0, cal, "fixed") - cost.model_bytes(n, 10, 0, (CKA,)) == 10 * 2 * n * n
    assert cost.model_bytes(n, 10, 0, cal, "moved") - cost.model_bytes(n, 10, 0, (CKA,)) == 10 * 4 * n * n
    # a pair job: both models, the null matrices, a block's temporaries, the base
    got = cost.pair_mb(n, 30, 10, cal, (0, 0))
    want = (cost.constants()["base_mb"]["pair"] + cost.block_temp_mb(n, 30, 10, cal)
            + (cost.model_bytes(n, 30, 0, cal, "fixed") + cost.model_bytes(n, 10, 0, cal, "moved")
               + 8 * 200 * 30 * 10) / mb)
    assert got == pytest.approx(want)
    assert cost.block_temp_mb(1024, 81, 81, (KNN,)) == cost.BLOCK_MB


def test_statistics_resample_every_model_once_per_index_set():
    metrics = {"cka": {"kernel": "ip"}}
    schemes = {"cka": ("jackknife", 20)}
    models = {"a": (10, 0), "b": (5, 0), "c": (5, 0)}
    one = cost.statistics_s(1024, models, [("a", "b")], metrics, schemes)
    two = cost.statistics_s(1024, models, [("a", "b"), ("a", "c")], metrics, schemes)
    sub = cost.subset_size(1024, "jackknife", 20)
    g = (cost.spec("cka", 0, {"kernel": "ip"}),)
    # a second pair adds its sweeps (full sample and 20 resamples), never its models' resamples
    assert two - one == pytest.approx(cost.pair_work_s(1024, 10, 5, g)
                                      + 20 * cost.pair_work_s(sub, 10, 5, g))
    assert sub == 1024 - 1024 // 20 and cost.subset_size(1024, "subsample", 50) == 512


def test_requests_scale_by_speed_and_safety():
    assert cost.requests(60, 1000) == {"runtime": cost.MIN_RUNTIME_MIN, "mem_mb": 1500}
    assert cost.requests(3000, 10) == {"runtime": 100, "mem_mb": 15}
    assert cost.requests(3000, 10, speed=2.0)["runtime"] == 50


def test_config_jobs_use_the_model_with_each_models_shape(tiny_config):
    tiny_config["datasets"]["emoji"]["n_samples"] = 1024
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 100, "metrics": ["cka"]}
    cfg = Config(tiny_config)
    assert (cfg.model_layers("efficientnet_lite0"), cfg.model_width("efficientnet_lite0")) == (18, 1280)
    x, y = "efficientnet_lite0", "minilm_l6"
    specs = (cost.spec("mutual_knn", 0, {"topk": 5}), cost.spec("cycle_knn", 0, {"topk": 5}),
             cost.spec("cka", 100, {"kernel": "ip", "sigma": 1.0, "eps": 1e-6}))
    c = cfg.pair_cost("emoji", x, y)
    assert c["seconds"] == pytest.approx(cost.pair_s(1024, 18, 7, specs, (0, 0)))
    assert c["mb"] == pytest.approx(cost.pair_mb(1024, 18, 7, specs, (0, 0)))
    assert cfg.pair_resources("emoji", x, y) == {"mem_mb": c["mem_mb"], "runtime": c["runtime"]}
    s = cfg.layer_cache_cost("emoji", x)
    assert s["seconds"] == pytest.approx(cost.layer_cache_s(1024, 18, 1280))
    # width sizes the requests; no rerun (the embedding's params ignore it)
    tiny_config["models"]["minilm_l6"]["width"] = 4096
    wide = Config(tiny_config)
    assert wide.layer_cache_cost("emoji", "minilm_l6")["seconds"] > cfg.layer_cache_cost("emoji", "minilm_l6")["seconds"]
    assert wide.embed_params("minilm_l6") == cfg.embed_params("minilm_l6")
    # twice as fast a machine halves the runtime requests
    tiny_config["resources"] = {"speed": 2.0}
    fast = Config(tiny_config).layer_cache_cost("emoji", x)
    assert fast["seconds"] == s["seconds"]
    assert fast["runtime"] == max(cost.MIN_RUNTIME_MIN,
                                  math.ceil(cost.RUNTIME_SAFETY * s["seconds"] / 2 / 60))


def test_block_costs_count_each_model_once_and_follow_each_datasets_sample_count(tiny_config):
    tiny_config["datasets"]["big"] = {"source": "emoji", "n_samples": 1024}
    tiny_config["alignment"] = {"pair_block": 2}
    cfg = Config(tiny_config)
    for block in cfg.pair_blocks():
        small, big = cfg.block_cost("emoji", block), cfg.block_cost("big", block)
        assert big["mb"] > small["mb"] and big["seconds"] > small["seconds"], block
        pairs = cfg.block_pairs(block)
        models = {m for p in pairs for m in p}
        specs = cfg._specs[False]
        assert big["seconds"] == pytest.approx(
            cost.start_s() + cost.fixed_s("pair")
            + sum(cost.model_s(1024, cfg.model_layers(m), 0, specs) for m in models)
            + sum(cost.pair_work_s(1024, cfg.model_layers(x), cfg.model_layers(y), specs)
                  for x, y in pairs))


def small_models(tmp_path) -> dict:
    """Layer caches of three synthetic models (N=512; 6 and 12 layers of
    width 256, 4 of width 128), made as benchmarks/bench_cost.py makes them,
    written by the layer cache step."""
    from prh.formats.features import FeatureWriter
    from prh.steps import layer_cache

    rng = np.random.default_rng(0)
    n = 512
    latent = rng.normal(size=(n, 32)).astype(np.float32)
    out = {}
    for name, layers, width in (("x6", 6, 256), ("x12", 12, 256), ("y", 4, 128)):
        feats = tmp_path / f"{name}.h5"
        with FeatureWriter(feats, sample_ids=[f"s{i}" for i in range(n)]) as w:
            w.write(0, [latent @ rng.normal(size=(32, width)).astype(np.float32)
                        + rng.normal(size=(n, width)).astype(np.float32) for _ in range(layers)])
        out[name] = tmp_path / f"{name}.cache.h5"
        layer_cache.run(feats, out[name], q=0.95, exact=False, normalize=True, topk=[10],
                        cca_dims=[10], layers=True, device="cpu")
    return out


PAIR_JOB = """
import json, sys, time
import numpy as np
from prh.jobio import set_threads
from prh.scoring import aggregate
from prh.steps import pair_scores

set_threads(1)
aggregate(np.zeros((2, 2)), "matching")  # scipy's import: start-up, not the step
job = json.loads(sys.argv[1])
t0 = time.process_time()
pair_scores.run(job["x"], job["y"], job["out"], metrics=job["metrics"], model_x="x", model_y="y",
                device="cpu", calibration=job["calibration"])
print(time.process_time() - t0)
"""
PAPER_METRICS = {"mutual_knn": {"topk": 10}, "cycle_knn": {"topk": 10},
                 "lcs_knn": {"topk": 10}, "edit_distance_knn": {"topk": 10},
                 "cka": {"kernel": "ip"}, "unbiased_cka": {"kernel": "ip"},
                 "cknna": {"topk": 10}, "svcca": {"cca_dim": 10}}

#: the measures beyond the paper's (issue 23), as benchmarks/bench_cost.py fits them
NEW = {"jaccard_knn": {"topk": 10}, "procrustes": {}, "procrustes_angular": {},
       "rsa_pearson": {"distance": "cosine"}, "rsa_spearman": {"distance": "cosine"},
       "pwcca": {"pca_dim": 10}, "ridge_r2": {"penalty": 1.0}, "rv": {}}


def test_new_measures_work_counts_follow_their_structure():
    t = cost.constants()["metrics"]
    # Procrustes: per layer pair a product of factors min(N, D) wide, its
    # smaller Gram matrix and eigenvalues, so its sweep follows the widths;
    # unknown widths count N (the most it can be)
    pro = cost.spec("procrustes", 0, {})
    sweep = lambda n, w: cost.pair_work_s(n, 8, 4, (pro,), w) - t["procrustes"]["sweep_call"]  # noqa: E731
    assert sweep(1024, (256, 128)) == pytest.approx(
        t["procrustes"]["sweep"] * 32 * 256 * 128 * (1024 + 2 * 128))
    assert sweep(1024, (4096, 2048)) == pytest.approx(sweep(1024, (0, 0)))  # both capped at N
    assert sweep(1024, (512, 512)) == pytest.approx(4 * (1024 + 1024) / (1024 + 512)
                                                    * sweep(1024, (256, 256)))
    # PWCCA: d x d products of bases, both orders; RSA, ridge, RV: N^2 products
    pw = cost.spec("pwcca", 0, {"pca_dim": 20})
    assert cost.sweep_count("pwcca", 1024, 8, 4, {"pca_dim": 20}) == 32 * 1024 * 400
    assert cost.pair_work_s(1024, 8, 4, (pw,)) == pytest.approx(
        2 * (t["pwcca"]["sweep"] * 32 * 1024 * 400 + t["pwcca"]["sweep_call"]))
    for m in ("rsa_pearson", "rsa_spearman", "ridge_r2", "rv"):
        assert cost.sweep_count(m, 512, 3, 2, {}) == 6 * 512 ** 2, m
    # a null of a measure that cannot reuse its sweep costs its pair work per permutation
    cal = cost.spec("procrustes", 200, {})
    assert cost.pair_work_s(1024, 8, 4, (cal,), (256, 128)) - cost.pair_work_s(
        1024, 8, 4, (pro,), (256, 128)) == pytest.approx(200 * (
            t["procrustes"]["null_pair"] * 32 * 256 * 128 * (1024 + 256)
            + t["procrustes"]["null_moved"] * 4 * 1024 ** 2 + t["procrustes"]["null_call"]))


def test_new_measures_memory():
    n = 1024
    base = cost.model_bytes(n, 10, 512, ())
    # RSA's standardised RDMs, ridge's residual forms and scaled Gram matrices: N x N float32
    assert cost.model_bytes(n, 10, 512, (cost.spec("rsa_pearson", 0, {}),)) - base == 10 * 4 * n * n
    assert cost.model_bytes(n, 10, 512, (cost.spec("ridge_r2", 0, {}),)) - base == 10 * 8 * n * n
    # their nulls' sides as CKA's
    cal = (cost.spec("rsa_spearman", 100, {}),)
    assert cost.model_bytes(n, 10, 512, cal, "moved") - base == 10 * 8 * n * n
    assert cost.model_bytes(n, 10, 512, cal, "fixed") - base == 10 * 6 * n * n
    assert cost.model_bytes(n, 10, 512, (cost.spec("rv", 100, {}),), "moved") - base == 10 * 4 * n * n
    # Procrustes: float64 factors min(N, D) wide; PWCCA: d-wide bases and weights
    assert cost.model_bytes(n, 10, 512, (cost.spec("procrustes", 0, {}),)) - base == 10 * 8 * n * 512
    assert cost.model_bytes(n, 10, 4096, (cost.spec("procrustes", 0, {}),)) - cost.model_bytes(
        n, 10, 4096, ()) == 10 * 8 * n * n
    assert cost.model_bytes(n, 10, 512, (cost.spec("pwcca", 0, {}),)) - base == 10 * 8 * 10 * (n + 512)
    # a Procrustes null gathers Y's factors for a batch of permutations at once
    cal = (cost.spec("procrustes", 100, {}),)
    assert cost.block_temp_mb(n, 4, 4, cal) - cost.block_temp_mb(n, 4, 4, (cost.spec(
        "procrustes", 0, {}),)) == cost.GATHER_MB


def _pair_steps_cpu(jobs: dict) -> dict[str, float]:
    """Pair jobs' steps, each in a fresh process as the workflow runs it (K=32,
    the paper's aggregates, one thread): CPU seconds beyond start-up, the least
    of each job's ``rounds`` runs. The jobs take turns, so that a slow spell of
    a shared machine (CI once measured a 6-layer job 1.3x slower than the same
    job on 12 layers right after it) reaches every job alike."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    best = {name: float("inf") for name in jobs}
    for r in range(max(job[-1] for job in jobs.values())):
        for name, (x, y, out, metrics, rounds) in jobs.items():
            if r >= rounds:
                continue
            cal = {"n_permutations": 32, "alpha": 0.05,
                   "aggregates": ["max", "mean", "row_max_mean", "matching"],
                   "seed": 0, "blocks": None, "metrics": list(metrics)}
            job = {"x": str(x), "y": str(y), "out": str(out), "metrics": metrics, "calibration": cal}
            res = subprocess.run([sys.executable, "-c", PAIR_JOB, json.dumps(job)], check=True,
                                 capture_output=True, text=True, cwd=root,
                                 env={**os.environ, "PYTHONPATH": str(root)})
            best[name] = min(best[name], float(res.stdout.split()[-1]))
    return best


@pytest.fixture(scope="module")
def measured_pair_steps(tmp_path_factory):
    """The three small pair jobs both CPU tests below read, measured together;
    twice each for the two whose ratio is tested."""
    models = small_models(tmp_path_factory.mktemp("cost"))
    out = models["y"].parent
    return _pair_steps_cpu({
        "x6": (models["x6"], models["y"], out / "x6.h5", PAPER_METRICS, 2),
        "x12": (models["x12"], models["y"], out / "x12.h5", PAPER_METRICS, 2),
        "new": (models["x6"], models["y"], out / "new.h5", NEW, 1)})


def test_model_estimates_small_pair_jobs_cpu_time(measured_pair_steps):
    """Two pair jobs measured side by side against the model: their ratio
    (the model's structure: what doubling one model's layers costs) within
    [0.67, 1.5]x. Each job alone: the constants were fitted under load
    averages 7-12 (prh/config/cost.yaml), and on an idle machine the same jobs
    take about half that CPU time (estimate/measured 2.2 here idle, 3.0 on
    CI's machine for a smaller shape), so one job's band is [0.5, 4]: the
    model may ask for too much on a quiet machine, never for less than half
    of what a job uses."""
    specs = tuple(cost.spec(m, 32, p) for m, p in PAPER_METRICS.items())
    got = {x: measured_pair_steps[x] for x in ("x6", "x12")}
    want = {x: cost.pair_s(512, layers, 4, specs, (256, 128)) - cost.start_s()
            for x, layers in (("x6", 6), ("x12", 12))}
    ratio = (want["x12"] / want["x6"]) / (got["x12"] / got["x6"])
    assert 0.67 <= ratio <= 1.5, (want, got)
    for x in got:
        assert 0.5 <= want[x] / got[x] <= 4, (x, want[x], got[x])


def test_model_estimates_a_small_pair_jobs_cpu_time_for_the_new_measures(measured_pair_steps):
    """As for the paper's eight above, the measures of issue 23 together."""
    specs = tuple(cost.spec(m, 32, p) for m, p in NEW.items())
    measured = measured_pair_steps["new"]
    estimate = cost.pair_s(512, 6, 4, specs, (256, 128)) - cost.start_s()
    assert 0.5 <= estimate / measured <= 4, (estimate, measured)


def test_partitions_follow_each_jobs_gpus(tiny_config):
    # no partitions named (local runs): no slurm_partition resource at all
    assert Config(tiny_config).partition_resources("embed_model") == {}
    tiny_config["resources"] = {"cpu_partition": "cpu", "gpu_partition": "gpu"}
    tiny_config["models"]["minilm_l6"]["device"] = "cuda"
    cfg = Config(tiny_config)
    embed = cfg.partition_resources("embed_model")["slurm_partition"]

    class Wildcards:
        def __init__(self, model):
            self.model = model
    assert embed(Wildcards("minilm_l6")) == "gpu"  # device cuda: one GPU
    assert embed(Wildcards("glove_6b_50d")) == "cpu"  # device cpu: gpu=0, never the GPU partition
    assert cfg.embed_resources("glove_6b_50d")["gpu"] == 0
    assert cfg.partition_resources("pair_scores") == {"slurm_partition": "cpu"}
    tiny_config["alignment"] = {"device": "cuda"}
    assert Config(tiny_config).partition_resources("statistics") == {"slurm_partition": "gpu"}


def test_plan_totals_and_limits_name_the_job_and_the_limit(tiny_config):
    from prh.config import ConfigError

    tiny_config["calibration"] = {"enabled": True}
    tiny_config["embedding"] = {"mem_mb": 100}
    cfg = Config(tiny_config)
    line = cfg.plan_totals()
    assert line.startswith(f"plan: {len(cfg.planned_jobs())} jobs") and "CPU-hours" in line
    cfg.check_limits()  # no limits set: nothing to refuse
    biggest = max(j["mem_mb"] for j in cfg.planned_jobs())
    pairs = sorted(j["mem_mb"] for j in cfg.planned_jobs() if j["rule"] == "pair_scores")
    assert sum(pairs) > biggest
    tiny_config["resources"] = {"max_mem_mb": biggest, "gpu_max_mem_mb": 10**6}
    cfg = Config(tiny_config)
    cfg.check_limits(1)  # each pair job fits alone
    with pytest.raises(ConfigError, match=r"resources.max_mem_mb: group of 3 pair jobs "
                                          r"\(group-components pairs=3\) asks for mem_mb"):
        cfg.check_limits(3)  # side by side they do not
    tiny_config["resources"] = {"max_runtime_min": 1}
    with pytest.raises(ConfigError, match=r"^resources.max_runtime_min: job \w+ emoji"):
        Config(tiny_config).check_limits()


# -- the features representation (prh.config.cost_features) -------------------------

FKNN = cost.spec("mutual_knn", 50, {"topk": 10})
FCKNNA = cost.spec("cknna", 50, {"topk": 10})
FCKA = cost.spec("cka", 50, {"kernel": "ip", "sigma": 1.0, "eps": 1e-6})
FALL = (FKNN, FCKNNA, FCKA)


def test_features_constants_cover_their_terms():
    from prh.config import cost_features as fcost

    c = fcost.constants()
    assert set(c) == {"prepare", "product", "rank", "derive", "file", "load", "kernel",
                      "kernel_rows", "cov", "cov_rows", "metrics"}
    assert set(c["metrics"]) >= {"mutual_knn", "cknna"}
    for terms in c["metrics"].values():
        assert set(terms) == {"layer", "sweep", "null", "call"}
    assert all(v >= 0 for k, v in c.items() if k != "metrics")
    assert c["product"] > 0 and c["rank"] > 0


def test_features_jobs_count_no_n_squared_term_but_the_search():
    from prh.config import cost_features as fcost

    ks, widths = [10, 30], (64, 64)
    n = 10**5
    # a pair's sweeps and nulls, a model's read and terms: linear in N
    assert fcost.pair_work_s(10 * n, 2, 3, FALL, widths) == pytest.approx(
        10 * fcost.pair_work_s(n, 2, 3, FALL, widths))
    assert fcost.model_s(10 * n, 2, 64, FALL, ks) == pytest.approx(
        10 * fcost.model_s(n, 2, 64, FALL, ks))
    assert fcost.model_bytes(10 * n, 2, 64, FALL, ks) == pytest.approx(
        10 * fcost.model_bytes(n, 2, 64, FALL, ks))
    # rows and lists: a few per cent of one dense layer's N x N float32 Gram matrix
    assert fcost.model_bytes(n, 2, 64, FALL, ks) < 0.1 * 4 * n * n
    # the search is the one N^2 D term: the layer cache job's time, not its memory
    grow = [fcost.layer_cache_s(m, 1, 64, ks) - cost.start_s() for m in (n, 10 * n)]
    assert grow[1] / grow[0] == pytest.approx(100, rel=0.05)
    assert fcost.layer_cache_mb(10 * n, 1, 64, ks) < 2 * fcost.layer_cache_mb(n, 1, 64, ks) + 1000
    # a permutation of a kNN metric costs N k^2 list reads, of CKA N Dx Dy products
    one = lambda spec, k: fcost.pair_work_s(n, 1, 1, (cost.spec(spec[0], k, dict(spec[2])),),  # noqa: E731
                                            widths)
    assert one(FKNN, 20) - one(FKNN, 10) == pytest.approx(one(FKNN, 10) - one(FKNN, 0))


def test_subsets_read_from_wide_lists_cost_a_share_of_a_search():
    from prh.config import cost_features as fcost

    assert fcost.reread_share(0.8, 10, None) == 1.0
    assert fcost.reread_share(0.8, 10, 10) == 1.0  # k + 1 of K' = k cannot be kept
    assert fcost.reread_share(1.0, 10, 30) == 0.0  # a reordered full sample
    assert fcost.reread_share(0.8, 10, 30) < 1e-7  # a 5-group jackknife: 4e-8
    assert 0.03 < fcost.reread_share(0.5, 10, 30) < 0.06  # half-samples: ~5 %
    n, sub = 10**5, 80000
    read = fcost.resample_model_s(sub, n, 1, 64, (FKNN,), {10: 30})
    searched = fcost.resample_model_s(sub, n, 1, 64, (FKNN,), {})
    assert searched > 50 * read
    assert searched == pytest.approx(fcost.layer_cache_s(sub, 1, 64, [10]) - cost.start_s()
                                     - fcost.constants()["file"], rel=0.01)


def test_a_features_dataset_asks_for_what_its_work_needs(tiny_config):
    tiny_config["datasets"]["emoji"]["n_samples"] = 10**5
    for m in tiny_config["models"].values():
        m["n_layers"], m["width"] = 2, 64
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 50,
                                  "sample_sizes": [1000, 10000, 100000]}
    tiny_config["metrics"] = {"mutual_knn": {"topk": 10}, "cknna": {"topk": 10}, "cka": {}}
    tiny_config["resources"] = {"max_mem_mb": 8000, "max_runtime_min": 120}
    cfg = Config(tiny_config)
    assert cfg.representation("emoji") == "features"
    cfg.check_limits()  # nothing over 8 GB or 2 h
    for job in cfg.planned_jobs():
        if job["rule"] != "embed_model":
            assert job["mem_mb"] < 4000, job
    x, y = "efficientnet_lite0", "minilm_l6"
    assert cfg.pair_cost("emoji", x, y)["mb"] < 2000
    tiny_config["alignment"] = {"representation": "dense"}  # 10^5 x 10^5 Gram matrices
    with pytest.raises(ConfigError, match="resources.max_mem_mb: job layer_cache"):
        Config(tiny_config).check_limits()


def test_a_features_block_of_one_pair_costs_what_its_pair_job_costs(tiny_config):
    del tiny_config["models"]["glove_6b_50d"]
    tiny_config["datasets"]["emoji"]["n_samples"] = 10**5
    tiny_config["alignment"] = {"representation": "features", "pair_block": 2}
    tiny_config["calibration"] = {"enabled": True, "n_permutations": 50}
    cfg = Config(tiny_config)
    (block,) = cfg.pair_blocks()
    (pair,) = cfg.block_pairs(block)
    b, p = cfg.block_cost("emoji", block), cfg.pair_cost("emoji", *pair)
    assert b["seconds"] == pytest.approx(p["seconds"])
    assert b["mb"] == pytest.approx(p["mb"])
    dense = Config({**tiny_config, "alignment": {"representation": "dense", "pair_block": 2}})
    assert dense.block_cost("emoji", block)["mb"] > 100 * b["mb"]
