import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import alignment_heatmaps

with logged(snakemake.log[0]):
    alignment_heatmaps(
        snakemake.input.alignment,
        snakemake.output,
        snakemake.params.metrics,
        dpi=snakemake.params.dpi,
        modalities=snakemake.params.modalities,
    )
