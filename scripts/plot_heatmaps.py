import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import alignment_heatmaps

out = dict(snakemake.output.items())
metrics = snakemake.params.metrics
with logged(snakemake.log[0]):
    alignment_heatmaps(
        snakemake.input.alignment,
        [out[f"heatmap_{m}"] for m in metrics],
        metrics,
        dpi=snakemake.params.dpi,
        modalities=snakemake.params.modalities,
        features=dict(zip(snakemake.params.models, snakemake.input.features)),
        calibrated_outputs=(
            [out[f"heatmap_{m}_calibrated"] for m in metrics]
            if snakemake.params.calibrated
            else None
        ),
    )
