# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import aggregate

with logged(snakemake.log[0]):
    aggregate.run(
        snakemake.input.pairs,
        dataset=snakemake.wildcards.dataset,
        models=snakemake.params.models,
        metrics=snakemake.params.metrics,
        out_h5=snakemake.output.h5,
        out_tsv=snakemake.output.tsv,
        out_aggregates_tsv=snakemake.output.aggregates,
        pairs=snakemake.params.pairs,
        features=snakemake.params.features,
    )
