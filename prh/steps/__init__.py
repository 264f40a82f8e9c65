"""The workflow's steps, one module per Snakemake rule, as plain functions.

Each rule's script is a few lines that call its step's ``run``; the logic
stays here, testable without Snakemake. A step module imports only what its
rule needs, so that editing one step reruns that rule's jobs alone (the rules
take the import closure of their script as inputs, see :mod:`prh.imports`).

- :mod:`.prepare_dataset`: a configured dataset -> its manifest
- :mod:`.embed`: a manifest and a model -> its features file
- :mod:`.layer_cache`: a features file -> the model's layer cache
- :mod:`.pair_scores`: two layer caches -> the pair file (with calibration)
- :mod:`.aggregate`: every pair file -> alignment.h5, alignment.tsv, aggregates.tsv
- :mod:`.sample_size_curve`: layer caches -> sample_size.tsv
- :mod:`.plots`: the figure rules (heatmaps, competence, layers, agreement,
  sample size)
"""
