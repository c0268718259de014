"""Vehicles: moving and queued in lanes, parked at kerbs and in car parks.

Rules (right-hand traffic, as in Finland):
- lanes are ``LANE_WIDTH_M`` wide; one-way roads use every lane in the
  digitised direction; two-way roads split them, forward lanes on the right of
  the centreline;
- moving vehicles arrive at a density per lane-km that depends on the road
  class and the local hour, keep a speed-dependent gap, and drive at the speed
  limit times a spread;
- at junctions (segment ends where three or more segments meet) some lanes hold
  a queue: stopped vehicles bumper to bumper behind a stop line (``queue``,
  speed 0, ``moving`` False, ``on_road`` True);
- kerbside parking fills the kerb strips with small gaps, nose in the direction
  of travel of that side; car parks are laid out in rows of 2.5 x 5 m bays
  along their long axis with 6 m aisles, most bays taken;
- no vehicle overlaps another, a building, or (if parked) a carriageway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from baseline.context.osm import KERB_STRIP_WIDTH_M, LANE_WIDTH_M
from baseline.core.geo import vector_to_compass
from baseline.synth import materials
from baseline.synth.geometry import oriented_boxes, segment_runs
from baseline.synth.streams import stream

# moving vehicles per lane-km at the busiest hour, by road class
LANE_DENSITY = {"primary": 30.0, "secondary": 24.0, "tertiary": 18.0, "primary_link": 18.0,
                "secondary_link": 15.0, "tertiary_link": 12.0, "residential": 11.0,
                "unclassified": 11.0, "living_street": 4.0, "service": 4.0}
QUEUE_PROBABILITY = {"primary": 0.4, "secondary": 0.3, "tertiary": 0.25, "primary_link": 0.3}
LARGE_SHARE = 0.06          # buses and trucks among moving and queued vehicles
KERB_FILL = 0.33            # chance that the next kerb space is taken
CAR_PARK_OCCUPANCY = 0.82


@dataclass(frozen=True)
class ParkingRules:
    """How full kerbs and car parks are, and how tightly cars stand at the kerb."""

    kerb_fill: float = KERB_FILL
    kerb_gap_m: tuple[float, float] = (0.6, 2.2)
    car_park_occupancy: float = CAR_PARK_OCCUPANCY


PARKING = {
    "usual": ParkingRules(),
    # a full city at night or a stadium day: nearly every kerb space and bay taken, bumpers close
    "dense": ParkingRules(kerb_fill=0.93, kerb_gap_m=(0.35, 0.9), car_park_occupancy=0.98),
}
BAY_WIDTH_M, BAY_DEPTH_M, AISLE_M = 2.5, 5.0, 6.0
STOP_BACK_M = 6.0           # stop line distance before a junction node
CONTEXT_RANK = {"queue": 0, "lane": 1, "kerb": 2, "car_park": 3}


def traffic_factor(local_hour: float) -> float:
    """Share of peak traffic at a local hour: night low, peaks at 8:00 and 16:30."""
    h = local_hour % 24.0
    peaks = math.exp(-((h - 8.0) ** 2) / 2.0) + math.exp(-((h - 16.5) ** 2) / 3.0)
    day = 0.75 if 6.5 <= h <= 20.0 else 0.15
    return float(min(1.0, day + 0.4 * peaks))


def plan_traffic(
    segments: gpd.GeoDataFrame,
    carriageways: np.ndarray,
    kerbs: np.ndarray,
    car_parks: np.ndarray,
    buildings: np.ndarray,
    aoi: shapely.Geometry,
    seed: int,
    local_hour: float,
    parking: ParkingRules = PARKING["usual"],
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """All vehicles of the scene (truth columns plus drawing columns) and the car-park bays."""
    crs = segments.crs
    parts = []
    if len(segments):
        parts.append(_lane_vehicles(segments, stream(seed, "lanes"), traffic_factor(local_hour)))
        parts.append(_kerb_vehicles(segments[segments["kerb_parking"]], stream(seed, "kerb"), parking))
    cars_in_parks, bays = _car_park_vehicles(car_parks, stream(seed, "car_parks"), parking)
    parts.append(cars_in_parks)
    cand = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if cand is None:
        return _empty(crs), bays

    boxes = _boxes(cand)
    keep = shapely.contains_xy(aoi, cand["x"].to_numpy(), cand["y"].to_numpy())
    keep &= ~_hits(boxes, buildings, 0.2)
    on_road = cand["context"].isin(["lane", "queue"]).to_numpy()
    if len(carriageways):
        road = shapely.union_all(carriageways)
        shapely.prepare(road)
        keep &= np.where(on_road, shapely.contains(shapely.buffer(road, 0.3), boxes), ~_hits(boxes, carriageways, 0.05))
    if len(kerbs):
        kerb = shapely.buffer(shapely.union_all(kerbs), 0.3)
        shapely.prepare(kerb)
        is_kerb = (cand["context"] == "kerb").to_numpy()
        keep &= ~is_kerb | shapely.contains(kerb, boxes)
    cand, boxes = cand[keep].reset_index(drop=True), boxes[keep]
    keep = _no_overlaps(boxes, cand["context"].map(CONTEXT_RANK).to_numpy())
    cand, boxes = cand[keep].reset_index(drop=True), boxes[keep]
    bays = bays[~_hits(bays, buildings, 0.1)] if len(bays) else bays
    return _finish(cand, boxes, seed, crs), bays


def _lane_vehicles(segments: gpd.GeoDataFrame, rng: np.random.Generator, factor: float) -> pd.DataFrame:
    """Moving and queued vehicles along every lane of every way, right-hand traffic."""
    segments = segments.reset_index(drop=True)
    xy = shapely.get_coordinates(segments.geometry.values).reshape(-1, 2, 2)
    ends = np.round(np.concatenate([xy[:, 0], xy[:, 1]]) * 2) / 2
    _, inv, counts = np.unique(ends, axis=0, return_inverse=True, return_counts=True)
    degree = counts[inv.ravel()][: len(xy)]  # at each segment's start node
    degree_end = counts[inv.ravel()][len(xy):]

    highway = segments["highway"].astype(str).to_numpy()
    lanes = segments["lanes"].to_numpy(dtype=int)
    oneway = segments["oneway"].to_numpy(dtype=bool)
    maxspeed = segments["maxspeed_kmh"].to_numpy(dtype=float)
    rows = []
    runs = segment_runs(xy, segments["road_id"].to_numpy())
    for run in np.split(np.arange(len(xy)), np.flatnonzero(np.diff(runs)) + 1):
        pts = np.vstack([xy[run, 0], xy[run[-1], 1]])
        seg_len = np.hypot(*np.diff(pts, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg_len)])
        total = cum[-1]
        node_degree = np.concatenate([degree[run], [degree_end[run[-1]]]])
        junctions = cum[node_degree >= 3]
        i = run[0]
        n = lanes[i]
        offsets = (np.arange(n) + 0.5 - n / 2.0) * LANE_WIDTH_M
        if oneway[i]:
            directions = np.ones(n, dtype=int)
        elif n == 1:
            directions = np.array([1 if rng.random() < 0.5 else -1])
        else:
            forward = math.ceil(n / 2)
            directions = np.where(np.arange(n) >= n - forward, 1, -1)
        density = LANE_DENSITY.get(highway[i], 6.0) * factor / 1000.0
        p_queue = QUEUE_PROBABILITY.get(highway[i], 0.12)
        for off, direction in zip(offsets, directions, strict=True):
            stops = np.sort(junctions if direction > 0 else total - junctions)
            stops = stops[(stops > 8.0) & (rng.random(len(stops)) < p_queue)]
            for t, veh_len, veh_w, large, speed in _lane_positions(rng, total, density, maxspeed[i], stops):
                s = t if direction > 0 else total - t
                k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg_len) - 1))
                d = (pts[k + 1] - pts[k]) / seg_len[k]
                centre = pts[k] + d * (s - cum[k]) + np.array([d[1], -d[0]]) * off
                heading = float(vector_to_compass(*(d * direction)))
                rows.append((centre[0], centre[1], heading, veh_len, veh_w, large, speed,
                             "queue" if speed == 0 else "lane"))
    return _frame(rows)


def _lane_positions(rng: np.random.Generator, length: float, density: float, maxspeed: float,
                    stops: np.ndarray) -> list[tuple[float, float, float, bool, float]]:
    """(centre along the lane in travel direction, length, width, large, speed km/h) of each vehicle.

    A queue builds back from ``STOP_BACK_M`` before each of ``stops``; moving
    vehicles fill the rest at ``density`` per metre with a speed-dependent gap.
    """
    out = []
    taken: list[tuple[float, float]] = []
    for stop_at in stops:
        front = stop_at - STOP_BACK_M
        for _ in range(1 + rng.poisson(1.8)):
            veh_len, veh_w, large = _vehicle_size(rng)
            if front - veh_len < 1.0 or any(lo < front and front - veh_len < hi for lo, hi in taken):
                break
            out.append((front - veh_len / 2.0, veh_len, veh_w, large, 0.0))
            taken.append((front - veh_len, front))
            front -= veh_len + rng.uniform(1.0, 2.5)
    for s in np.sort(rng.uniform(0.0, length, rng.poisson(density * length))):
        veh_len, veh_w, large = _vehicle_size(rng)
        speed = maxspeed * float(np.clip(rng.normal(0.9, 0.13), 0.45, 1.25)) * (0.9 if large else 1.0)
        gap = 2.0 + speed / 3.6 * 0.8
        lo, hi = s - veh_len / 2.0, s + veh_len / 2.0
        if lo < 0.5 or hi > length - 0.5 or any(a - gap < hi and lo < b + gap for a, b in taken):
            continue
        out.append((s, veh_len, veh_w, large, round(speed, 1)))
        taken.append((lo, hi))
    return out


def _vehicle_size(rng: np.random.Generator, large_share: float = LARGE_SHARE) -> tuple[float, float, bool]:
    if rng.random() < large_share:
        return round(rng.uniform(8.0, 12.0), 2), 2.5, True
    return round(rng.uniform(4.0, 5.0), 2), round(rng.uniform(1.7, 1.9), 2), False


def _kerb_vehicles(segments: gpd.GeoDataFrame, rng: np.random.Generator, parking: ParkingRules) -> pd.DataFrame:
    if segments.empty:
        return _frame([])
    xy = shapely.get_coordinates(segments.geometry.values).reshape(-1, 2, 2)
    rows = []
    lanes = segments["lanes"].to_numpy(dtype=int)
    oneway = segments["oneway"].to_numpy(dtype=bool)
    for i in range(len(segments)):
        a, b = xy[i]
        length = float(np.hypot(*(b - a)))
        d = (b - a) / length
        right = np.array([d[1], -d[0]])
        offset = lanes[i] * LANE_WIDTH_M / 2.0 + KERB_STRIP_WIDTH_M / 2.0
        for side in (1, -1):
            facing = d if (side > 0 or oneway[i]) else -d
            heading = float(vector_to_compass(*facing))
            s = rng.uniform(0.2, 4.0)
            while True:
                veh_len, veh_w, large = _vehicle_size(rng, 0.01)
                if s + veh_len > length - 0.2:
                    break
                if rng.random() < parking.kerb_fill:
                    centre = a + d * (s + veh_len / 2.0) + right * side * offset
                    rows.append((centre[0], centre[1], heading + rng.normal(0, 1.0), veh_len, veh_w,
                                 large, 0.0, "kerb"))
                    s += veh_len + rng.uniform(*parking.kerb_gap_m)
                else:
                    s += rng.uniform(4.0, 8.0)
    return _frame(rows)


def _car_park_vehicles(
    parks: np.ndarray, rng: np.random.Generator, parking: ParkingRules
) -> tuple[pd.DataFrame, np.ndarray]:
    """Cars in rows of bays across each car park; also returns every bay (taken or not)."""
    rows, bays = [], []
    for park in parks:
        if park.area < 40.0:
            continue
        rect = shapely.minimum_rotated_rectangle(park)
        c = np.asarray(rect.exterior.coords)[:4]
        e = [c[1] - c[0], c[2] - c[1]]
        axis = e[0] if np.hypot(*e[0]) >= np.hypot(*e[1]) else e[1]
        u_dir = axis / np.hypot(*axis)
        v_dir = np.array([-u_dir[1], u_dir[0]])
        pts = np.asarray(park.exterior.coords)
        origin = pts.mean(axis=0)
        u, v = (pts - origin) @ u_dir, (pts - origin) @ v_dir
        row_v, facing = _row_offsets(v.min(), v.max())
        if not row_v:
            continue
        u_centres = np.arange(u.min() + 0.3 + BAY_WIDTH_M / 2, u.max() - BAY_WIDTH_M / 2, BAY_WIDTH_M)
        if len(u_centres) == 0:
            continue
        uu, vv = np.meshgrid(u_centres, row_v)
        ff = np.broadcast_to(np.asarray(facing)[:, None], uu.shape)
        cx = origin[0] + uu.ravel() * u_dir[0] + vv.ravel() * v_dir[0]
        cy = origin[1] + uu.ravel() * u_dir[1] + vv.ravel() * v_dir[1]
        bay_heading = float(vector_to_compass(*v_dir))
        boxes = oriented_boxes(cx, cy, np.full(len(cx), bay_heading), BAY_DEPTH_M, BAY_WIDTH_M)
        inside = shapely.contains(shapely.buffer(park, 0.3), boxes)
        bays.append(boxes[inside])
        for x, y, f in zip(cx[inside], cy[inside], ff.ravel()[inside], strict=True):
            if rng.random() > parking.car_park_occupancy:
                continue
            veh_len, veh_w, _ = _vehicle_size(rng, 0.0)
            nose_in = rng.random() < 0.75
            heading = bay_heading + (0.0 if (f > 0) == nose_in else 180.0) + rng.normal(0, 2.0)
            jitter = rng.normal(0, 0.12, 2)
            rows.append((x + jitter[0], y + jitter[1], heading, veh_len, veh_w, False, 0.0, "car_park"))
    all_bays = np.concatenate(bays) if bays else np.empty(0, dtype=object)
    return _frame(rows), all_bays


def _row_offsets(v_min: float, v_max: float) -> tuple[list[float], list[int]]:
    """Cross-axis centres of bay rows and which way each row's back wall lies (+1/-1).

    Pattern from one edge: a single row, an aisle, then double rows between aisles.
    """
    width = v_max - v_min
    half = BAY_DEPTH_M / 2.0
    centres, facing = [], []
    if width < BAY_DEPTH_M + 0.4:
        return centres, facing
    v = v_min + 0.2 + half
    centres.append(v)
    facing.append(-1)
    v += half + AISLE_M
    while v + BAY_DEPTH_M <= v_max - 0.2:
        centres.append(v + half)
        facing.append(1)
        v += BAY_DEPTH_M
        if v + BAY_DEPTH_M <= v_max - 0.2:
            centres.append(v + half)
            facing.append(-1)
            v += BAY_DEPTH_M + AISLE_M
        else:
            break
    return centres, facing


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["x", "y", "heading_deg", "length_m", "width_m", "large",
                                       "speed_kmh", "context"])


def _boxes(cand: pd.DataFrame) -> np.ndarray:
    return oriented_boxes(cand["x"].to_numpy(), cand["y"].to_numpy(), cand["heading_deg"].to_numpy(),
                     cand["length_m"].to_numpy(), cand["width_m"].to_numpy())


def _hits(boxes: np.ndarray, others: np.ndarray, margin: float) -> np.ndarray:
    """True for each box within ``margin`` of any of ``others``."""
    hit = np.zeros(len(boxes), dtype=bool)
    if len(others) and len(boxes):
        idx, _ = shapely.STRtree(others).query(boxes, predicate="dwithin", distance=margin)
        hit[idx] = True
    return hit


def _no_overlaps(boxes: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Greedy: keep vehicles in rank order, dropping any that touches one already kept."""
    order = np.lexsort((np.arange(len(boxes)), rank))
    a, b = shapely.STRtree(boxes).query(boxes, predicate="dwithin", distance=0.3)
    pairs = a != b
    neighbours = pd.Series(b[pairs]).groupby(a[pairs]).apply(list).to_dict()
    keep = np.ones(len(boxes), dtype=bool)
    for i in order:
        if keep[i]:
            for j in neighbours.get(i, ()):
                if (rank[j], j) > (rank[i], i):
                    keep[j] = False
    return keep


def _finish(cand: pd.DataFrame, boxes: np.ndarray, seed: int, crs: object) -> gpd.GeoDataFrame:
    rng = stream(seed, "vehicle-colours")
    n = len(cand)
    large = cand["large"].to_numpy(dtype=bool)
    colour = rng.choice(len(materials.VEHICLE_COLOURS), size=n, p=materials.VEHICLE_COLOUR_WEIGHTS)
    colour = np.where(large & (rng.random(n) < 0.5), 0, colour)  # many buses and vans are white
    speed = cand["speed_kmh"].to_numpy(dtype=float)
    heading = np.mod(cand["heading_deg"].to_numpy(dtype=float), 360.0)
    v = speed / 3.6
    h = np.radians(heading)
    context = cand["context"].to_numpy()
    return gpd.GeoDataFrame(
        {
            "vehicle_id": np.arange(n, dtype="int64"),
            "class": np.where(large, "large", "car"),
            "on_road": np.isin(context, ["lane", "queue"]),
            "moving": speed > 0,
            "speed_kmh": speed,
            "heading_deg": np.round(heading, 2),
            "context": context.astype(str),
            "length_m": cand["length_m"].to_numpy(dtype=float),
            "width_m": cand["width_m"].to_numpy(dtype=float),
            "vx": v * np.sin(h),
            "vy": v * np.cos(h),
            "height_m": np.where(large, materials.VEHICLE_HEIGHT_M["large"], materials.VEHICLE_HEIGHT_M["car"]),
            "colour": colour.astype("int64"),
        },
        geometry=boxes, crs=crs,
    )


def _empty(crs: object) -> gpd.GeoDataFrame:
    return _finish(_frame([]), np.empty(0, dtype=object), 0, crs)
