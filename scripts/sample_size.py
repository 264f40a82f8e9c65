import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged, set_threads
from prh.sample_size import sample_size_table

with logged(snakemake.log[0]):
    set_threads(snakemake.threads)
    stats = {Path(p).stem: p for p in snakemake.input.stats}
    sample_size_table(
        stats,
        snakemake.params.pairs,
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        device=snakemake.params.device,
        **snakemake.params.curve,
    )
