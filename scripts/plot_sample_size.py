import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import sample_size_curve

with logged(snakemake.log[0]):
    sample_size_curve(
        snakemake.input.tsv, snakemake.output.sample_size, dpi=snakemake.params.dpi
    )
