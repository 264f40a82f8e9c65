rule embed_model:
    input:
        library("embed.py"),
        manifest=manifest_path("{dataset}"),
        local=lambda wc: CFG.embed_inputs(wc.model),
    output:
        features_path("{dataset}", "{model}"),
    log:
        log_path("{dataset}", "embed/{model}"),
    benchmark:
        benchmark_path("{dataset}", "embed/{model}")
    conda:
        "../envs/embed.yaml"
    threads: lambda wc: CFG.embed_resources(wc.model)["threads"]
    # the GPU partition for embeddings with a GPU only (prh.config.Config.partition)
    resources:
        **CFG.partition_resources("embed_model"),
        mem_mb=lambda wc: CFG.embed_resources(wc.model)["mem_mb"],
        runtime=lambda wc: CFG.embed_resources(wc.model)["runtime"],
        gpu=lambda wc: CFG.embed_resources(wc.model)["gpu"],
    params:
        model=lambda wc: CFG.embed_params(wc.model),
    script:
        "../scripts/embed.py"


rule embed:
    input:
        [features_path(d, m) for d in DATASETS for m in MODELS],
