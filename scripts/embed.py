# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import embed

with logged(snakemake.log[0]):
    embed.run(
        snakemake.params.model,
        snakemake.input.manifest,
        snakemake.output[0],
        name=snakemake.wildcards.model,
        threads=snakemake.threads,
    )
