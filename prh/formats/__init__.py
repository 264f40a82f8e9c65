"""Every file the workflow writes, one module per format, each with its writer
and its reader:

- :mod:`.features`: one model's pooled features on one dataset (HDF5)
- :mod:`.layer_cache`: one model's per-layer alignment work (HDF5)
- :mod:`.pair`: one model pair's layer x layer scores and calibration (HDF5)
- :mod:`.alignment`: the model x model matrices of one dataset (HDF5)
- :mod:`.tables`: the tidy TSV tables (alignment, aggregates, sample size)

A step edits never a format: an edit to one of these modules reruns the jobs
that write or read that format, and nothing else.
"""
