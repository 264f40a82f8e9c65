# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import report_tables

with logged(snakemake.log[0]):
    report_tables.run(
        snakemake.params.tables,
        {name: snakemake.output[name] for name in snakemake.params.tables},
        dataset=snakemake.wildcards.dataset,
    )
