import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.pairs import aggregate

with logged(snakemake.log[0]):
    aggregate(
        snakemake.input.pairs,
        dataset=snakemake.wildcards.dataset,
        models=snakemake.params.models,
        metrics=snakemake.params.metrics,
        out_h5=snakemake.output.h5,
        out_tsv=snakemake.output.tsv,
        out_aggregates_tsv=snakemake.output.aggregates,
    )
