"""Sentinel-2 scenes of a road corridor through open country: where moving trucks show.

Fisser et al. (2022, Remote Sensing 14(7):1595) detect trucks from the
Sentinel-2 inter-band "rainbow" on motorways, trunk and primary roads, where
trucks drive at 60-90 km/h and travel 17-25 m (two pixels) between B02 and
B04. The city renders' trucks drive at 15-40 km/h, 4-11 m in that second:
inside one pixel. So the detector is scored on both: the city renders, and
these corridors, which put the method where it is meant to work.

A corridor is one main road (a dual-carriageway motorway or trunk road, or a
two-lane primary road) on a random heading across fields, forest, bare soil,
a few farm roofs and water, with 0-2 minor roads crossing it. Traffic follows
the renderer's rules: each lane holds vehicles at a speed-dependent gap; trucks
(8-18 m) keep to the outer lanes at 65-92 km/h on motorways, cars drive at
about the limit; about one scene in five has a congested carriageway (10-40
km/h) and a few trucks stand in lay-bys. Colours are the renderer's (half the
trucks white, the rest drawn like cars', so about a quarter are dark). The
ground is drawn at 1 m and averaged to 10 m; vehicles are drawn per band where
they were at that band's time by the city renderer's own function
(:func:`baseline.synth.sentinel2._moving_vehicles`), with their shadows; the
Sentinel-2 blur and noise come last.

The truth table has one row per vehicle at B04 time (the renderer's reference
instant), with the city renders' columns: ``class`` (car or large), ``moving``,
``speed_kmh``, ``heading_deg``, ``colour``.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from scipy.ndimage import gaussian_filter

from baseline.synth import materials
from baseline.synth.geometry import oriented_boxes
from baseline.synth.grid import S2_GSD_M, Grid
from baseline.synth.sensors import SENTINEL2
from baseline.synth.sentinel2 import _moving_vehicles
from baseline.synth.shadows import shadow_direction
from baseline.synth.streams import stream

FINE_M = 1.0
LANE_M = 3.5
CRS_UTM32N = CRS.from_epsg(32632)

FIELD_MATERIALS = np.array([
    materials.GROUND["grass"], (0.03, 0.07, 0.04, 0.45), (0.02, 0.04, 0.025, 0.30),   # grass, crop, forest
    (0.08, 0.11, 0.15, 0.24), (0.10, 0.13, 0.17, 0.27),                               # bare soil
    materials.GROUND["water"],
], dtype=np.float32)
FIELD_WEIGHTS = np.array([0.25, 0.25, 0.2, 0.12, 0.12, 0.06])
ROOFS = np.array([(0.15, 0.16, 0.17, 0.20), (0.28, 0.29, 0.30, 0.33), (0.09, 0.07, 0.06, 0.12)], dtype=np.float32)

ROAD_KINDS = {
    # highway: (lanes each way choices, median m, limit km/h, truck speed (mean, sd) km/h, p)
    "motorway": ((2, 3), (4.0, 14.0), 120.0, (82.0, 5.0), 0.5),
    "trunk": ((2,), (2.0, 6.0), 100.0, (78.0, 6.0), 0.25),
    "primary": ((1,), (0.0, 0.0), 80.0, (70.0, 7.0), 0.25),
}


@dataclass(frozen=True)
class CorridorParams:
    """One corridor scene.

    Attributes:
        seed: random seed; the same seed gives identical pixels.
        size_px: side of the 10 m image.
        sun_elevation_deg, sun_azimuth_deg: sun position (shadows of vehicles).
        noise: add the Sentinel-2 blur and noise.
    """

    seed: int = 0
    size_px: int = 128
    sun_elevation_deg: float = 45.0
    sun_azimuth_deg: float = 160.0
    noise: bool = True

    @classmethod
    def with_random_sun(cls, seed: int) -> CorridorParams:
        """The seed's scene under a sun drawn from the seed (elevation 25-60, azimuth 100-260 degrees)."""
        rng = np.random.default_rng([seed, 77])
        return cls(seed=seed, sun_elevation_deg=float(rng.uniform(25, 60)), sun_azimuth_deg=float(rng.uniform(100, 260)))


@dataclass(frozen=True)
class CorridorScene:
    """A rendered corridor: reflectance (0-1) of B02, B03, B04, B08, its grid, roads and vehicle truth."""

    reflectance: np.ndarray
    valid: np.ndarray
    grid: Grid
    roads: gpd.GeoDataFrame
    vehicles: gpd.GeoDataFrame
    road_kind: str

    @property
    def transform(self):  # noqa: ANN201 - affine.Affine
        """The image's affine transform."""
        return self.grid.transform


def _ground(rng: np.random.Generator, fine: Grid) -> np.ndarray:
    """(4, h, w) reflectance at 1 m: Voronoi patches of fields, forest, soil and water, a few roofs."""
    h, w = fine.shape
    n = int(rng.integers(8, 20))
    centres = rng.uniform(0, [h, w], (n, 2))
    rr, cc = np.mgrid[0:h:10, 0:w:10]
    owner = np.argmin((rr[..., None] - centres[:, 0]) ** 2 + (cc[..., None] - centres[:, 1]) ** 2, axis=-1)
    kinds = rng.choice(len(FIELD_MATERIALS), size=n, p=FIELD_WEIGHTS)
    coarse = FIELD_MATERIALS[kinds][owner] * rng.uniform(0.85, 1.15, (n, 1))[owner]
    coarse *= (1.0 + 0.06 * gaussian_filter(rng.standard_normal(owner.shape), 1.5))[..., None]
    refl = np.repeat(np.repeat(coarse.transpose(2, 0, 1), 10, axis=1), 10, axis=2)[:, :h, :w].astype(np.float32)
    for _ in range(int(rng.integers(0, 6))):  # farm buildings
        r, c = rng.integers(0, h - 40), rng.integers(0, w - 40)
        bh, bw = rng.integers(10, 40, 2)
        refl[:, r : r + bh, c : c + bw] = ROOFS[int(rng.integers(len(ROOFS)))][:, None, None]
    return refl


def _carriageways(rng: np.random.Generator, centre: tuple[float, float], heading: float,
                  kind: str, length: float) -> list[dict]:
    """The main road's carriageways (one per direction on dual roads, one for both on a primary road)."""
    lanes_choices, (med_lo, med_hi), limit, _, _ = ROAD_KINDS[kind]
    lanes = int(rng.choice(lanes_choices))
    h = np.radians(heading)
    across = np.array([np.cos(h), -np.sin(h)])  # unit vector to the right of the heading
    out = []
    if kind == "primary":
        width = 2 * LANE_M + rng.uniform(0.5, 2.0)
        out.append({"offset": 0.0, "width": width, "lanes": 2, "bearing": heading, "both": True})
    else:
        median = rng.uniform(med_lo, med_hi)
        width = lanes * LANE_M + rng.uniform(1.5, 3.5)  # hard shoulder
        for side in (1, -1):
            out.append({"offset": side * (median + width) / 2, "width": width, "lanes": lanes,
                        "bearing": heading if side > 0 else (heading + 180.0) % 360.0, "both": False})
    for c in out:
        cx, cy = centre[0] + across[0] * c["offset"], centre[1] + across[1] * c["offset"]
        c["geometry"] = oriented_boxes(np.array([cx]), np.array([cy]), np.array([heading]),
                                       np.array([length]), np.array([c["width"]]))[0]
        c["centre"] = (cx, cy)
        c["limit"] = limit
        c["highway"] = kind
    return out


def _traffic(rng: np.random.Generator, carriageways: list[dict], kind: str, length: float,
             congested: bool) -> list[tuple]:
    """Vehicles on the carriageways: (x, y, heading, length, width, large, speed km/h, colour)."""
    truck_mean, truck_sd = ROAD_KINDS[kind][3]
    rows = []
    for ci, c in enumerate(carriageways):
        slow = congested and ci == 0
        n_lanes = c["lanes"]
        for lane in range(n_lanes):
            if c["both"]:  # a two-way road: lane 0 one way, lane 1 the other
                bearing = c["bearing"] if lane == 0 else (c["bearing"] + 180.0) % 360.0
                offset = (lane - 0.5) * LANE_M
            else:
                bearing = c["bearing"]
                offset = (lane - (n_lanes - 1) / 2) * LANE_M * (1 if c["offset"] > 0 else -1)
            outer = c["both"] or lane == n_lanes - 1
            p_truck = 0.35 if outer else (0.08 if lane == n_lanes - 2 else 0.0)
            density = rng.uniform(0.012, 0.035) * (2.0 if slow else 1.0)  # vehicles per metre of lane
            s = -length / 2 + rng.uniform(0, 30)
            h = np.radians(bearing)
            while s < length / 2:
                large = rng.random() < p_truck
                if large:
                    veh_len, veh_w = rng.uniform(8.0, 18.0), 2.5
                    speed = rng.uniform(10.0, 40.0) if slow else float(np.clip(rng.normal(truck_mean, truck_sd), 55, 95))
                else:
                    veh_len, veh_w = rng.uniform(4.0, 5.0), 1.8
                    speed = rng.uniform(10.0, 45.0) if slow else float(np.clip(
                        rng.normal(c["limit"] * (1.0 - 0.08 * (n_lanes - 1 - lane)), 10.0), 50, 160))
                colour = int(rng.choice(len(materials.VEHICLE_COLOURS), p=materials.VEHICLE_COLOUR_WEIGHTS))
                if large and rng.random() < 0.5:
                    colour = 0  # many trucks and vans are white (the renderer's rule)
                x = c["centre"][0] + s * np.sin(h) + offset * np.cos(h)
                y = c["centre"][1] + s * np.cos(h) - offset * np.sin(h)
                rows.append((x, y, bearing, veh_len, veh_w, large, speed, colour))
                gap = 2.0 + speed / 3.6 * 0.8
                s += veh_len + gap + rng.exponential(1.0 / density)
    return rows


def render_corridor(params: CorridorParams) -> CorridorScene:
    """Render one corridor scene (see the module docstring)."""
    rng = stream(params.seed, "corridor")
    size = params.size_px
    x0 = 600_000.0 + 10_000.0 * (params.seed % 50)
    y0 = 5_800_000.0 + 10_000.0 * (params.seed // 50 % 50)
    grid = Grid(x0, y0, S2_GSD_M, size, size, CRS_UTM32N)
    k = int(round(S2_GSD_M / FINE_M))
    fine = Grid(x0, y0, FINE_M, size * k, size * k, CRS_UTM32N)
    refl_fine = _ground(rng, fine)

    names, probs = list(ROAD_KINDS), np.array([v[4] for v in ROAD_KINDS.values()])
    kind = str(rng.choice(names, p=probs / probs.sum()))
    half = size * S2_GSD_M / 2
    centre = (x0 + half + rng.uniform(-0.2, 0.2) * half, y0 - half + rng.uniform(-0.2, 0.2) * half)
    heading = float(rng.uniform(0, 180))
    length = size * S2_GSD_M * 1.5
    roads = _carriageways(rng, centre, heading, kind, length)
    for _ in range(int(rng.integers(0, 3))):  # minor roads crossing
        minor_centre = (x0 + rng.uniform(0.2, 0.8) * 2 * half, y0 - rng.uniform(0.2, 0.8) * 2 * half)
        minor = _carriageways(rng, minor_centre, float(rng.uniform(0, 180)), "primary", length)[0]
        minor["highway"], minor["limit"] = "secondary", 60.0
        roads.append(minor)

    asphalt = np.asarray(materials.GROUND["road"], dtype=np.float32) * rng.uniform(0.9, 1.25)
    road_mask = fine.mask(np.array([r["geometry"] for r in roads]))
    refl_fine[:, road_mask] = asphalt[:, None]
    base = refl_fine.reshape(4, size, k, size, k).mean(axis=(2, 4))

    congested = bool(rng.random() < 0.2)
    rows = _traffic(rng, roads[: 2 if kind != "primary" else 1], kind, length, congested)
    for minor in roads[2 if kind != "primary" else 1 :]:
        rows += _traffic(rng, [minor], "primary", length, False)
    # a few trucks standing in lay-bys at the verge
    main = roads[0]
    for _ in range(int(rng.poisson(0.7))):
        s = rng.uniform(-half, half)
        hh = np.radians(main["bearing"])
        off = main["width"] / 2 + 3.0
        x = main["centre"][0] + s * np.sin(hh) + off * np.cos(hh)
        y = main["centre"][1] + s * np.cos(hh) - off * np.sin(hh)
        rows.append((x, y, main["bearing"], rng.uniform(10, 16), 2.5, True, 0.0, 0))

    x, y, head, vlen, vwid, large, speed, colour = (np.array(v) for v in zip(*rows, strict=True)) if rows else \
        (np.zeros(0),) * 8
    boxes = oriented_boxes(x, y, head, vlen, vwid)
    inside = shapely.intersects(boxes, shapely.box(*grid.bounds)) if len(boxes) else np.zeros(0, bool)
    v = speed / 3.6
    vehicles = gpd.GeoDataFrame({
        "vehicle_id": np.arange(len(boxes), dtype="int64"),
        "class": np.where(large.astype(bool), "large", "car"),
        "moving": speed > 0,
        "speed_kmh": speed.astype(float),
        "heading_deg": head.astype(float),
        "length_m": vlen.astype(float),
        "colour": colour.astype("int64"),
        "vx": v * np.sin(np.radians(head)),
        "vy": v * np.cos(np.radians(head)),
        "height_m": np.where(large.astype(bool), 3.8, 1.5),
    }, geometry=boxes, crs=grid.crs)
    sun = shadow_direction(params.sun_elevation_deg, params.sun_azimuth_deg)
    refl = base + _moving_vehicles(grid, vehicles, sun)
    nrng = stream(params.seed, "corridor-noise")
    if params.noise:
        for b in range(4):
            refl[b] = gaussian_filter(refl[b], SENTINEL2.psf_sigma_px, mode="nearest")
            sd = np.sqrt(SENTINEL2.noise_floor**2 + SENTINEL2.noise_gain * np.clip(refl[b], 0, None))
            refl[b] += sd * nrng.standard_normal(grid.shape, dtype=np.float32)
    refl = np.clip(np.rint(refl * 10000.0), 1, 65535).astype(np.float32) * 1e-4  # the L2A's integer counts
    road_table = gpd.GeoDataFrame({
        "highway": [r["highway"] for r in roads],
        "lanes": [r["lanes"] for r in roads],
        "maxspeed_kmh": [r["limit"] for r in roads],
        "bearing_deg": [r["bearing"] for r in roads],
    }, geometry=[r["geometry"] for r in roads], crs=grid.crs)
    return CorridorScene(reflectance=refl.astype(np.float32), valid=np.ones(grid.shape, dtype=bool), grid=grid,
                         roads=road_table, vehicles=vehicles[inside].reset_index(drop=True), road_kind=kind)
