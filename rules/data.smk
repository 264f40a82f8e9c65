rule prepare_dataset:
    input:
        library("prepare_dataset.py"),
    output:
        f"{RESULTS}/{{dataset}}/manifest.json",
    log:
        f"{LOGS}/{{dataset}}/prepare_dataset.log",
    benchmark:
        f"{LOGS}/{{dataset}}/prepare_dataset.benchmark.tsv"
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
