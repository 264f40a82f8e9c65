# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import plots

p = snakemake.params
with logged(snakemake.log[0]):
    plots.competence(
        snakemake.input.alignment,
        p.figures,
        dict(snakemake.output.items()),
        modalities=p.modalities,
        features=p.features,
        competence=p.competence,
        dpi=p.dpi,
        **dict(zip(("intervals", "trend"), snakemake.input.statistics)),
    )
