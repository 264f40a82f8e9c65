# Figures and the report's table. Each figure kind is its own rule, reading
# only the alignment outputs (alignment.h5, pair files) and the features
# files' attributes: restyling a figure (prh/plots/*) reruns no alignment.
# Output names, report categories and captions: the plot helpers at the end
# of rules/common.smk; the drawing: prh/plots/.


rule heatmaps:
    input:
        lib("plots", "pairs", "jobio"),
        alignment=f"{RESULTS}/{{dataset}}/alignment.h5",
        features=[features_path("{dataset}", m) for m in MODELS],
    output:
        **heatmap_outputs("{dataset}", report_items=True),
    log:
        f"{LOGS}/{{dataset}}/plots/heatmaps.log",
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=MODELS,
        metrics=METRICS,
        modalities=modalities(),
        calibrated=plot_calibrated(),
        dpi=PLOTS["dpi"],
    script:
        "../scripts/plot_heatmaps.py"


rule competence:
    input:
        lib("plots", "pairs", "jobio"),
        alignment=f"{RESULTS}/{{dataset}}/alignment.h5",
        features=[features_path("{dataset}", m) for m in MODELS],
    output:
        **competence_outputs("{dataset}", report_items=True),
    log:
        f"{LOGS}/{{dataset}}/plots/competence.log",
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=MODELS,
        metrics=competence_metrics(),
        modalities=modalities(),
        competence=competence_params(),
        calibrated=plot_calibrated(),
        dpi=PLOTS["dpi"],
    script:
        "../scripts/plot_competence.py"


if layer_plot_pairs():

    rule layer_heatmaps:
        input:
            lib("plots", "pairs", "jobio"),
            pairs=layer_pair_files,
            features=[features_path("{dataset}", m) for m in MODELS],
        output:
            **layer_outputs("{dataset}", report_items=True),
        log:
            f"{LOGS}/{{dataset}}/plots/layer_heatmaps.log",
        conda:
            "../envs/plots.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=lambda wc, input: 10 + len(input.pairs) // 10,
        params:
            models=MODELS,
            pairs=[list(p) for p in layer_plot_pairs()],
            metrics=layer_plot_metrics(),
            dpi=PLOTS["dpi"],
        script:
            "../scripts/plot_layers.py"


rule metric_agreement:
    input:
        lib("plots", "pairs", "jobio"),
        alignment=f"{RESULTS}/{{dataset}}/alignment.h5",
    output:
        **agreement_outputs("{dataset}", report_items=True),
    log:
        f"{LOGS}/{{dataset}}/plots/metric_agreement.log",
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metrics=METRICS,
        dpi=PLOTS["dpi"],
    script:
        "../scripts/plot_agreement.py"


if plot_sample_size():

    rule sample_size_plot:
        input:
            lib("plots", "jobio"),
            tsv=f"{RESULTS}/{{dataset}}/sample_size.tsv",
        output:
            **sample_size_outputs("{dataset}", report_items=True),
        log:
            f"{LOGS}/{{dataset}}/plots/sample_size.log",
        conda:
            "../envs/plots.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            dpi=PLOTS["dpi"],
        script:
            "../scripts/plot_sample_size.py"


# The scores tables in the report (alignment.tsv and, with calibration,
# aggregates.tsv belong to rule aggregate): copies marked for the report.
rule scores_table:
    input:
        f"{RESULTS}/{{dataset}}/{{table}}.tsv",
    output:
        report(
            f"{RESULTS}/{{dataset}}/report/{{table}}.tsv",
            caption="../report/scores_table.rst",
            category="6. Scores table",
            labels={"dataset": "{dataset}", "file": "{table}.tsv"},
        ),
    log:
        f"{LOGS}/{{dataset}}/plots/scores_table_{{table}}.log",
    wildcard_constraints:
        table="alignment|aggregates",
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "(cp {input:q} {output:q}.tmp && mv {output:q}.tmp {output:q}) > {log:q} 2>&1"


rule plots:
    input:
        [p for d in DATASETS for p in plot_paths(d)],
