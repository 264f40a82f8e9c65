# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged, set_threads
from prh.steps import statistics

p = snakemake.params
with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    statistics.run(
        {m: snakemake.input[f"cache_{m}"] for m in p.models},
        features={m: snakemake.input[f"features_{m}"] for m in p.models},
        manifest=snakemake.input.manifest,
        dataset=snakemake.wildcards.dataset,
        out_intervals=snakemake.output.intervals,
        out_comparisons=snakemake.output.comparisons,
        out_trend=snakemake.output.trend,
        modalities=p.modalities,
        competence=p.competence,
        device=p.device,
        **p.statistics,
    )
