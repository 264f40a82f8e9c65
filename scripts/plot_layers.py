# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import plots

p = snakemake.params
pairs = {k[len("pair_"):]: v for k, v in snakemake.input.items() if k.startswith("pair_")}
with logged(snakemake.log[0]):
    plots.layer_heatmaps(
        pairs,
        p.figures,
        dict(snakemake.output.items()),
        features=p.features,
        dataset=snakemake.wildcards.dataset,
        dpi=p.dpi,
    )
