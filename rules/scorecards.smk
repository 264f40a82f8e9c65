# One model's alignment with every model it is paired with, from its pair
# files only (never alignment.h5): asking for a new model's scorecard runs
# that model's embedding, layer cache and pairs, and nothing of the other models.
rule scorecard:
    input:
        library("scorecard.py"),
        pairs=lambda wc: CFG.model_pair_files(wc.dataset, wc.model),
        features=lambda wc: list(scorecard_features(wc).values()),
    output:
        tsv=scorecard_path("{dataset}", "{model}", "tsv"),
        png=report(
            scorecard_path("{dataset}", "{model}", "png"),
            caption="../report/scorecard.rst",
            category="7. Scorecards",
            subcategory="{model}",
            labels={"dataset": "{dataset}", "model": "{model}"},
        ),
    log:
        log_path("{dataset}", "scorecards/{model}"),
    conda:
        "../envs/scorecard.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        features=lambda wc: scorecard_features(wc),
        card=CFG.scorecard_params(),
        # drawn when the statistics have run; not an input, so a scorecard
        # never waits for every model's statistics
        intervals=lambda wc: CFG.scorecard_intervals(wc.dataset),
        dpi=CFG.plots["dpi"],
    script:
        "../scripts/scorecard.py"


rule scorecards:
    input:
        [p for d in DATASETS for p in CFG.scorecard_targets(d)],
