# The sampling noise of the calibrated scores: intervals, paired comparisons,
# the trend with competence (prh.steps.statistics). One job per dataset: each
# model is resampled once per index set and serves all its pairs, so the cost
# grows with the models, not with every pair resampling both of its models.
rule statistics:
    input:
        library("statistics.py"),
        unpack(
            lambda wc: {
                **{
                    f"cache_{m}": layer_cache_path(wc.dataset, m)
                    for m in CFG.statistics_models()
                },
                **{
                    f"features_{m}": features_path(wc.dataset, m)
                    for m in CFG.statistics_models()
                },
            }
        ),
        manifest=manifest_path("{dataset}"),
    output:
        **{t: statistics_path("{dataset}", t) for t in STATISTICS_TABLES},
    log:
        log_path("{dataset}", "statistics"),
    benchmark:
        benchmark_path("{dataset}", "statistics")
    conda:
        "../envs/align.yaml"
    threads: CFG.alignment["threads"]
    resources:
        **CFG.partition_resources("statistics"),
        mem_mb=lambda wc: CFG.statistics_resources(wc.dataset)["mem_mb"],
        runtime=lambda wc: CFG.statistics_resources(wc.dataset)["runtime"],
        gpu=CFG.alignment_gpus,
    params:
        models=CFG.statistics_models(),
        statistics=CFG.statistics_params(),
        modalities=CFG.modalities(),
        competence=CFG.competence_params(),
        device=CFG.alignment["device"],
        stale=lambda wc: stale_mark(statistics_path(wc.dataset, STATISTICS_TABLES[0])),
    script:
        "../scripts/statistics.py"
