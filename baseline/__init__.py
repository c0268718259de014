"""citybaseline: a city's baseline (buildings, heights, vehicles on the road) from imagery.

The package is laid out by the stages of the pipeline (see DESIGN.md):
``ingest`` -> ``preprocess`` -> ``detect`` -> ``classify`` -> ``aggregate`` -> ``publish``,
with shared types in ``core``, map context in ``context``, the scene renderer in
``synth``, and orchestration in ``run`` and ``cli`` on top.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("citybaseline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
