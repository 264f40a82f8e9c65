# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged, set_threads
from prh.steps import pair_scores

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    pair_scores.run_block(
        snakemake.params.caches,
        snakemake.output[0],
        block=snakemake.wildcards.block,
        metrics=snakemake.params.metrics,
        device=snakemake.params.device,
        manifest=snakemake.input.manifest,
        **snakemake.params.block,
    )
