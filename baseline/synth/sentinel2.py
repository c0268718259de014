"""Sentinel-2-like L2A at 10 m, made from the same ground as the VHR image.

The static scene (everything but moving vehicles and clouds) drawn at VHR
resolution is area-averaged onto the 10 m grid, so built-up fraction, roof and
shadow mixtures are physically consistent with the VHR image. Moving vehicles
are then drawn per band at 1 m at their positions at that band's time
(``v * offset``; B02 is sensed 1.005 s before B04), block-averaged and added as
a difference from the asphalt under them: a fast truck leaves its blue, green
and red copies apart, the "rainbow" of real Sentinel-2 scenes. Clouds, a small
Gaussian PSF and noise come last; the scene classification (SCL) marks cloud,
cloud shadow, water, vegetation and the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from scipy.ndimage import gaussian_filter

from baseline.synth import materials
from baseline.synth.atmosphere import Clouds
from baseline.synth.geometry import translate
from baseline.synth.grid import S2_GSD_M, Grid, area_weights
from baseline.synth.sensors import (
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_NODATA,
    SCL_NOT_VEGETATED,
    SCL_VEGETATION,
    SCL_WATER,
    SENTINEL2,
)
from baseline.synth.shadows import box_sweeps
from baseline.synth.streams import stream

FINE_M = 1.0   # vehicles are drawn at this resolution, then block-averaged


@dataclass(frozen=True)
class Sentinel2Base:
    """The static scene averaged onto the 10 m grid, before motion, clouds and noise."""

    grid: Grid
    reflectance: np.ndarray   # (4, h, w) float32
    water_fraction: np.ndarray
    valid: np.ndarray


def average_static(canvas: np.ndarray, vhr: Grid, valid: np.ndarray, water: np.ndarray) -> Sentinel2Base:
    """Area-average the static VHR canvas (valid pixels only) onto the Sentinel-2 grid."""
    grid = Grid(vhr.x0, vhr.y0, S2_GSD_M, int((vhr.width * vhr.gsd + 1e-6) // S2_GSD_M),
                int((vhr.height * vhr.gsd + 1e-6) // S2_GSD_M), vhr.crs)
    wr = area_weights(vhr.height, vhr.gsd, grid.height, S2_GSD_M)
    wc = area_weights(vhr.width, vhr.gsd, grid.width, S2_GSD_M).T.copy()
    v = valid.astype(np.float32)
    cover = wr @ v @ wc
    full = wr.sum(axis=1)[:, None] * wc.sum(axis=0)[None, :]
    den = np.maximum(cover, 1e-6)
    refl = np.empty((4, grid.height, grid.width), dtype=np.float32)
    for b in range(4):
        refl[b] = (wr @ (canvas[b] * v) @ wc) / den
    water_fraction = (wr @ (water & valid).astype(np.float32) @ wc) / den
    return Sentinel2Base(grid, refl, water_fraction, cover / full >= 0.5)


def render_sentinel2(base: Sentinel2Base, moving: gpd.GeoDataFrame, clouds: Clouds | None, seed: int,
                     sun: tuple[float, float, float], noise: bool = True) -> tuple[np.ndarray, float]:
    """Sentinel-2 bands B02, B03, B04, B08 and SCL as uint16 ``(5, h, w)``, and the cloud cover in percent.

    ``sun`` is the shadow direction ``(east, north, metres per metre of height)``;
    ``noise`` False leaves out the PSF blur and the noise.
    """
    grid = base.grid
    refl = base.reflectance.copy()
    if len(moving):
        refl += _moving_vehicles(grid, moving, sun)
    alpha = np.zeros(grid.shape, dtype=np.float32)
    shade = np.zeros(grid.shape, dtype=np.float32)
    if clouds is not None:
        alpha = clouds.apply(refl, grid)
        shade = clouds.shadow(grid)
    rng = stream(seed, "sentinel-2-noise")
    for b in range(4):
        if noise:
            refl[b] = gaussian_filter(refl[b], SENTINEL2.psf_sigma_px, mode="nearest")
            sd = np.sqrt(SENTINEL2.noise_floor**2 + SENTINEL2.noise_gain * np.clip(refl[b], 0, None))
            refl[b] += sd * rng.standard_normal(grid.shape, dtype=np.float32)
    out = np.zeros((5, *grid.shape), dtype=np.uint16)
    out[:4] = np.clip(np.rint(refl * 10000.0), 1, 65535).astype(np.uint16)
    out[:4, ~base.valid] = 0
    out[4] = _scl(refl, base.water_fraction, alpha, shade, base.valid)
    cover = float((alpha[base.valid] >= 0.5).mean() * 100.0) if base.valid.any() else 0.0
    return out, cover


def _moving_vehicles(grid: Grid, moving: gpd.GeoDataFrame, sun: tuple[float, float, float]) -> np.ndarray:
    """Per-band reflectance change (10 m) of moving vehicles and their shadows over asphalt."""
    k = int(round(S2_GSD_M / FINE_M))
    fine = Grid(grid.x0, grid.y0, FINE_M, grid.width * k, grid.height * k, grid.crs)
    road = materials.GROUND["road"]
    colour = 0.8 * materials.VEHICLE_COLOUR_TABLE[moving["colour"].to_numpy()] + 0.2 * materials.GLASS
    vx, vy = moving["vx"].to_numpy(), moving["vy"].to_numpy()
    delta = np.zeros((4, *grid.shape), dtype=np.float32)
    for b, name in enumerate(SENTINEL2.bands):
        dt = SENTINEL2.time_offsets_s[name]
        boxes = translate(moving.geometry.values, vx * dt, vy * dt)
        ids = fine.ids(boxes, np.arange(len(moving)) + 1)
        shadow = fine.mask(box_sweeps(boxes, moving["height_m"].to_numpy(), *sun)) & (ids == 0)
        layer = np.zeros(fine.shape, dtype=np.float32)
        body = ids > 0
        layer[body] = colour[ids[body] - 1, b] - road[b]
        layer[shadow] = -road[b] * (1.0 - materials.SHADOW_RATIO[b])
        delta[b] = layer.reshape(grid.height, k, grid.width, k).mean(axis=(1, 3))
    return delta


def _scl(refl: np.ndarray, water: np.ndarray, alpha: np.ndarray, shade: np.ndarray,
         valid: np.ndarray) -> np.ndarray:
    """Scene classification codes from the rendered truth (cloud, shadow, water) and NDVI."""
    nir, red = refl[3], refl[2]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.full(valid.shape, SCL_NOT_VEGETATED, dtype=np.uint16)
    scl[ndvi > 0.4] = SCL_VEGETATION
    scl[water > 0.5] = SCL_WATER
    scl[shade > 0.4] = SCL_CLOUD_SHADOW
    scl[alpha > 0.2] = SCL_CLOUD_MEDIUM
    scl[alpha > 0.6] = SCL_CLOUD_HIGH
    scl[~valid] = SCL_NODATA
    return scl
