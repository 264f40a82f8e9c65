# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged, set_threads
from prh.steps import layer_cache

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    layer_cache.run(
        snakemake.input.features,
        snakemake.output[0],
        manifest=snakemake.input.manifest,
        model=snakemake.params.model,
        device=snakemake.params.device,
        **snakemake.params.cache,
    )
