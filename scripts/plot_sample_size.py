# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import plots

p = snakemake.params
with logged(snakemake.log[0]):
    plots.sample_size(
        snakemake.input.tsv,
        p.figures,
        dict(snakemake.output.items()),
        dpi=p.dpi,
        labels=p.names,
    )
