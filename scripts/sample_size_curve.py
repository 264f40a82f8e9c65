# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged, set_threads
from prh.steps import sample_size_curve

p = snakemake.params
with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    sample_size_curve.run(
        {m: snakemake.input[f"cache_{m}"] for m in p.models},
        p.pairs,
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        device=p.device,
        **p.curve,
    )
