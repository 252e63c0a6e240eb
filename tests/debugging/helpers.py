"""A local module the pipeline file imports."""
RATE = 0.7
