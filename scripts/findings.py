# Snakemake `script:` of one rule; prh comes from PYTHONPATH (rules/common.smk).
from prh.jobio import logged
from prh.steps import findings

i, p = snakemake.input, snakemake.params
with logged(snakemake.log[0]):
    findings.run(
        dataset=snakemake.wildcards.dataset,
        alignment=i.alignment,
        aggregates=i.aggregates,
        statistics={t: i[t] for t in p.statistics},
        manifest=i.manifest,
        features={m: i[f"features_{m}"] for m in p.models},
        out_md=snakemake.output.md,
        out_html=snakemake.output.html,
        **p.findings,
    )
