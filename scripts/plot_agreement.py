import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import metric_agreement

with logged(snakemake.log[0]):
    metric_agreement(
        snakemake.input.alignment,
        snakemake.output.metric_agreement,
        metrics=snakemake.params.metrics,
        dpi=snakemake.params.dpi,
    )
