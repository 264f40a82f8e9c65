# Figures and the report's table. Each figure kind is its own rule, reading
# only the alignment outputs (alignment.h5, pair files) and the features
# files' attributes: restyling a figure (prh/plots/*) reruns no alignment.
# Which figures exist, their names and report entries: prh.config.Config.figures.


rule heatmaps:
    input:
        library("plot_heatmaps.py"),
        alignment=alignment_path("{dataset}"),
        features=lambda wc: list(features_files(wc).values()),
    output:
        **figure_outputs("heatmaps"),
    log:
        log_path("{dataset}", "plots/heatmaps"),
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figures=CFG.figure_params("heatmaps"),
        features=features_files,
        modalities=CFG.modalities(),
        dpi=CFG.plots["dpi"],
    script:
        "../scripts/plot_heatmaps.py"


rule competence:
    input:
        library("plot_competence.py"),
        alignment=alignment_path("{dataset}"),
        features=lambda wc: list(features_files(wc).values()),
        statistics=lambda wc: CFG.competence_statistics(wc.dataset),
    output:
        **figure_outputs("competence"),
    log:
        log_path("{dataset}", "plots/competence"),
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figures=CFG.figure_params("competence"),
        features=features_files,
        modalities=CFG.modalities(),
        competence=CFG.competence_params(),
        dpi=CFG.plots["dpi"],
    script:
        "../scripts/plot_competence.py"


if CFG.figures("layer_heatmaps"):

    rule layer_heatmaps:
        input:
            library("plot_layers.py"),
            unpack(
                lambda wc: {
                    f"pair_{x}__{y}": CFG.pair_file(wc.dataset, x, y)
                    for x, y in sorted(
                        {tuple(sorted(p)) for p in CFG.layer_plot_pairs()}
                    )
                }
            ),
            features=lambda wc: list(features_files(wc).values()),
        output:
            **figure_outputs("layer_heatmaps"),
        log:
            log_path("{dataset}", "plots/layer_heatmaps"),
        conda:
            "../envs/plots.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=lambda wc: 10 + len(CFG.layer_plot_pairs()) // 10,
        params:
            figures=CFG.figure_params("layer_heatmaps"),
            features=features_files,
            dpi=CFG.plots["dpi"],
        script:
            "../scripts/plot_layers.py"


rule metric_agreement:
    input:
        library("plot_agreement.py"),
        alignment=alignment_path("{dataset}"),
    output:
        **figure_outputs("metric_agreement"),
    log:
        log_path("{dataset}", "plots/metric_agreement"),
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figures=CFG.figure_params("metric_agreement"),
        dpi=CFG.plots["dpi"],
    script:
        "../scripts/plot_agreement.py"


if CFG.figures("sample_size_plot"):

    rule sample_size_plot:
        input:
            library("plot_sample_size.py"),
            tsv=table_path("{dataset}", "sample_size"),
        output:
            **figure_outputs("sample_size_plot"),
        log:
            log_path("{dataset}", "plots/sample_size"),
        conda:
            "../envs/plots.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            figures=CFG.figure_params("sample_size_plot"),
            names=CFG.display_names(),
            dpi=CFG.plots["dpi"],
        script:
            "../scripts/plot_sample_size.py"


# The scores tables in the report (alignment.tsv and, with calibration,
# aggregates.tsv belong to rule aggregate): copies marked for the report.
rule scores_table:
    input:
        table_path("{dataset}", "{table}"),
    output:
        report(
            report_table_path("{dataset}", "{table}"),
            caption="../report/scores_table.rst",
            category="6. Tables",
            subcategory="TSV files",
            labels={"dataset": "{dataset}", "file": "{table}.tsv"},
        ),
    log:
        log_path("{dataset}", "plots/scores_table_{table}"),
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
        [p for d in DATASETS for p in CFG.plot_targets(d)],
