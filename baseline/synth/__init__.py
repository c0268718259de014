"""The scene renderer: synthetic VHR and Sentinel-2 imagery of real map geometry, with exact truth.

Usage from Python::

    from baseline.synth import RenderParams, render_scene, write_scene

    result = render_scene(RenderParams(city="helsinki", seed=3, bbox=(385800, 6672000, 386000, 6672200)))
    result.vhr            # (4, rows, cols) uint16: blue, green, red, NIR x 10000
    result.vehicles       # truth GeoDataFrame (docs/contracts.md)
    write_scene(result, "scenes/helsinki-s3")

The command line is ``baseline synth`` (:mod:`baseline.cli.synth_cmd`).
"""

from baseline.synth.params import DEFAULT_TIME, HeightPrior, RenderParams, parse_time
from baseline.synth.render import STEPS, RenderResult, render_scene
from baseline.synth.solar import SunPosition, solar_position
from baseline.synth.writer import write_scene

__all__ = [
    "DEFAULT_TIME",
    "STEPS",
    "HeightPrior",
    "RenderParams",
    "RenderResult",
    "SunPosition",
    "parse_time",
    "render_scene",
    "solar_position",
    "write_scene",
]
