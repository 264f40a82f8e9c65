import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.workflow_steps import embed

with logged(snakemake.log[0]):
    embed(
        snakemake.params.model,
        snakemake.input.manifest,
        snakemake.output[0],
        threads=snakemake.threads,
    )
