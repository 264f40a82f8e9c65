# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import scorecard

with logged(snakemake.log[0]):
    scorecard.run(
        snakemake.wildcards.model,
        snakemake.input.pairs,
        dataset=snakemake.wildcards.dataset,
        features=snakemake.params.features,
        out_tsv=snakemake.output.tsv,
        out_png=snakemake.output.png,
        dpi=snakemake.params.dpi,
        intervals=snakemake.params.intervals,
        **snakemake.params.card,
    )
