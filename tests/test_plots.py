"""Every figure of prh.plots from small synthetic inputs (no Snakemake run):
files are written, non-empty and of the right format; bad input gives a
ValueError naming what is wrong, or a figure that says what is missing.
Figure text is checked in SVG output, where it is plain text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import plot_fixtures as fx
from prh import plots
from prh.plots import data as pdata
from prh import competence as competence_mod
from prh.plots import style

MODELS = ["minilm_l6", "efficientnet_lite1", "glove_6b_50d", "efficientnet_lite0",
          "efficientnet_lite2"]
MODALITY = {"minilm_l6": "language", "glove_6b_50d": "language",
            "efficientnet_lite0": "vision", "efficientnet_lite1": "vision",
            "efficientnet_lite2": "vision"}
SIZES = {"minilm_l6": 22_700_000, "glove_6b_50d": 20_000_000, "efficientnet_lite0": 4_650_000,
         "efficientnet_lite1": 5_420_000, "efficientnet_lite2": 6_090_000}
METRICS = ["mutual_knn", "cycle_knn", "lcs_knn", "cka"]
TOP1 = {"efficientnet_lite0": 75.1, "efficientnet_lite1": 76.7, "efficientnet_lite2": 77.6}
COMPETENCE = {m: {"competence": v, "competence_source": "ImageNet top-1 %"}
              for m, v in TOP1.items()}
DPI = 60


def is_png(p):
    return p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


def is_pdf(p):
    return p.is_file() and p.read_bytes()[:5] == b"%PDF-" and p.stat().st_size > 500


def both(tmp_path, stem):
    return [tmp_path / f"{stem}.png", tmp_path / f"{stem}.pdf"]


def assert_written(paths):
    for p in paths:
        assert (is_png if p.suffix == ".png" else is_pdf)(p), p
    assert not list(paths[0].parent.glob(".*.tmp"))


@pytest.fixture
def run(tmp_path):
    feats = {m: fx.features(tmp_path / f"features/{m}.h5", modality=MODALITY[m],
                            param_count=SIZES[m], n_layers=4 if MODALITY[m] == "vision" else 5)
             for m in MODELS}
    fx.alignment(tmp_path / "alignment.h5", MODELS, METRICS)
    return tmp_path, feats


# ---------------------------------------------------------------------------
# every figure


def test_heatmaps_raw_and_calibrated(run):
    d, feats = run
    raw = [both(d, f"heatmap_{m}") for m in METRICS]
    cal = [both(d, f"heatmap_{m}_calibrated") for m in METRICS]
    plots.alignment_heatmaps(d / "alignment.h5", raw, METRICS, modalities=MODALITY,
                             features=feats, calibrated_outputs=cal, dpi=DPI)
    for paths in raw + cal:
        assert_written(paths)


def test_heatmap_order_is_vision_then_language_by_size(run):
    d, feats = run
    info = {m: pdata.model_info(m, feats[m]) for m in MODELS}
    order = [MODELS[i] for i in pdata.order_models(MODELS, info)]
    assert order == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                     "glove_6b_50d", "minilm_l6"]
    # unknown sizes go last within their group
    info["efficientnet_lite0"] = pdata.ModelInfo("efficientnet_lite0", "vision", None)
    order = [MODELS[i] for i in pdata.order_models(MODELS, info)]
    assert order[:3] == ["efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite0"]


def test_heatmap_compatible_call_and_svg(run):
    """The old call (one path per metric, modalities as a list) still works."""
    d, _ = run
    outs = [d / f"old_{m}.png" for m in METRICS]
    plots.alignment_heatmaps(d / "alignment.h5", outs, METRICS, dpi=DPI,
                             modalities=[MODALITY[m] for m in MODELS])
    assert all(is_png(p) for p in outs)
    plots.alignment_heatmaps(d / "alignment.h5", [d / "h.svg"], ["cka"], dpi=DPI)
    svg = (d / "h.svg").read_text()
    assert "toy: cka" in svg and "EffNet-Lite0" in svg


def test_calibrated_heatmap_without_calibration_draws_the_raw_scores_and_says_so(tmp_path):
    fx.alignment(tmp_path / "alignment.h5", MODELS, ["cka"], calibrated=False)
    plots.alignment_heatmaps(tmp_path / "alignment.h5", [tmp_path / "raw.svg"], ["cka"],
                             calibrated_outputs=[tmp_path / "cal.svg"], dpi=DPI)
    cal = fx.svg_text(tmp_path / "cal.svg")
    assert "holds no calibrated score of cka" in cal and "raw score (no calibrated scores)" in cal
    assert "calibration is switched off" not in cal
    # no p-values: nothing marked n.s., and the figure says the scores are not compared
    raw = fx.svg_text(tmp_path / "raw.svg")
    assert "n.s." not in raw and "not calibrated" in raw and "above its permutation" not in raw


def test_not_significant_cells_are_marked(tmp_path):
    fx.alignment(tmp_path / "alignment.h5", MODELS, ["cka"], alpha=0.05)
    plots.alignment_heatmaps(tmp_path / "alignment.h5", [tmp_path / "raw.svg"], ["cka"],
                             dpi=DPI)
    svg = (tmp_path / "raw.svg").read_text()
    assert "n.s." in svg and "p_BH" in svg
    # alpha above every p: nothing hatched, and the note says so
    fx.alignment(tmp_path / "alignment.h5", MODELS, ["cka"], alpha=0.5)
    plots.alignment_heatmaps(tmp_path / "alignment.h5", [tmp_path / "raw.svg"], ["cka"],
                             dpi=DPI)
    svg = (tmp_path / "raw.svg").read_text()
    assert "n.s." not in svg
    assert "each of the 10 calibrated pairs is above its permutation null" in svg


@pytest.mark.parametrize("calibrated", [False, True])
def test_competence_figures(run, calibrated):
    d, feats = run
    out = both(d, f"competence_{calibrated}")
    plots.alignment_vs_competence(d / "alignment.h5", out, metric="mutual_knn",
                                  modalities=MODALITY, features=feats, competence=COMPETENCE,
                                  calibrated=calibrated, dpi=DPI)
    assert_written(out)


def test_competence_curves_put_the_side_with_competence_on_x(run):
    d, feats = run
    data = pdata.load_alignment(d / "alignment.h5")
    comp = competence_mod.resolve_competence(MODELS, features=feats, configured=COMPETENCE)
    c = plots.competence.competence_curves(data, "mutual_knn", modalities=MODALITY,
                                           competence=comp)
    assert c.x_side == "vision" and c.x_models == list(TOP1)
    assert c.x.tolist() == list(TOP1.values())
    assert c.line_models == ["minilm_l6", "glove_6b_50d"]
    idx = {m: i for i, m in enumerate(MODELS)}
    s = data["metrics"]["mutual_knn"]["score"]
    assert c.raw[0, 2] == s[idx["minilm_l6"], idx["efficientnet_lite2"]]
    assert c.calibrated is not None and c.not_significant is not None
    # asymmetric metric: the mean of both orders
    c = plots.competence.competence_curves(data, "cycle_knn", modalities=MODALITY,
                                           competence=comp)
    s = data["metrics"]["cycle_knn"]["score"]
    a, b = idx["glove_6b_50d"], idx["efficientnet_lite0"]
    assert c.raw[1, 0] == pytest.approx((s[a, b] + s[b, a]) / 2)


def test_bits_per_byte_competence_and_the_side_with_more_competence_on_x(tmp_path):
    feats = {m: fx.features(tmp_path / f"{m}.h5", modality=MODALITY[m], param_count=SIZES[m])
             for m in MODELS}
    feats["minilm_l6"] = fx.features(tmp_path / "lm.h5", modality="language", param_count=1,
                                     bpb=np.array([0.8, 1.0, np.nan]))
    comp = competence_mod.resolve_competence(MODELS, features=feats, configured=COMPETENCE)
    assert comp["minilm_l6"].value == pytest.approx(1 - 0.9)
    assert comp["minilm_l6"].source == competence_mod.BPB_SOURCE
    assert "glove_6b_50d" not in comp
    fx.alignment(tmp_path / "alignment.h5", MODELS, ["mutual_knn"])
    data = pdata.load_alignment(tmp_path / "alignment.h5")
    c = plots.competence.competence_curves(data, "mutual_knn", modalities=MODALITY,
                                           competence=comp)
    # three vision models have a competence, one language model: vision on x
    assert c.x_side == "vision" and c.x_models == list(TOP1)
    only_lm = {m: v for m, v in comp.items() if MODALITY[m] == "language"}
    c = plots.competence.competence_curves(data, "mutual_knn", modalities=MODALITY,
                                           competence=only_lm)
    assert c.x_side == "language" and c.x_models == ["minilm_l6"]
    assert c.missing == ["glove_6b_50d"]
    out = tmp_path / "c.svg"
    plots.alignment_vs_competence(tmp_path / "alignment.h5", out, metric="mutual_knn",
                                  features=feats, competence={}, dpi=DPI)
    assert "not shown (no competence): GloVe-50d" in fx.svg_text(out)


# untrained baselines: labels and chance competence

def test_untrained_labels():
    assert style.model_label("efficientnet_lite0", "random", 0) == "EffNet-Lite0 (untrained)"
    assert style.model_label("efficientnet_lite0", "random", 2) == "EffNet-Lite0 (untrained, seed 2)"
    assert style.model_label("efficientnet_lite0", "random", 0, ["4.7M"]) == \
        "EffNet-Lite0 (untrained, 4.7M)"
    assert style.model_label("efficientnet_lite0", "pretrained", None, ["4.7M"]) == "EffNet-Lite0 (4.7M)"
    assert style.model_label("efficientnet_lite0") == "EffNet-Lite0"
    assert style.model_label("x" * 40, "random").endswith("… (untrained)")  # the tag is never cut


def test_untrained_model_info_and_chance_competence(tmp_path):
    u = fx.features(tmp_path / "u.h5", modality="vision", param_count=4_650_000,
                    weights="random", seed=0)
    t = fx.features(tmp_path / "t.h5", modality="vision", param_count=4_650_000,
                    weights="pretrained")
    old = fx.features(tmp_path / "old.h5", modality="vision", param_count=4_650_000)
    info = pdata.model_info("efficientnet_lite0", u)
    assert info.untrained and (info.weights, info.seed) == ("random", 0)
    assert info.label() == "EffNet-Lite0 (untrained)"
    for f in (t, old):
        i = pdata.model_info("efficientnet_lite0", f)
        assert not i.untrained and i.weights is None and i.label() == "EffNet-Lite0"
    feats = {"lite0_rand": u, "efficientnet_lite0": t}
    comp = competence_mod.resolve_competence(list(feats), features=feats)
    assert comp == {"lite0_rand": competence_mod.Competence(0.1, competence_mod.CHANCE_SOURCE)}
    assert competence_mod.CHANCE_COMPETENCE == pytest.approx(100 / 1000)   # ImageNet top-1 %
    configured = {"lite0_rand": {"competence": 0.2, "competence_source": "measured"}}
    comp = competence_mod.resolve_competence(list(feats), features=feats, configured=configured)
    assert comp["lite0_rand"] == competence_mod.Competence(0.2, "measured")


def test_untrained_models_are_labelled_in_the_figures(run):
    d, feats = run
    models = MODELS + ["lite0_rand"]
    feats = {**feats, "lite0_rand": fx.features(d / "features/lite0_rand.h5", modality="vision",
                                                param_count=SIZES["efficientnet_lite0"],
                                                weights="random", seed=0)}
    fx.alignment(d / "alignment.h5", models, ["mutual_knn"])
    plots.alignment_heatmaps(d / "alignment.h5", [d / "h.svg"], ["mutual_knn"],
                             features=feats, dpi=DPI)
    svg = (d / "h.svg").read_text()
    assert "lite0_rand (untrained, 4.7M)" in svg and "EffNet-Lite0 (4.7M)" in svg
    data = pdata.load_alignment(d / "alignment.h5")
    info = {m: pdata.model_info(m, feats[m]) for m in models}
    comp = competence_mod.resolve_competence(models, features=feats, configured=COMPETENCE)
    c = plots.competence.competence_curves(data, "mutual_knn", modalities={
        **MODALITY, "lite0_rand": "vision"}, competence=comp, labels=pdata.labels_of(models, info))
    assert c.x_models[0] == "lite0_rand" and c.x[0] == pytest.approx(0.1)
    assert c.label("lite0_rand") == "lite0_rand (untrained)"
    assert c.label("efficientnet_lite0") == "EffNet-Lite0"
    plots.alignment_vs_competence(d / "alignment.h5", d / "c.svg", metric="mutual_knn",
                                  features=feats, competence=COMPETENCE, dpi=DPI)
    svg = (d / "c.svg").read_text()
    assert "lite0_rand (untrained)" in svg and competence_mod.CHANCE_SOURCE in svg
    pair = fx.pair(d / "p.h5", "lite0_rand", "minilm_l6", ["mutual_knn"], lx=4, ly=5)
    plots.pair_layer_heatmaps(pair, {"mutual_knn": d / "l.svg"}, model_x="lite0_rand",
                              model_y="minilm_l6", features_x=feats["lite0_rand"],
                              features_y=feats["minilm_l6"], dataset="toy", dpi=DPI)
    assert "lite0_rand (untrained) × MiniLM-L6" in (d / "l.svg").read_text()


def test_layer_heatmaps(tmp_path):
    feats = {m: fx.features(tmp_path / f"{m}.h5", modality=MODALITY[m], param_count=1,
                            n_layers=n) for m, n in (("efficientnet_lite0", 4), ("minilm_l6", 5))}
    pair = fx.pair(tmp_path / "efficientnet_lite0__minilm_l6.h5", "efficientnet_lite0",
                   "minilm_l6", ["mutual_knn", "cycle_knn"], lx=4, ly=5)
    outs = {"mutual_knn": both(tmp_path, "l_mknn"), "cycle_knn": both(tmp_path, "l_cycle")}
    plots.pair_layer_heatmaps(pair, outs, model_x="efficientnet_lite0", model_y="minilm_l6",
                              features_x=feats["efficientnet_lite0"],
                              features_y=feats["minilm_l6"], dataset="toy", dpi=DPI)
    for paths in outs.values():
        assert_written(paths)
    # asked the other way round: rows are minilm's layers
    plots.pair_layer_heatmaps(pair, {"mutual_knn": tmp_path / "rev.svg"}, model_x="minilm_l6",
                              model_y="efficientnet_lite0", dpi=DPI)
    from prh.formats.pair import read_pair
    from prh.plots.layers import pair_matrix

    p = read_pair(pair)
    np.testing.assert_array_equal(pair_matrix(p, "mutual_knn", "minilm_l6",
                                              "efficientnet_lite0", pair), p["xy"]["mutual_knn"].T)
    np.testing.assert_array_equal(pair_matrix(p, "cycle_knn", "minilm_l6",
                                              "efficientnet_lite0", pair), p["yx"]["cycle_knn"])
    s = p["xy"]["mutual_knn"].T
    i, j = np.unravel_index(np.argmax(s), s.shape)
    assert f"X layer {i}" in (tmp_path / "rev.svg").read_text()


def test_metric_agreement(run):
    d, _ = run
    out = both(d, "agreement")
    plots.metric_agreement(d / "alignment.h5", out, dpi=DPI)
    assert_written(out)


def test_metric_agreement_groups_the_metrics_by_family(run, tmp_path):
    d, _ = run
    from prh.metric_info import METRICS as INFO

    names = list(pdata.load_alignment(d / "alignment.h5")["metrics"])
    plots.metric_agreement(d / "alignment.h5", tmp_path / "a.svg", dpi=DPI)
    svg = (tmp_path / "a.svg").read_text()
    kinds = {m: INFO[m].kind for m in names}
    for kind in set(kinds.values()):
        assert f">{kind}<" in svg
    # the tick labels in family order: the global ones before the local ones
    at = {m: svg.index(f">{m}<") for m in names}
    assert max(at[m] for m in names if kinds[m] == "global") < min(
        at[m] for m in names if kinds[m] == "local")
    assert plots.agreement.family_blocks(["cka", "procrustes", "mutual_knn", "jaccard_knn",
                                          "ridge_r2"]) == [("global", 0, 1), ("local", 2, 3),
                                                           ("predictive", 4, 4)]


def test_agreement_matrix_is_spearman_over_pairs():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    a = rng.uniform(size=(5, 5))
    a = np.triu(a, 1) + np.triu(a, 1).T
    np.fill_diagonal(a, np.nan)
    b = a ** 2 + 0.0            # same ranks
    c = -a                      # reversed
    rho, n = plots.agreement.agreement_matrix({"a": a, "b": b, "c": c})
    assert n == 10
    np.testing.assert_allclose(rho, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    d = rng.uniform(size=(5, 5))
    rho, _ = plots.agreement.agreement_matrix({"a": a, "d": d})
    off = ~np.eye(5, dtype=bool)
    assert rho[0, 1] == pytest.approx(spearmanr(a[off], d[off]).statistic)


def test_sample_size_curve(tmp_path):
    tsv = fx.sample_size_tsv(tmp_path / "s.tsv", [("efficientnet_lite0", "minilm_l6"),
                                                 ("efficientnet_lite1", "glove_6b_50d")],
                             ["mutual_knn", "cka"])
    out = both(tmp_path, "sample_size")
    plots.sample_size_curve(tsv, out, dpi=DPI)
    assert_written(out)


def test_every_format_and_atomic_writes(run):
    d, _ = run
    out = [d / "a.png", d / "a.pdf", d / "a.svg"]
    plots.metric_agreement(d / "alignment.h5", out, dpi=DPI)
    assert is_png(out[0]) and is_pdf(out[1]) and out[2].read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="unknown figure format 'jpeg'"):
        plots.metric_agreement(d / "alignment.h5", d / "a.jpeg", dpi=DPI)
    assert not (d / "a.jpeg").exists()


def test_pdf_output_is_reproducible(run):
    d, _ = run
    plots.metric_agreement(d / "alignment.h5", d / "x.pdf", dpi=DPI)
    first = (d / "x.pdf").read_bytes()
    plots.metric_agreement(d / "alignment.h5", d / "x.pdf", dpi=DPI)
    assert (d / "x.pdf").read_bytes() == first


def test_short_names():
    assert style.short_name("efficientnet_lite0") == "EffNet-Lite0"
    assert style.short_name("vit_large_patch14_dinov2_lvd142m") == "ViT-L/14 DINOv2"
    assert style.short_name("llama_65b") == "LLaMA-65B"
    assert style.short_name("open_llama_3b") == "OpenLLaMA-3B"
    assert style.short_name("my_model") == "my_model"
    assert len(style.short_name("x" * 40)) == 22
    assert style.format_count(4_650_000) == "4.7M" and style.format_count(None) == "?"


# ---------------------------------------------------------------------------
# bad input


def test_all_nan_matrix_draws_a_figure_saying_so(tmp_path):
    s = np.full((3, 3), np.nan)
    out = tmp_path / "h.svg"
    plots.heatmap(s, ["a", "b", "c"], out, title="toy: cka", dpi=DPI)
    assert "every cell is NaN" in out.read_text()
    plots.heatmap(s, ["a", "b", "c"], tmp_path / "h.png", title="toy: cka", dpi=DPI)
    assert is_png(tmp_path / "h.png")


def test_partly_nan_matrix_is_drawn_with_grey_cells(tmp_path):
    s = np.array([[np.nan, 0.5, np.nan], [0.5, np.nan, 0.2], [np.nan, 0.2, np.nan]])
    plots.heatmap(s, ["a", "b", "c"], tmp_path / "h.svg", title="t", dpi=DPI)
    text = (tmp_path / "h.svg").read_text()
    assert "0.50" in text and "0.20" in text


def test_one_model_draws_a_figure_saying_so(tmp_path):
    out = tmp_path / "one.svg"
    plots.heatmap(np.full((1, 1), np.nan), ["glove_6b_50d"], out, title="toy: cka", dpi=DPI)
    assert "Only one model (glove_6b_50d)" in out.read_text()
    fx.alignment(tmp_path / "a1.h5", ["glove_6b_50d"], ["cka", "mutual_knn"])
    plots.metric_agreement(tmp_path / "a1.h5", tmp_path / "ag.svg", dpi=DPI)
    assert "Only 0 model pair(s)" in (tmp_path / "ag.svg").read_text()


def test_fewer_than_three_pairs_or_one_metric(tmp_path):
    fx.alignment(tmp_path / "a.h5", ["a", "b"], ["cka", "svcca"])
    plots.metric_agreement(tmp_path / "a.h5", tmp_path / "ag.svg", dpi=DPI)
    assert "Only 1 model pair(s)" in (tmp_path / "ag.svg").read_text()
    fx.alignment(tmp_path / "b.h5", MODELS, ["cka"])
    plots.metric_agreement(tmp_path / "b.h5", tmp_path / "ag1.svg", dpi=DPI)
    assert "Only one metric (cka)" in (tmp_path / "ag1.svg").read_text()


def test_no_competence_says_so_in_the_figure(run):
    d, feats = run
    for calibrated in (False, True):
        out = d / f"none_{calibrated}.svg"
        plots.alignment_vs_competence(d / "alignment.h5", out, metric="cka",
                                      modalities=MODALITY, features=feats, competence={},
                                      calibrated=calibrated, dpi=DPI)
        assert "no competence values configured" in out.read_text()
        plots.alignment_vs_competence(d / "alignment.h5", d / "none.png", metric="cka",
                                      modalities=MODALITY, competence={},
                                      calibrated=calibrated, dpi=DPI)
        assert is_png(d / "none.png")


def test_competence_without_other_modality_or_pairs_says_so(tmp_path):
    vision = ["efficientnet_lite0", "efficientnet_lite1"]
    fx.alignment(tmp_path / "v.h5", vision, ["cka"])
    plots.alignment_vs_competence(tmp_path / "v.h5", tmp_path / "v.svg", metric="cka",
                                  modalities=MODALITY, competence=COMPETENCE, dpi=DPI)
    assert "no language models to align" in (tmp_path / "v.svg").read_text()
    # cross-modal pairs not computed
    fx.alignment(tmp_path / "n.h5", ["efficientnet_lite0", "minilm_l6"], ["cka"],
                 nan_pairs=[("efficientnet_lite0", "minilm_l6")])
    plots.alignment_vs_competence(tmp_path / "n.h5", tmp_path / "n.svg", metric="cka",
                                  modalities=MODALITY, competence=COMPETENCE, dpi=DPI)
    assert "pairs not computed" in (tmp_path / "n.svg").read_text()


@pytest.mark.parametrize("entry, words", [
    ({"competence": "high", "competence_source": "x"}, "models.m.competence: 'high'"),
    ({"competence": float("nan"), "competence_source": "x"}, "not a finite number"),
    ({"competence": 70.0}, "models.m.competence_source"),
])
def test_bad_competence_values_are_named(entry, words):
    with pytest.raises(ValueError, match=words):
        competence_mod.resolve_competence(["m"], configured={"m": entry})


def test_unknown_metric_is_named(run):
    d, feats = run
    with pytest.raises(ValueError, match="has no metric 'svcca'; it has: mutual_knn"):
        plots.alignment_heatmaps(d / "alignment.h5", [d / "x.png"], ["svcca"], dpi=DPI)
    with pytest.raises(ValueError, match="has no metric 'svcca'"):
        plots.alignment_vs_competence(d / "alignment.h5", d / "x.png", metric="svcca",
                                      modalities=MODALITY, competence=COMPETENCE, dpi=DPI)
    with pytest.raises(ValueError, match="has no metric 'svcca'"):
        plots.metric_agreement(d / "alignment.h5", d / "x.png", metrics=["cka", "svcca"])
    pair = fx.pair(d / "p.h5", "a", "b", ["cka"])
    with pytest.raises(ValueError, match="has no scores for metric 'svcca'; it has: cka"):
        plots.pair_layer_heatmaps(pair, {"svcca": d / "x.png"}, model_x="a", model_y="b")
    with pytest.raises(ValueError, match="holds a x b, not a x c"):
        plots.pair_layer_heatmaps(pair, {"cka": d / "x.png"}, model_x="a", model_y="c")
    assert not (d / "x.png").exists()


def test_bad_shapes_and_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="score must be 3 x 3 for 3 models, got \\(2, 2\\)"):
        plots.heatmap(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "x.png", title="t")
    with pytest.raises(ValueError, match="infinite"):
        plots.heatmap(np.full((2, 2), np.inf), ["a", "b"], tmp_path / "x.png", title="t")
    with pytest.raises(ValueError, match="cannot read alignment file .*missing.h5"):
        plots.metric_agreement(tmp_path / "missing.h5", tmp_path / "x.png")
    with pytest.raises(ValueError, match="modality of c unknown"):
        fx.alignment(tmp_path / "a.h5", ["a", "c"], ["cka"])
        plots.alignment_vs_competence(tmp_path / "a.h5", tmp_path / "x.png", metric="cka",
                                      modalities={"a": "vision"},
                                      competence={"a": {"competence": 1.0,
                                                        "competence_source": "s"}})
    bad = tmp_path / "bad.tsv"
    bad.write_text("dataset\tmodel_x\n")
    with pytest.raises(ValueError, match="bad.tsv: not a prh table: missing column\\(s\\) model_y"):
        plots.sample_size_curve(bad, tmp_path / "x.png")
    with pytest.raises(ValueError, match="layer scores must be a non-empty 2-D matrix"):
        plots.layer_heatmap(np.zeros((0, 3)), tmp_path / "x.png", model_x="a", model_y="b",
                            metric="cka")
    assert not (tmp_path / "x.png").exists()


def test_layer_heatmap_with_nan(tmp_path):
    s = np.array([[0.1, np.nan], [0.3, 0.2]])
    plots.layer_heatmap(s, tmp_path / "l.svg", model_x="a", model_y="b", metric="cka", dpi=DPI)
    text = (tmp_path / "l.svg").read_text()
    assert "1 NaN cell(s)" in text and "X layer 1" in text
    plots.layer_heatmap(np.full((2, 2), np.nan), tmp_path / "n.svg", model_x="a", model_y="b",
                        metric="cka", dpi=DPI)
    assert "Every layer pair" in (tmp_path / "n.svg").read_text()


def test_layer_names_mismatch_is_named(tmp_path):
    f = fx.features(tmp_path / "a.h5", modality="vision", param_count=1, n_layers=3)
    with pytest.raises(ValueError, match="lists 3 layers but the pair file's score matrix has 4"):
        pdata.layer_names(f, 4)


def test_competence_figure_draws_intervals_trend_and_the_null_band(run, tmp_path):
    from prh.formats.statistics import write_intervals, write_trend

    d, feats = run
    data = pdata.load_alignment(d / "alignment.h5")
    comp = competence_mod.resolve_competence(MODELS, features=feats, configured=COMPETENCE)
    idx = {m: i for i, m in enumerate(MODELS)}
    s = data["metrics"]["mutual_knn"]["score"]
    rows = []
    for lm in ("minilm_l6", "glove_6b_50d"):
        for k, vm in enumerate(TOP1):
            v = float(s[idx[lm], idx[vm]])
            # stored as (vision, language): the figure must find it either way round
            rows.append({"x": vm, "y": lm, "order": "xy", "metric": "mutual_knn",
                         "aggregate": "max", "score": v, "se": 0.01, "low": v - 0.01 * (k + 1),
                         "high": v + 0.02, "level": 0.9, "method": "jackknife",
                         "n_resamples": 5})
    write_intervals(tmp_path / "intervals.tsv", dataset="toy", rows=rows)
    from prh.formats.statistics import read_intervals

    c = plots.competence.competence_curves(data, "mutual_knn", modalities=MODALITY,
                                           competence=comp,
                                           intervals=read_intervals(tmp_path / "intervals.tsv"))
    assert c.low.shape == c.raw.shape == (2, 3) and c.level == 0.9
    np.testing.assert_allclose(c.raw - c.low, [[0.01, 0.02, 0.03]] * 2, atol=1e-5)
    m = data["metrics"]["mutual_knn"]
    cells = [(idx[lm], idx[vm]) for lm in ("minilm_l6", "glove_6b_50d") for vm in TOP1]
    assert c.null_band == pytest.approx((min(m["null_mean"][i, j] for i, j in cells),
                                         max(m["tau"][i, j] for i, j in cells)))
    write_trend(tmp_path / "trend.tsv", dataset="toy", rows=[
        {"modality": "vision", "metric": "mutual_knn", "aggregate": "max", "partner": "pooled",
         "statistic": "spearman", "estimate": 0.75, "se": 0.1, "low": 0.55, "high": 0.95,
         "level": 0.95, "p_value": 0.0123, "p_models": 0.5, "n_models": 3}])
    out = tmp_path / "c.svg"
    plots.alignment_vs_competence(d / "alignment.h5", out, metric="mutual_knn",
                                  modalities=MODALITY, features=feats, competence=COMPETENCE,
                                  dpi=DPI, intervals=tmp_path / "intervals.tsv",
                                  trend=tmp_path / "trend.tsv")
    svg = out.read_text()
    assert "spearman = 0.75 [0.55, 0.95], p = 0.0123" in svg and "p_models = 0.5" in svg
    assert "90% intervals" in svg and "grey band: permutation nulls" in svg


# ---------------------------------------------------------------------------
# the competence figure reads at a glance


def test_axis_break_decision():
    from prh.plots.axes import axis_break

    # the default zoo: an untrained model at chance, trained ones at 75-78
    assert axis_break([0.1, 75.1, 76.7, 77.6]) == 1
    assert axis_break([77.6, 0.1, 76.7, 75.1]) == 1          # order does not matter
    assert axis_break([0.1, 0.3, 75.1, 76.7, 77.6]) == 2
    assert axis_break([1.0, 1.5, 2.0, 98.0]) == 3             # the cluster on the left
    # values spread over the axis, too few, or one group alone: no break
    assert axis_break([75, 76, 77]) is None
    assert axis_break([10, 50, 80]) is None
    assert axis_break([0.1, 75]) is None
    assert axis_break([0.1, 75, 75]) is None                  # the far group has no spread
    assert axis_break([0.1, 40, 60, 80]) is None              # 40..80 fills half the axis
    assert axis_break([0.1, np.nan, 75.1, 76.7]) == 1         # NaN (no value) ignored


def test_broken_axis_keeps_one_scale_on_both_sides():
    from prh.plots.axes import BrokenAxis

    ax = BrokenAxis.for_values([0.1, 75.1, 76.7, 77.6])
    assert ax.broken and ax.values == (0.1, 75.1)
    u = ax(np.array([0.1, 75.1, 76.7, 77.6]))
    assert np.all(np.diff(u) > 0)
    assert u[3] - u[2] == pytest.approx(0.9) and u[2] - u[1] == pytest.approx(1.6)
    lo, hi = ax.drawn_lim
    assert (u[1] - u[0]) < 0.25 * (hi - lo)                   # the gap is drawn small
    assert ax.ticks()[0] == 0.1 and all(75 <= t <= 78 for t in ax.ticks()[1:])
    flat = BrokenAxis.for_values([75, 76, 77])
    assert not flat.broken and flat(76.0) == 76.0


def test_spread_labels_never_overlap_and_move_as_little_as_needed():
    from prh.plots.axes import LABEL_PAD_IN, spread_labels

    q = spread_labels([1.0, 1.1, 1.2, 3.0], [0.5, 0.5, 0.5, 0.5], 0.0, 4.0)
    assert np.all(np.diff(q) >= 0.5 + LABEL_PAD_IN - 1e-9)
    assert q[1] == pytest.approx(1.1) and q[3] == pytest.approx(3.0)   # centred, untouched
    q = spread_labels([0.0, 0.05], [0.4, 0.4], 0.0, 4.0)               # kept inside
    assert q[0] == pytest.approx(0.2) and q[1] - q[0] >= 0.4
    apart = [0.5, 2.0, 3.5]
    assert spread_labels(apart, [0.3] * 3, 0.0, 4.0) == pytest.approx(apart)


def top_label_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer))
            for ax in fig.axes for child in ax.child_axes
            for t in child.get_xticklabels() if t.get_text()]


def competence_run(d, values, *, untrained=False, lines=2):
    vision = [f"vision_{i}" for i in range(len(values))]
    language = ["minilm_l6", "glove_6b_50d", "smollm2_135m"][:lines]
    feats = {m: fx.features(d / f"{m}.h5", modality="vision", param_count=1, source=m)
             for m in vision}
    feats |= {m: fx.features(d / f"{m}.h5", modality="language", param_count=1, source=m)
              for m in language}
    if untrained:
        feats["lite0_rand"] = fx.features(d / "u.h5", modality="vision", param_count=1,
                                          source="efficientnet_lite0", weights="random", seed=0)
    fx.alignment(d / "alignment.h5", list(feats), ["mutual_knn"], null=(0.1, 0.102))
    comp = {m: {"competence": v, "competence_source": "top-1"} for m, v in zip(vision, values)}
    return feats, comp


@pytest.mark.parametrize("values, untrained, calibrated", [
    ([75.0, 76.0, 77.0], False, False),          # 3 models 1 point apart
    ([75.0, 76.0, 77.0], True, True),            # ... next to an untrained one
    ([75.0, 75.1, 75.2], True, False),
    (list(np.r_[np.linspace(70, 71, 15), np.linspace(80, 90, 15)]), False, True),
])
def test_competence_names_never_overlap(tmp_path, values, untrained, calibrated):
    import matplotlib.pyplot as plt
    from prh.plots.competence import competence_figure

    feats, comp = competence_run(tmp_path, values, untrained=untrained)
    with style.style():
        fig = competence_figure(tmp_path / "alignment.h5", metric="mutual_knn", features=feats,
                                competence=comp, calibrated=calibrated)
        boxes = top_label_boxes(fig)
        title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
        plt.close(fig)
    assert len(boxes) == (len(values) + untrained) * (1 + calibrated)
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    assert not any(box.overlaps(title) for _, box in boxes)
    if untrained:
        assert "EffNet-Lite0\n(untrained)" in [name for name, _ in boxes]


def test_competence_figure_breaks_the_axis_and_draws_a_visible_null_band(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle
    from prh.plots.competence import MIN_BAND, competence_figure

    feats, comp = competence_run(tmp_path, [75.1, 76.7, 77.6], untrained=True)
    with style.style():
        fig = competence_figure(tmp_path / "alignment.h5", metric="mutual_knn", features=feats,
                                competence=comp)
        ax = fig.axes[0]
        band = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))
                and p.get_facecolor()[:3] != (1.0, 1.0, 1.0)]
        (patch,) = band
        ys = patch.get_path().transformed(patch.get_patch_transform()).vertices[:, 1] \
            if isinstance(patch, Rectangle) else patch.get_xy()[:, 1]
        lo, hi = ax.get_ylim()
        # the nulls span 0.0102 of a 0..0.6 axis: drawn MIN_BAND of it tall
        assert (ys.max() - ys.min()) >= MIN_BAND * (hi - lo) * 0.999
        note = " ".join(t.get_text() for t in fig.texts)
        plt.close(fig)
    assert "x axis broken between 0.1 and 75.1" in note
    assert f"drawn {MIN_BAND:.0%} of the axis tall to stay visible" in note


def test_scorecard_has_intervals_chance_ticks_and_no_blank_band_under_the_title():
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from prh.plots.scorecard import draw_scorecard
    from test_figure_text import card_rows, interval_rows

    rows = card_rows()
    rows += [{**r, "metric": "cycle_knn"} for r in rows if r["metric"] == "cka"]
    with style.style():
        # three panels: the old layout left half an inch blank under the title
        fig = draw_scorecard(rows, model="minilm_l6", dataset="emoji",
                             metrics=["mutual_knn", "cycle_knn", "cka"],
                             intervals=interval_rows(),
                             intervals_path="results/emoji/statistics/intervals.tsv")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        top = fig.axes[0]
        ticks = [c for c in top.collections if isinstance(c, LineCollection)
                 and c.get_linewidth()[0] == pytest.approx(1.6)]
        errorbars = [c for c in top.containers if type(c).__name__ == "ErrorbarContainer"]
        title = fig._suptitle.get_window_extent(renderer)
        gap_in = (title.y0 - top.get_tightbbox(renderer).y1) / fig.dpi
        labels = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
        plt.close(fig)
    assert len(ticks) == 2 and len(errorbars) == 2   # the two calibrated vision partners
    assert 0 <= gap_in < 0.25
    assert labels == ["EffNet-Lite0", "EffNet-Lite1", "GloVe-50d"]
