rule heatmaps:
    input:
        lib("plots", "pairs", "jobio"),
        alignment=f"{RESULTS}/{{dataset}}/alignment.h5",
    output:
        heatmap_paths("{dataset}"),
    log:
        f"{LOGS}/{{dataset}}/plots.log",
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metrics=METRICS,
        modalities=[config["models"][m]["modality"] for m in MODELS],
        dpi=config["plots"]["dpi"],
    script:
        "../scripts/plot_heatmaps.py"


rule plots:
    input:
        [p for d in DATASETS for p in heatmap_paths(d)],
