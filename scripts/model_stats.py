import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.workflow_steps import logged, model_stats, set_threads

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    model_stats(
        snakemake.input.features,
        snakemake.output[0],
        device=snakemake.params.device,
        **snakemake.params.stats,
    )
