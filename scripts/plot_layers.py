import sys
from pathlib import Path

# This checkout's prh, also in conda environments that do not install it.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))

from prh.jobio import logged
from prh.plots import pair_layer_heatmaps

out = dict(snakemake.output.items())
p = snakemake.params
features = dict(zip(p.models, snakemake.input.features))
with logged(snakemake.log[0]):
    for (x, y), pair_file in zip(p.pairs, snakemake.input.pairs):
        pair_layer_heatmaps(
            pair_file,
            {m: out[f"{x}__{y}/{m}"] for m in p.metrics},
            model_x=x,
            model_y=y,
            features_x=features[x],
            features_y=features[y],
            dataset=snakemake.wildcards.dataset,
            dpi=p.dpi,
        )
