# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged, set_threads
from prh.steps import pair_scores

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    pair_scores.run(
        snakemake.input.x,
        snakemake.input.y,
        snakemake.output[0],
        metrics=snakemake.params.metrics,
        model_x=snakemake.wildcards.model_x,
        model_y=snakemake.wildcards.model_y,
        device=snakemake.params.device,
        calibration=snakemake.params.calibration,
        manifest=snakemake.input.manifest,
    )
