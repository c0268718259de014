"""Run: the stages of the pipeline on a Dask cluster, tile by tile, resumable."""
