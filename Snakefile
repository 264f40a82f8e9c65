# The prh workflow: datasets -> HDF5 embeddings -> per-model layer caches -> pair
# score matrices -> model x model alignment (HDF5 + TSV) -> figures; the
# report (`make run` writes results/report.html) gathers the figures, the
# findings page and the tables.
# `snakemake --profile profiles/default` runs config.yaml; see README.md.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml always; --config and --configfile merge into it. To run another
# config alone (the paper's has none of the offline models), add
# --replace-workflow-config: the command line's config then replaces it.
configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/features.smk"
include: "rules/alignment.smk"
include: "rules/statistics.smk"
include: "rules/plots.smk"
include: "rules/scorecards.smk"
include: "rules/findings.smk"


localrules:
    all,
    embed,
    align,
    plots,
    scorecards,


rule all:
    default_target: True
    input:
        rules.align.input,
        rules.plots.input,
