rule embed_model:
    input:
        lib(*EMBED_LIB),
        manifest=f"{RESULTS}/{{dataset}}/manifest.json",
    output:
        features_path("{dataset}", "{model}"),
    log:
        f"{LOGS}/{{dataset}}/embed/{{model}}.log",
    benchmark:
        f"{LOGS}/{{dataset}}/embed/{{model}}.benchmark.tsv"
    conda:
        "../envs/embed.yaml"
    threads: lambda wc: model_settings(wc.model)["threads"]
    resources:
        mem_mb=lambda wc: model_settings(wc.model)["mem_mb"],
        runtime=lambda wc: model_settings(wc.model)["runtime"],
        gpu=lambda wc: embed_gpus(wc.model),
    params:
        model=lambda wc: embed_params(wc.model),
    script:
        "../scripts/embed.py"


rule embed:
    input:
        [features_path(d, m) for d in DATASETS for m in MODELS],
