import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import alignment_vs_competence

out = dict(snakemake.output.items())
p = snakemake.params
with logged(snakemake.log[0]):
    for metric in p.metrics:
        for name, calibrated in ((f"competence_{metric}", False),
                                 (f"competence_raw_vs_calibrated_{metric}", True)):
            if name in out:
                alignment_vs_competence(
                    snakemake.input.alignment,
                    out[name],
                    metric=metric,
                    modalities=p.modalities,
                    features=dict(zip(p.models, snakemake.input.features)),
                    competence=p.competence,
                    calibrated=calibrated,
                    dpi=p.dpi,
                )
