"""prh: measure how neural representations converge (Platonic Representation Hypothesis).

The library holds all of the logic; the Snakemake workflow only calls it.
Importing `prh` is cheap: heavy dependencies (torch, transformers, timm) are
imported by the submodules that need them.
"""

__version__ = "0.1.0"
