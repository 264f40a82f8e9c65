rule prepare_dataset:
    input:
        library("prepare_dataset.py"),
    output:
        manifest_path("{dataset}"),
    log:
        log_path("{dataset}", "prepare_dataset"),
    benchmark:
        benchmark_path("{dataset}", "prepare_dataset")
    conda:
        "../envs/embed.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        dataset=lambda wc: dataset_params(wc.dataset),
    script:
        "../scripts/prepare_dataset.py"
