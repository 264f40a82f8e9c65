import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.workflow_steps import prepare_dataset

with logged(snakemake.log[0]):
    prepare_dataset(snakemake.params.dataset, snakemake.output[0])
