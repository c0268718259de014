"""Clouds: soft-edged bright blobs at altitude, and their shadows on the ground.

The cloud field is fractal value noise fixed to map coordinates; its threshold
is the quantile that puts the asked fraction of the *whole scene* under cloud,
so a crop shows the same clouds as the full render. Opacity ramps smoothly from
0 to 1 over a band of the field, which gives soft edges and thick cores. A
cloud at ``CLOUD_BASE_M`` casts its shadow displaced by
``CLOUD_BASE_M / tan(elevation)`` towards azimuth + 180, so shadows and clouds
separate as they do in real imagery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from baseline.synth import materials
from baseline.synth.grid import Grid
from baseline.synth.noise import fbm
from baseline.synth.shadows import shadow_direction

CLOUD_BASE_M = 1000.0
CELL_M = 700.0
EDGE = 0.12          # width of the soft edge, in field units
SHADOW_DEPTH = 0.85  # a thick cloud's shadow keeps diffuse light only, a little more


@dataclass(frozen=True)
class Clouds:
    """A cloud field over one scene."""

    seed: int
    threshold: float
    shadow_dx: float
    shadow_dy: float

    def _field(self, grid: Grid) -> np.ndarray:
        return fbm(grid, CELL_M, self.seed, "clouds", octaves=5, gain=0.55)

    def opacity(self, grid: Grid) -> np.ndarray:
        """Cloud opacity (0 to 1) at each pixel centre."""
        return _ramp(self._field(grid) - self.threshold)

    def shadow(self, grid: Grid) -> np.ndarray:
        """Opacity of the cloud between each pixel and the sun (0 to 1)."""
        moved = Grid(grid.x0 - self.shadow_dx, grid.y0 - self.shadow_dy, grid.gsd, grid.width, grid.height, grid.crs)
        return _ramp(self._field(moved) - self.threshold)

    def apply(self, canvas: np.ndarray, grid: Grid, shaded: np.ndarray | None = None) -> np.ndarray:
        """Darken cloud shadows and overlay clouds on ``canvas`` (4 bands) in place; returns the opacity.

        Pixels in ``shaded`` (already in a building's shadow) have no direct sun
        for a cloud to take away, so cloud shadows leave them as they are.
        """
        alpha = self.opacity(grid)
        shade = self.shadow(grid) * SHADOW_DEPTH
        if shaded is not None:
            shade[shaded] = 0.0
        thickness = np.clip(alpha * 1.4 - 0.2, 0.0, 1.0)
        for band in range(canvas.shape[0]):
            ratio = materials.SHADOW_RATIO[band]
            canvas[band] *= 1.0 - shade * (1.0 - ratio)
            canvas[band] = canvas[band] * (1.0 - alpha) + alpha * materials.CLOUD[band] * (0.85 + 0.15 * thickness)
        return alpha


def plan_clouds(fraction: float, bounds: tuple[float, float, float, float], crs: object, seed: int,
                sun_elevation_deg: float, sun_azimuth_deg: float) -> Clouds | None:
    """Clouds covering ``fraction`` of the scene in ``bounds``; ``None`` for a clear sky."""
    if fraction <= 0.0:
        return None
    ux, uy, per_m = shadow_direction(sun_elevation_deg, sun_azimuth_deg)
    coarse = Grid.covering(bounds, 20.0, crs)
    probe = Clouds(seed, 0.0, 0.0, 0.0)._field(coarse)
    threshold = float(np.quantile(probe, 1.0 - fraction)) if fraction < 1.0 else float(probe.min()) - 2 * EDGE
    length = CLOUD_BASE_M * per_m
    return Clouds(seed, threshold, ux * length, uy * length)


def _ramp(d: np.ndarray) -> np.ndarray:
    t = np.clip(d / EDGE + 0.5, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
