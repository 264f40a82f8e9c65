# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import prepare_dataset

with logged(snakemake.log[0]):
    prepare_dataset.run(snakemake.params.dataset, snakemake.output[0])
