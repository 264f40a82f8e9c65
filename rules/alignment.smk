# Per-model work (clamp, normalise, Gram matrices, kNN lists, SVCCA bases) is
# done once per model here, so that each pair job only combines two files.
rule layer_cache:
    input:
        library("layer_cache.py"),
        features=features_path("{dataset}", "{model}"),
        manifest=manifest_path("{dataset}"),
    output:
        layer_cache_path("{dataset}", "{model}"),
    log:
        log_path("{dataset}", "layer_cache/{model}"),
    benchmark:
        benchmark_path("{dataset}", "layer_cache/{model}")
    conda:
        "../envs/align.yaml"
    threads: CFG.alignment["threads"]
    resources:
        **CFG.partition_resources("layer_cache"),
        # the cost model of prh.config.Config.layer_cache_cost (docs/cluster.md)
        mem_mb=lambda wc: CFG.layer_cache_resources(wc.dataset, wc.model)["mem_mb"],
        runtime=lambda wc: CFG.layer_cache_resources(wc.dataset, wc.model)["runtime"],
        gpu=CFG.alignment_gpus,
    params:
        cache=lambda wc: CFG.layer_cache_params(wc.dataset),
        model=lambda wc: CFG.feature_model_names(wc.model),
        device=CFG.alignment["device"],
        stale=lambda wc: stale_mark(layer_cache_path(wc.dataset, wc.model)),
    script:
        "../scripts/layer_cache.py"


if not CFG.blocked:

    # One job per unordered pair keeps reruns exact (a changed model reruns only
    # its own pairs). Locally a job costs ~3 s of start-up; on a cluster the
    # slurm profile batches pair jobs with group-components instead.
    rule pair_scores:
        input:
            library("pair_scores.py"),
            x=layer_cache_path("{dataset}", "{model_x}"),
            y=layer_cache_path("{dataset}", "{model_y}"),
            manifest=manifest_path("{dataset}"),
        output:
            pair_path("{dataset}", "{model_x}", "{model_y}"),
        log:
            log_path("{dataset}", "pairs/{model_x}__{model_y}"),
        benchmark:
            benchmark_path("{dataset}", "pairs/{model_x}__{model_y}")
        group:
            "pairs"
        conda:
            "../envs/align.yaml"
        threads: CFG.alignment["threads"]
        resources:
            **CFG.partition_resources("pair_scores"),
            # the cost model of prh.config.Config.pair_cost (docs/cluster.md)
            mem_mb=lambda wc: CFG.pair_resources(wc.dataset, wc.model_x, wc.model_y)[
                "mem_mb"
            ],
            runtime=lambda wc: CFG.pair_resources(wc.dataset, wc.model_x, wc.model_y)[
                "runtime"
            ],
            gpu=CFG.alignment_gpus,
        params:
            metrics=CFG.metric_params(),
            calibration=lambda wc: CFG.calibration_params(wc.model_x, wc.model_y),
            device=CFG.alignment["device"],
            stale=lambda wc: stale_mark(pair_path(wc.dataset, wc.model_x, wc.model_y)),
        script:
            "../scripts/pair_scores.py"

else:

    # alignment.pair_block > 1: one job per block of about B x B models
    # (prh.config.Config.pair_blocks), so that the DAG of a zoo of 1,000
    # models holds hundreds of pair jobs, not 500,000. A changed model reruns
    # the blocks it is in.
    rule pair_block:
        input:
            library("pair_block.py"),
            caches=lambda wc: [
                layer_cache_path(wc.dataset, m) for m in CFG.block_models(wc.block)
            ],
            manifest=manifest_path("{dataset}"),
        output:
            pair_block_path("{dataset}", "{block}"),
        log:
            log_path("{dataset}", "pair_blocks/{block}"),
        benchmark:
            benchmark_path("{dataset}", "pair_blocks/{block}")
        wildcard_constraints:
            block=r"\d+-\d+",
        conda:
            "../envs/align.yaml"
        threads: CFG.alignment["threads"]
        resources:
            **CFG.partition_resources("pair_block"),
            # the pair cost model summed over the block (prh.config.Config.block_cost)
            mem_mb=lambda wc: CFG.block_resources(wc.dataset, wc.block)["mem_mb"],
            runtime=lambda wc: CFG.block_resources(wc.dataset, wc.block)["runtime"],
            gpu=CFG.alignment_gpus,
        params:
            caches=lambda wc: {
                m: layer_cache_path(wc.dataset, m) for m in CFG.block_models(wc.block)
            },
            block=lambda wc: CFG.block_params(wc.block),
            metrics=CFG.metric_params(),
            device=CFG.alignment["device"],
            stale=lambda wc: stale_mark(pair_block_path(wc.dataset, wc.block)),
        script:
            "../scripts/pair_block.py"


rule aggregate:
    input:
        library("aggregate.py"),
        pairs=pair_files,
        features=lambda wc: list(features_files(wc).values()),
    output:
        h5=alignment_path("{dataset}"),
        tsv=table_path("{dataset}", "alignment"),
        aggregates=table_path("{dataset}", "aggregates"),
    log:
        log_path("{dataset}", "aggregate"),
    conda:
        "../envs/align.yaml"
    threads: 1
    resources:
        **CFG.partition_resources("aggregate"),
        mem_mb=2000,
        runtime=10,
    params:
        models=MODELS,
        metrics=METRICS,
        pairs=CFG.pairs(),
        stale=lambda wc: stale_mark(alignment_path(wc.dataset)),
        features=features_files,
    script:
        "../scripts/aggregate.py"


# Is alignment still moving at this N? Score and null on nested subsets.
rule sample_size_curve:
    input:
        library("sample_size_curve.py"),
        unpack(
            lambda wc: {
                f"cache_{m}": layer_cache_path(wc.dataset, m)
                for m in CFG.sample_size_models()
            }
        ),
    output:
        table_path("{dataset}", "sample_size"),
    log:
        log_path("{dataset}", "sample_size"),
    benchmark:
        benchmark_path("{dataset}", "sample_size")
    conda:
        "../envs/align.yaml"
    threads: CFG.alignment["threads"]
    resources:
        **CFG.partition_resources("sample_size_curve"),
        mem_mb=lambda wc: CFG.sample_size_resources(wc.dataset)["mem_mb"],
        runtime=lambda wc: CFG.sample_size_resources(wc.dataset)["runtime"],
        gpu=CFG.alignment_gpus,
    params:
        pairs=CFG.sample_size_pairs(),
        models=CFG.sample_size_models(),
        curve=CFG.sample_size_params(),
        device=CFG.alignment["device"],
        stale=lambda wc: stale_mark(table_path(wc.dataset, "sample_size")),
    script:
        "../scripts/sample_size_curve.py"


rule align:
    input:
        [p for d in DATASETS for p in CFG.align_targets(d)],
