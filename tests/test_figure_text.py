"""What the figures and their report captions say is what they show: model
names, sentences about chance, the figure plan and the captions rendered
for the run's config. Figure text is read from SVG output
(:func:`plot_fixtures.svg_text`)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import plot_fixtures as fx
from prh import plots
from prh.config import Config, ConfigError
from prh.models.registry import BUNDLED
from prh.naming import DISPLAY_NAMES
from prh.naming import display_name, display_names
from prh.plots import data as pdata
from prh.plots.scorecard import draw_scorecard
from prh.plots import style
from prh.steps import plots as plot_steps

REPO = Path(__file__).resolve().parents[1]
DPI = 50
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())
ZOO = {"efficientnet_lite0": "EffNet-Lite0", "efficientnet_lite1": "EffNet-Lite1",
       "efficientnet_lite2": "EffNet-Lite2",
       "efficientnet_lite0_untrained": "EffNet-Lite0 (untrained)", "minilm_l6": "MiniLM-L6",
       "smollm2_135m": "SmolLM2-135M", "glove_6b_50d": "GloVe-50d"}


def config(**changes) -> dict:
    raw = copy.deepcopy(DEFAULT)
    for key, value in changes.items():
        node = raw
        *path, last = key.split("__")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return raw


# ---------------------------------------------------------------------------
# one name per model, everywhere


def test_the_default_zoo_has_short_names_and_untrained_says_so():
    assert Config(DEFAULT).display_names() == ZOO
    assert set(DISPLAY_NAMES) == set(BUNDLED)


def test_display_name_rules():
    assert display_name("lite0_rand", {"source": "efficientnet_lite0", "weights": "random",
                                       "seed": 2}) == "EffNet-Lite0 (untrained, seed 2)"
    assert display_name("mine", {"source": "file:feats/mine.npz"}) == "mine"
    assert display_name("my_llama_x", {"source": "py:m.py:build"}) == "my_llama_x"
    assert display_name("vit_large_patch14_dinov2_lvd142m",
                        {"source": "timm:vit_large_patch14_dinov2.lvd142m"}) == "ViT-L/14 DINOv2"
    assert display_name("llama_65b", {"source": "hf:huggyllama/llama-65b"}) == "LLaMA-65B"
    assert display_name("vit", {"source": "timm:vit", "weights": "ckpt/v.pth"}) == \
        "vit (weights v.pth)"
    assert display_name("efficientnet_lite0", None, ["4.7M"]) == "EffNet-Lite0 (4.7M)"
    # one bundled model twice (e.g. pooled two ways): the keys tell them apart
    names = display_names({"lite_mean": {"source": "efficientnet_lite0"},
                           "lite_cls": {"source": "efficientnet_lite0"},
                           "minilm_l6": {"source": "minilm_l6"}})
    assert names == {"lite_mean": "lite_mean", "lite_cls": "lite_cls", "minilm_l6": "MiniLM-L6"}
    assert style.model_label("efficientnet_lite0", "random", 0, source="efficientnet_lite0") \
        == "EffNet-Lite0 (untrained)"


def test_figures_name_models_from_their_features_as_the_config_does(tmp_path):
    np.savez(tmp_path / "mine.npz", sample_ids=np.array(["a"]), layer0=np.zeros((1, 2)))
    cfg = Config(config(models__mine={"source": f"file:{tmp_path / 'mine.npz'}",
                                      "modality": "language"}))
    entries = cfg.raw["models"]
    info = {}
    for m, e in entries.items():
        # what the embedding stage records: the source as "model" (an import
        # records the key as "model" and the file as "source")
        kw = {"weights": e.get("weights"), "seed": 0 if e.get("weights") else None}
        path = fx.features(tmp_path / f"{m}.h5", modality="vision", param_count=1,
                           source=m if e["source"].startswith("file:") else e["source"], **kw)
        info[m] = pdata.model_info(m, path)
    assert pdata.labels_of(list(entries), info) == cfg.display_names()
    assert cfg.display_names()["mine"] == "mine"


# ---------------------------------------------------------------------------
# sentences about chance come from the p-values drawn


MODELS = ["efficientnet_lite0", "efficientnet_lite1", "minilm_l6", "glove_6b_50d"]
MODALITY = {"efficientnet_lite0": "vision", "efficientnet_lite1": "vision",
            "minilm_l6": "language", "glove_6b_50d": "language"}


def test_raw_heatmap_of_an_uncalibrated_metric_does_not_claim_a_null(tmp_path):
    """calibration.metrics leaves cka out: its raw figure says it is not
    compared with chance (it said every calibrated pair is above its null)."""
    fx.alignment(tmp_path / "a.h5", MODELS, ["mutual_knn", "cka"], alpha=0.5,
                 uncalibrated=["cka"])
    outs = [tmp_path / "m.svg", tmp_path / "c.svg"]
    plots.alignment_heatmaps(tmp_path / "a.h5", outs, ["mutual_knn", "cka"], dpi=DPI,
                             modalities=MODALITY)
    cka = fx.svg_text(outs[1])
    assert "above its permutation null" not in cka and "above their" not in cka
    assert "not calibrated: no pair has a permutation null" in cka
    assert "each of the 6 calibrated pairs is above its permutation null" in fx.svg_text(outs[0])


def test_partly_calibrated_heatmap_counts_the_pairs(tmp_path):
    """calibration.pairs cross_modal: same-modality pairs have no p-value and
    are counted as not calibrated, not as above the null."""
    fx.alignment(tmp_path / "a.h5", MODELS, ["mutual_knn"], alpha=0.5,
                 uncalibrated_pairs=[("efficientnet_lite0", "efficientnet_lite1"),
                                     ("minilm_l6", "glove_6b_50d")])
    plots.alignment_heatmaps(tmp_path / "a.h5", [tmp_path / "m.svg"], ["mutual_knn"],
                             dpi=DPI, modalities=MODALITY)
    text = fx.svg_text(tmp_path / "m.svg")
    assert "each of the 4 calibrated pairs is above its permutation null" in text
    assert "2 of the 6 pairs are not calibrated" in text


def test_competence_figure_of_an_uncalibrated_metric(tmp_path):
    feats = {m: fx.features(tmp_path / f"{m}.h5", modality=MODALITY[m], param_count=1,
                            source=m) for m in MODELS}
    comp = {"efficientnet_lite0": {"competence": 75.1, "competence_source": "top-1"},
            "efficientnet_lite1": {"competence": 76.7, "competence_source": "top-1"}}
    fx.alignment(tmp_path / "a.h5", MODELS, ["mutual_knn", "cka"], alpha=0.5,
                 uncalibrated=["cka"])
    for calibrated in (False, True):
        out = tmp_path / f"c{calibrated}.svg"
        plots.alignment_vs_competence(tmp_path / "a.h5", out, metric="cka", features=feats,
                                      competence=comp, calibrated=calibrated, dpi=DPI)
        text = fx.svg_text(out)
        assert "above its permutation null" not in text and "switched off" not in text
        assert "not calibrated" in text and "grey band" not in text
        assert ("holds no calibrated score of cka: raw scores only" in text) == calibrated
    out = tmp_path / "m.svg"
    plots.alignment_vs_competence(tmp_path / "a.h5", out, metric="mutual_knn", features=feats,
                                  competence=comp, dpi=DPI)
    assert "each of the 4 calibrated pairs is above its permutation null" in fx.svg_text(out)


# ---------------------------------------------------------------------------
# the figure plan: no placeholder stands in for "not calibrated"


def calibrated_figures(cfg: Config) -> list[str]:
    return [f.name for f in cfg.figures() if f.params.get("calibrated")]


def test_the_plan_draws_calibrated_figures_of_calibrated_metrics_only():
    cal = ["mutual_knn", "cycle_knn", "cknna"]
    assert DEFAULT["calibration"]["metrics"] == cal
    assert calibrated_figures(Config(DEFAULT)) == (
        [f"heatmap_{m}_calibrated" for m in DEFAULT["metrics"] if m in cal]
        + ["competence_raw_vs_calibrated_mutual_knn"])
    assert calibrated_figures(Config(config(plots__competence_metric=["cka", "cknna"]))) == (
        [f"heatmap_{m}_calibrated" for m in DEFAULT["metrics"] if m in cal]
        + ["competence_raw_vs_calibrated_cknna"])
    assert calibrated_figures(Config(config(calibration__enabled=False))) == []
    # calibration on, but no configured pair is calibrated (one modality,
    # calibration.pairs cross_modal): the plan is refused before any figure
    vision = {m: e for m, e in DEFAULT["models"].items() if "efficientnet" in m}
    raw = config(alignment__pairs="all", calibration__pairs="cross_modal")
    raw["models"] = vision
    with pytest.raises(ConfigError, match="calibrates no pair"):
        Config(raw)


def test_the_heatmap_step_draws_the_plan_with_uncalibrated_metrics(tmp_path):
    """Before, the step looked up a calibrated output for every metric."""
    raw = config(metrics={"mutual_knn": {"topk": 10}, "cka": {"kernel": "ip"}},
                 calibration__metrics=["mutual_knn"], calibration__sample_sizes=[])
    cfg = Config(raw)
    figures = cfg.figure_params("heatmaps")
    assert list(figures) == ["heatmap_mutual_knn", "heatmap_mutual_knn_calibrated",
                             "heatmap_cka"]
    fx.alignment(tmp_path / "a.h5", MODELS, ["mutual_knn", "cka"], uncalibrated=["cka"])
    outputs = {name: [str(tmp_path / f"{name}.svg")] for name in figures}
    plot_steps.heatmaps(tmp_path / "a.h5", figures, outputs, modalities=MODALITY, features={},
                        dpi=DPI)
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == sorted(f"{n}.svg" for n in figures)
    assert "not calibrated" in fx.svg_text(tmp_path / "heatmap_cka.svg")


# ---------------------------------------------------------------------------
# report captions, rendered as Snakemake renders them


def render_caption(name: str, cfg: Config, params: dict) -> str:
    """A caption as Snakemake's report renders it (Jinja with the job's
    params, wildcards and config, then reStructuredText), failing on any
    RST warning."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    snakemake = SimpleNamespace(params=SimpleNamespace(**params),
                                wildcards=SimpleNamespace(dataset="emoji"), config=cfg.raw)
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        (REPO / "report" / f"{name}.rst").read_text()).render(snakemake=snakemake)
    publish_parts(text, writer="html", settings_overrides={"halt_level": 2,
                                                                "report_level": 5})
    return " ".join(text.split())


def rule_params(cfg: Config, rule: str) -> dict:
    """The params rules/plots.smk gives each figure rule."""
    params = {"figures": cfg.figure_params(rule), "dpi": cfg.plots["dpi"]}
    if rule == "competence":
        params["competence"] = cfg.competence_params()
    if rule == "sample_size_plot":
        params["names"] = cfg.display_names()
    return params


@pytest.mark.parametrize("changes", [{}, {"calibration__enabled": False},
                                     {"calibration__metrics": None}])
def test_captions_say_what_the_run_draws(changes):
    cfg = Config(config(**changes))
    heat = render_caption("heatmap", cfg, rule_params(cfg, "heatmaps"))
    comp = render_caption("competence", cfg, rule_params(cfg, "competence"))
    cal = [m for m in cfg.metrics if m in cfg.figure_calibrated_metrics()]
    rest = [m for m in cfg.metrics if m not in cal]
    if cal:
        assert f"Calibrated metrics: ``{', '.join(cal)}``" in heat
        assert "open markers are pairs not above their permutation null" in comp
    else:
        assert "Calibrated metrics" not in heat and '"calibrated" figure' not in heat
        assert "open markers are" not in comp and "the grey band spans" not in comp
        assert "Not calibrated: ``mutual_knn``: raw scores only" in comp
    if rest:
        why = "``calibration.metrics`` leaves them out" if cfg.calibrated else "calibration is off"
        assert f"Not calibrated: ``{', '.join(rest)}`` ({why})" in heat
    else:
        assert "Not calibrated" not in heat
    # the axis choice and labels the figure has
    assert "language models if any has one" not in comp
    assert "with more models that have one (language on a tie)" in comp
    assert "x axis is broken" in comp and "named on top of its position" in comp
    for name, rule in (("agreement", "metric_agreement"), ("layers", "layer_heatmaps")):
        render_caption(name, cfg, rule_params(cfg, rule))
    if cfg.has_sample_size_curve:
        render_caption("sample_size", cfg, rule_params(cfg, "sample_size_plot"))


# ---------------------------------------------------------------------------
# the scorecard's footer


def card_rows(tau: float = 0.02, p_bh: float = 0.01):
    rows = []
    for metric in ("mutual_knn", "cka"):
        for rank, (partner, mod, score) in enumerate(
                [("efficientnet_lite0", "vision", 0.13), ("efficientnet_lite1", "vision", 0.12),
                 ("glove_6b_50d", "language", 0.3)], 1):
            cal = metric == "mutual_knn" and mod == "vision"
            rows.append({"dataset": "emoji", "model": "minilm_l6", "metric": metric,
                         "rank": rank, "partner": partner, "partner_modality": mod,
                         "score": score, "p_bh": p_bh if cal else np.nan,
                         "tau": tau if cal else np.nan})
    return rows


def interval_rows():
    # stored (vision, language) for a symmetric metric; cycle_knn's are not this card's
    rows = [{"model_x": v, "model_y": "minilm_l6", "metric": "mutual_knn", "aggregate": "max",
             "order": "xy", "score": str(s), "low": str(s - 0.01), "high": str(s + 0.02),
             "level": "0.95"} for v, s in (("efficientnet_lite0", 0.13),
                                           ("efficientnet_lite1", 0.12))]
    return rows


def footer(fig) -> str:
    return fig.texts[-1].get_text().replace("\n", " ")


def test_scorecard_footer_says_what_is_drawn():
    import matplotlib.pyplot as plt

    with style.style():
        path = "results/emoji/statistics/intervals.tsv"
        fig = draw_scorecard(card_rows(), model="minilm_l6", dataset="emoji",
                             metrics=["mutual_knn", "cka"], intervals=interval_rows(),
                             intervals_path=path)
        text = footer(fig)
        assert "<dataset>" not in text and f"95% intervals of the sampling noise ({path})" in text
        assert "Black tick: chance threshold τ" in text
        assert "Each of the 2 calibrated bars is above chance" in text
        assert "cka is not calibrated: not compared with chance" in [
            ax.get_title(loc="right") for ax in fig.axes]
        plt.close(fig)
        # no intervals table yet, nothing calibrated: the footer says neither
        rows = [{**r, "p_bh": np.nan, "tau": np.nan} for r in card_rows()]
        fig = draw_scorecard(rows, model="minilm_l6", dataset="emoji",
                             metrics=["mutual_knn", "cka"])
        text = footer(fig)
        assert "interval" not in text and "τ" not in text and "n.s." not in text
        assert "No pair of this model is calibrated" in text
        plt.close(fig)
        # an intervals table older than the pair files: its rows are left out
        stale = [{**r, "score": "0.5"} for r in interval_rows()]
        fig = draw_scorecard(card_rows(p_bh=0.2), model="minilm_l6", dataset="emoji",
                             metrics=["mutual_knn", "cka"], intervals=stale,
                             intervals_path=path)
        text = footer(fig)
        assert "Error bars" not in text and f"2 interval(s) of {path} left out" in text
        assert "Hatched, n.s.: not above chance, BH-adjusted p > 0.05 (2 of the 2" in text
        plt.close(fig)
