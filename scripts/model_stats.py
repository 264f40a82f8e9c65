import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged, set_threads
from prh.pairs import model_stats

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    model_stats(
        snakemake.input.features,
        snakemake.output[0],
        device=snakemake.params.device,
        **snakemake.params.stats,
    )
