import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged, set_threads
from prh.pairs import pair_scores

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    pair_scores(
        snakemake.input.x,
        snakemake.input.y,
        snakemake.output[0],
        metrics=snakemake.params.metrics,
        model_x=snakemake.wildcards.model_x,
        model_y=snakemake.wildcards.model_y,
        device=snakemake.params.device,
        calibration=snakemake.params.calibration,
    )
