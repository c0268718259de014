"""Moving large vehicles (trucks) in Sentinel-2 L2A from the inter-band "rainbow".

After Fisser et al. (2022), *Detecting Moving Trucks on Roads Using Sentinel-2
Data*, Remote Sensing 14(7):1595. The MSI senses B02 (blue) first, then B08
(+0.263 s), B03 (+0.527 s) and B04 (+1.005 s); a truck moving at ``v`` is seen
by each band ``v * t_band`` further along, so a bright truck on dark asphalt
leaves a blue copy behind, a green one in the middle and a red one in front.

Method, in the order of Fisser et al. (pixel classes, then objects):

1. **Features** (:func:`input_features`): each band's anomaly against the
   median of the road pixels around it (the asphalt, not the roofs beside it),
   the pixel's colour (each visible band over their mean), brightness, NDVI and
   the road mask.
2. **Pixels** (:class:`TruckNet`: five 3x3 convolutions, about 60k weights,
   trained on the project's own renders by ``scripts/train_s2_trucks.py`` and
   shipped as safetensors in ``models/s2-trucks/``): for every pixel, the
   fraction covered by a moving truck (the mean of its blue, green and red
   copies: Fisser's blue/green/red pixel classes made soft) and, where a truck
   is, its B02 -> B04 and B02 -> B03 displacements in pixels. Fisser et al.
   used a random forest on band ratios for the classes; a small network reads
   the same bands but sees the neighbourhood, which the sub-pixel rainbows of
   slow city trucks need.
3. **Objects** (:func:`extract_objects`): local maxima of the coverage on the
   road; the object is the surrounding pixels covered at least a third as much,
   its displacement their coverage-weighted mean. It must be truck-sized
   (covered area) and move (displacement), and its copies must lie in the
   blue -> green -> red order along that displacement, *measured in the image*
   (:func:`band_order_z`): green-minus-blue and red-minus-green anomalies must
   not form dipoles pointing backwards (a copy out of place is rejected).
   A network with a centre head (``TruckNet(centre=True)``, from 1.1.0)
   also gives a heatmap peaked at each truck's centre (CenterNet-style);
   objects then start at its peaks and score their heat, which keeps two
   trucks a couple of pixels apart as two where their coverage merges.
4. **Speed and heading**: the B02 -> B04 displacement ``d`` over the scene's
   ``t_B04 - t_B02`` (its band time offsets); heading is the direction of ``d``
   (compass degrees, direction of travel). The point is the truck at B04 time:
   the coverage centroid (the copies' mean time) moved on along ``d``.
5. **Score**: the peak coverage (about 0.25 for a 10 m truck inside one pixel), or
   the centre heatmap's peak (0 to 1) for a network with a centre head.

Measured (``scripts/score_s2_trucks.py``, renders of unseen seeds): see the
model card ``models/s2-trucks/1.1.0/MODEL_CARD.md`` and ``metrics.json``.

Reported as relative traffic (moving trucks per km of road or per cell,
:func:`traffic_per_km`), never as a count of cars: cars are too small for the
10 m bands, and dark trucks leave almost no signature.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import torch
from affine import Affine
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from torch import nn

from baseline.core.geo import vector_to_compass
from baseline.preprocess.sentinel2 import WINDOW_PX, plan_windows, window_reflectance

if TYPE_CHECKING:
    from baseline.core.scene import Scene

BANDS = ("blue", "green", "red", "nir")
"""Band order of ``reflectance`` (Sentinel-2 B02, B03, B04, B08)."""
S2_NAMES = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
DEFAULT_OFFSETS_S = {"blue": -1.005, "green": -0.478, "red": 0.0, "nir": -0.742}
"""Sentinel-2 MSI band timing (B04 = 0), used where a scene does not carry its own."""
OUTPUTS = ("coverage_logit", "d_red_row", "d_red_col", "d_green_row", "d_green_col")
"""The network's output channels: the logit of the truck's coverage (mean of its B02-, B03- and
B04-time copies) and, where a truck is, its B02 -> B04 and B02 -> B03 displacement in pixels
(rows down, columns right)."""
CENTRE_OUTPUT = "centre_logit"
"""The optional seventh output (after the auxiliary moving-car logit): a heatmap peaked at each truck's
centre at the copies' mean time; a card lists it in ``architecture.outputs`` when the network has it."""
CENTRE_CHANNEL = len(OUTPUTS) + 1
"""Index of the centre heatmap among a network's outputs (and among the training targets)."""
COLUMNS = ["score", "speed_kmh", "heading_deg", "length_m", "displacement_px", "order_z"]
MODEL_NAME, MODEL_VERSION = "s2-trucks", "1.1.0"
N_FEATURES = 10
WIDTH_M = 2.5
"""Width assumed for a truck when its length is read from the covered area."""


@dataclass(frozen=True)
class TruckParams:
    """Settings of :func:`detect_moving_trucks`.

    ``min_score`` and ``min_area_px`` are the best mean F1 of city renders (seeds 7, 101-105) and
    corridor renders (seeds 8000-8009) on a grid (``scripts/score_s2_trucks.py --grid``); no
    scored seed was used. A model card's ``detection`` block replaces them for that model
    (:func:`model_params`), since thresholds are tuned per network.

    Attributes:
        background_px: side of the window whose road-pixel median is each band's background.
        min_score: smallest peak coverage (0 to 1) that starts an object.
        min_area_px: smallest covered area of an object (pixels; a 10 x 2.5 m truck covers 0.25,
            a car about 0.08): the size test that keeps most cars out.
        window_px: side of the window an object is measured in.
        min_displacement_px: smallest B02 -> B04 shift (pixels) that is motion.
        max_reversed_z: an object whose measured band order (:func:`band_order_z`) is reversed by
            more than this many noise sd is not a rainbow.
        road_buffer_m: with a road mask, how far from a carriageway a detection may lie.
        nms_m: detections closer than this keep only the best.
    """

    background_px: int = 7
    min_score: float = 0.08
    min_area_px: float = 0.20
    window_px: int = 5
    min_displacement_px: float = 0.2
    max_reversed_z: float = 2.0
    road_buffer_m: float = 10.0
    nms_m: float = 15.0


# --- features -------------------------------------------------------------------------------------


def masked_median(image: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Median of the ``mask`` pixels in a ``size`` x ``size`` window around each pixel (NaN where none)."""
    pad = size // 2
    x = np.pad(np.where(mask, image, np.nan).astype(np.float32), pad, constant_values=np.nan)
    out = np.empty(image.shape, dtype=np.float32)
    rows_per = max(1, 4_000_000 // max(1, image.shape[1] * size * size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for r0 in range(0, image.shape[0], rows_per):
            r1 = min(image.shape[0], r0 + rows_per)
            win = sliding_window_view(x[r0 : r1 + 2 * pad], (size, size))
            out[r0:r1] = np.nanmedian(win.reshape(r1 - r0, image.shape[1], -1), axis=-1)
    return out


def input_features(reflectance: np.ndarray, valid: np.ndarray, road_mask: np.ndarray | None = None,
                   background_px: int = 7) -> np.ndarray:
    """The network's ``(10, y, x)`` input from ``(4, y, x)`` reflectance (blue, green, red, nir).

    Channels: four band anomalies against the road median (x20), the three
    visible bands' colour (each over their mean, minus 1, x5), brightness
    (mean visible reflectance minus 0.1, x10), NDVI, and the road mask (1
    everywhere when there is none). All are 0 outside ``valid``.
    """
    refl = np.nan_to_num(np.asarray(reflectance, dtype=np.float32)[:4], nan=0.0)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(np.asarray(reflectance)[:4]).all(axis=0)
    road = np.ones(valid.shape, dtype=bool) if road_mask is None else np.asarray(road_mask, dtype=bool)
    domain = valid & road
    if domain.sum() < 10:
        domain = valid
    feats = np.zeros((N_FEATURES, *valid.shape), dtype=np.float32)
    for b in range(4):
        feats[b] = 20.0 * (refl[b] - masked_median(refl[b], domain, background_px))
    bright = refl[:3].mean(axis=0)
    for b in range(3):
        feats[4 + b] = 5.0 * (refl[b] / np.maximum(bright, 0.01) - 1.0)
    feats[7] = 10.0 * (bright - 0.1)
    feats[8] = (refl[3] - refl[2]) / np.maximum(refl[3] + refl[2], 0.01)
    feats[9] = road
    feats[:, ~valid] = 0.0
    return np.clip(np.nan_to_num(feats, nan=0.0), -10.0, 10.0)


# --- the pixel classifier -------------------------------------------------------------------------


class TruckNet(nn.Module):
    """3x3 convolutions with the given dilations (receptive field ``1 + 2 * sum(dilations)`` pixels),
    ReLU, and a 1x1 head: truck coverage logit, two displacements, and a moving-car coverage logit
    (an auxiliary task that makes the truck channel tell trucks from cars; not used downstream).

    With ``centre``, a seventh output is the logit of a heatmap peaked at each truck's centre
    (CenterNet-style, :data:`CENTRE_OUTPUT`): objects then start at its peaks, which keeps two
    trucks a couple of pixels apart as two where their coverage merges into one blob.
    """

    def __init__(self, width: int = 40, dilations: tuple[int, ...] = (1, 1, 2, 2, 1), centre: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = N_FEATURES
        for d in dilations:
            layers += [nn.Conv2d(channels, width, 3, padding=d, dilation=d), nn.ReLU()]
            channels = width
        layers.append(nn.Conv2d(width, CENTRE_CHANNEL + int(centre), 1))
        self.body = nn.Sequential(*layers)
        self.centre = centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def default_model_dir() -> Path:
    """``models/s2-trucks/<version>`` under the project's models folder."""
    from baseline.detect.weights import default_models_dir

    return default_models_dir() / MODEL_NAME / MODEL_VERSION


@lru_cache(maxsize=4)
def load_truck_net(folder: str | None = None) -> TruckNet:
    """The shipped network in eval mode (safetensors only; the card gives its width)."""
    from safetensors.torch import load_file

    path = Path(folder) if folder else default_model_dir()
    card = json.loads((path / "card.json").read_text())
    arch = card["architecture"]
    net = TruckNet(int(arch["width"]), tuple(int(d) for d in arch["dilations"]),
                   centre=CENTRE_OUTPUT in arch.get("outputs", []))
    net.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    return net.eval()


@lru_cache(maxsize=4)
def model_params(folder: str | None = None) -> TruckParams:
    """The detection thresholds tuned for the model in ``folder`` (default: the shipped one).

    A card's optional ``detection`` block (e.g. ``{"min_score": 0.08, "min_area_px": 0.2}``)
    overrides :class:`TruckParams`' defaults: thresholds belong to the network they were tuned on.
    """
    from dataclasses import fields

    from baseline.errors import ModelError

    path = Path(folder) if folder else default_model_dir()
    detection = json.loads((path / "card.json").read_text()).get("detection", {})
    unknown = sorted(set(detection) - {f.name for f in fields(TruckParams)})
    if unknown:
        raise ModelError(f"{path / 'card.json'}: unknown detection setting(s) {', '.join(unknown)}",
                         hint=f"use only {', '.join(f.name for f in fields(TruckParams))}")
    return replace(TruckParams(), **detection)


def model_entry(folder: str | None = None) -> dict[str, object]:
    """The network's manifest entry: name, version, task, the scores in its ``metrics.json`` (pooled over
    the corridor renders of ``scripts/score_s2_trucks.py``) and the weights' sha256."""
    from baseline.core.hashing import sha256_file

    path = Path(folder) if folder else default_model_dir()
    card = json.loads((path / "card.json").read_text())
    metrics_path = path / "metrics.json"
    pooled = {}
    if metrics_path.is_file():
        pooled = json.loads(metrics_path.read_text()).get("corridor", {}).get("all", {})
    return {
        "name": card["name"], "version": card["version"], "task": card["task"],
        "precision": pooled.get("precision"), "recall": pooled.get("recall"), "f1": pooled.get("f1"),
        "weights_sha256": sha256_file(path / "model.safetensors"),
    }


def truck_maps(features: np.ndarray, net: TruckNet | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Coverage ``(y, x)`` (0 to 1), displacements ``(4, y, x)`` (B02 -> B04 then B02 -> B03, (row, col)
    px) and, for a network with a centre head, the centre heatmap ``(y, x)`` (0 to 1; else None)."""
    net = net or load_truck_net()
    with torch.inference_mode():
        raw = net(torch.from_numpy(np.ascontiguousarray(features))[None])[0]
    centre = torch.sigmoid(raw[CENTRE_CHANNEL]).numpy() if net.centre else None
    return torch.sigmoid(raw[0]).numpy(), raw[1:5].numpy(), centre


# --- objects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruckObject:
    """One rainbow in pixel coordinates (fractional, 0 = top-left edge)."""

    row: float            # the truck at B04 time
    col: float
    d_row: float          # B02 -> B04 displacement, pixels
    d_col: float
    order_z: float        # measured band order along d: the weaker of green-after-blue and red-after-green
    score: float
    area_px: float        # covered area (one copy), pixels


def extract_objects(cover: np.ndarray, disp: np.ndarray, anom: np.ndarray, noise: np.ndarray, allowed: np.ndarray,
                    red_fraction: float, params: TruckParams, centre: np.ndarray | None = None) -> list[TruckObject]:
    """Rainbows: peaks of the coverage (or of the centre heatmap), kept when truck-sized and moving
    with their bands in order.

    Without a centre heatmap, the pixels around each coverage peak covered at least a third as
    much as the peak are the object; its position is their coverage-weighted centroid (the truck
    at the mean band time) and its score the peak coverage. With one (:class:`TruckNet` with
    ``centre``), objects start at the heatmap's 3x3 peaks, the score is the peak's heat and the
    position the peak refined to sub-pixel by a Gaussian fit of its row and column neighbours:
    two trucks whose coverage merges into one blob keep two peaks. Either way the position is
    moved on by ``red_fraction`` of the displacement to B04 time, the displacement is the
    coverage-weighted mean of the per-pixel ones (over the 3x3 around a centre peak, so that a
    neighbour's pixels weigh little), and the band order is *measured* in the image
    (:func:`band_order_z`), not taken from the network.
    """
    peak_map = cover if centre is None else centre
    peaks = (peak_map == ndimage.maximum_filter(peak_map, size=3)) & (peak_map >= params.min_score) & allowed
    r = params.window_px // 2
    h, w = cover.shape
    out = []
    for row, col in np.argwhere(peaks):
        r0, r1, c0, c1 = max(row - r, 0), min(row + r + 1, h), max(col - r, 0), min(col + r + 1, w)
        win = cover[r0:r1, c0:c1]
        rr, cc = np.mgrid[r0:r1, c0:c1] + 0.5
        area = float(win[win >= 0.05].sum())
        if centre is None:
            wts = np.where(win >= cover[row, col] / 3.0, win, 0.0)
            cy, cx = float((wts * rr).sum() / wts.sum()), float((wts * cc).sum() / wts.sum())
        else:
            near = (np.abs(rr - 0.5 - row) <= 1) & (np.abs(cc - 0.5 - col) <= 1)
            wts = np.where(near, np.maximum(win, 1e-6), 0.0)
            cy = row + 0.5 + _gaussian_peak_offset(centre, row, col, axis=0)
            cx = col + 0.5 + _gaussian_peak_offset(centre, row, col, axis=1)
        d = (disp[:2, r0:r1, c0:c1] * wts).sum(axis=(1, 2)) / float(wts.sum())
        if float(np.hypot(*d)) < params.min_displacement_px or area < params.min_area_px:
            continue
        support = win >= 0.02
        order = band_order_z(anom[:, r0:r1, c0:c1], noise, support, rr - cy, cc - cx, d)
        if order < -params.max_reversed_z:
            continue
        out.append(TruckObject(row=cy + red_fraction * d[0], col=cx + red_fraction * d[1], d_row=float(d[0]),
                               d_col=float(d[1]), order_z=order, score=float(peak_map[row, col]), area_px=area))
    return out


def _gaussian_peak_offset(heat: np.ndarray, row: int, col: int, axis: int) -> float:
    """Sub-pixel offset (within +-0.5 px) of a heatmap peak along ``axis``: the vertex of the parabola
    through the logs of the peak and its two neighbours (exact for a Gaussian); 0 at the image edge."""
    line, at = (heat[:, col], row) if axis == 0 else (heat[row, :], col)
    if at == 0 or at == len(line) - 1:
        return 0.0
    lo, mid, hi = np.log(np.maximum(line[at - 1 : at + 2].astype(np.float64), 1e-6))
    curvature = lo - 2.0 * mid + hi
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (lo - hi) / curvature, -0.5, 0.5))


def band_order_z(anom: np.ndarray, noise: np.ndarray, support: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                 d: np.ndarray) -> float:
    """How surely the blue, green and red copies lie in that order along ``d``, in noise units.

    For each band pair (blue -> green, green -> red) the later band's anomaly minus the earlier
    one's is a dipole along the direction of travel when the truck moves that way: positive
    ahead, negative behind. Its first moment along ``d`` over the object's pixels, divided by
    its noise (``noise`` is the clutter sd of that difference), is a z-score; the weaker of the
    two is returned. A copy out of order (green behind blue, or ahead of red) gives a clearly
    negative value; sub-pixel city rainbows give values near 0 to a few.
    """
    u = d / max(float(np.hypot(*d)), 1e-9)
    along = np.where(support, dy * u[0] + dx * u[1], 0.0)
    norm = float(np.sqrt((along**2).sum()))
    if norm <= 0:
        return 0.0
    z = []
    for k, (early, late) in enumerate(((0, 1), (1, 2))):
        moment = float((along * (anom[late] - anom[early])).sum())
        z.append(moment / (noise[k] * norm))
    return min(z)


def chroma_noise(anom: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Robust sd (MAD) of green-minus-blue and red-minus-green anomalies over ``domain``."""
    out = []
    for early, late in ((0, 1), (1, 2)):
        x = (anom[late] - anom[early])[domain]
        out.append(1.4826 * float(np.median(np.abs(x - np.median(x)))) if x.size else 1.0)
    return np.maximum(np.array(out), 1e-4)


# --- the detector ---------------------------------------------------------------------------------


def _offsets_by_band(band_time_offsets_s: dict[str, float] | None) -> dict[str, float]:
    """Band time offsets keyed by common name, defaulting to the MSI's nominal timing."""
    out = dict(DEFAULT_OFFSETS_S)
    for key, value in (band_time_offsets_s or {}).items():
        name = S2_NAMES.get(key, key)
        if name in out:
            out[name] = float(value)
    return out


def empty_table(crs: object = None) -> gpd.GeoDataFrame:
    """A detections table with no rows and the right columns."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def detect_moving_trucks(
    reflectance: np.ndarray,
    valid: np.ndarray,
    transform: Affine,
    band_time_offsets_s: dict[str, float] | None = None,
    *,
    road_mask: np.ndarray | None = None,
    crs: object = None,
    params: TruckParams | None = None,
    net: TruckNet | None = None,
) -> gpd.GeoDataFrame:
    """Moving trucks as points (at B04 time) with ``score``, ``speed_kmh``, ``heading_deg``, ``length_m``.

    Args:
        reflectance: ``(4, y, x)`` float reflectance (0 to 1) in the order blue, green, red, nir.
        valid: ``(y, x)`` True where the pixels are usable (in-image, not cloud).
        transform: the pixel grid's affine transform (north-up).
        band_time_offsets_s: seconds at which each band was sensed, keyed ``blue``.. or ``B02``..;
            missing bands take the MSI's nominal timing (:data:`DEFAULT_OFFSETS_S`).
        road_mask: optional ``(y, x)`` True on carriageways (e.g. rasterised OSM): the background
            is taken from road pixels and detections must lie within ``params.road_buffer_m``.
        crs: the grid's CRS, stamped on the table.
        params: thresholds (:class:`TruckParams`); None takes the shipped model's (:func:`model_params`).
        net: a network to use instead of the shipped one.

    Returns:
        One row per moving truck; empty (same columns) when there are none.
    """
    params = params if params is not None else model_params()
    refl = np.asarray(reflectance, dtype=np.float32)
    if refl.ndim != 3 or refl.shape[0] < 4:
        raise ValueError(f"reflectance must be (4, y, x) blue, green, red, nir; got shape {refl.shape}")
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        return empty_table(crs)
    t = _offsets_by_band(band_time_offsets_s)
    span = t["red"] - t["blue"]
    if span <= 0:
        raise ValueError(f"B04 must be sensed after B02 (offsets {t}); the rainbow needs the band timing")
    gsd = math.sqrt(abs(transform.a * transform.e - transform.b * transform.d))
    features = input_features(refl, valid, road_mask, params.background_px)
    cover, disp, centre = truck_maps(features, net)
    anom = features[:3] / 20.0  # the blue, green and red anomalies against the road median
    domain = valid if road_mask is None else valid & np.asarray(road_mask, dtype=bool)
    noise = chroma_noise(anom, domain if domain.sum() >= 10 else valid)
    allowed = valid.copy()
    if road_mask is not None:
        reach = max(0, int(round(params.road_buffer_m / gsd)))
        road = np.asarray(road_mask, dtype=bool)
        allowed &= ndimage.binary_dilation(road, iterations=reach) if reach else road
    t_mid = (t["blue"] + t["green"] + t["red"]) / 3.0  # the coverage is the copies' mean: the truck then
    objects = extract_objects(cover, disp, anom, noise, allowed, (t["red"] - t_mid) / span, params, centre)
    return _table(objects, transform, gsd, span, crs, params.nms_m)


def _table(objects: list[TruckObject], transform: Affine, gsd: float, span_s: float, crs: object,
           nms_m: float) -> gpd.GeoDataFrame:
    """Detections in map coordinates, best first, with near-duplicates removed."""
    if not objects:
        return empty_table(crs)
    rows = np.array([o.row for o in objects])
    cols = np.array([o.col for o in objects])
    x, y = transform * (cols, rows)
    # displacement in map metres: columns along the transform's x axis, rows along its y axis
    de = transform.a * np.array([o.d_col for o in objects]) + transform.b * np.array([o.d_row for o in objects])
    dn = transform.d * np.array([o.d_col for o in objects]) + transform.e * np.array([o.d_row for o in objects])
    dist_m = np.hypot(de, dn)
    table = gpd.GeoDataFrame(
        {
            "score": [o.score for o in objects],
            "speed_kmh": dist_m / span_s * 3.6,
            "heading_deg": vector_to_compass(de, dn),
            "length_m": np.array([o.area_px for o in objects]) * gsd * gsd / WIDTH_M,
            "displacement_px": np.hypot([o.d_row for o in objects], [o.d_col for o in objects]),
            "order_z": [o.order_z for o in objects],
        },
        geometry=gpd.points_from_xy(x, y), crs=crs,
    )
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return table[_nms(table.geometry.values, nms_m)].reset_index(drop=True)


def _nms(points: np.ndarray, radius: float) -> np.ndarray:
    """Keep each point unless a better (earlier) kept point lies within ``radius``."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) < 2 or radius <= 0:
        return keep
    tree = shapely.STRtree(points)
    for i in range(len(points)):
        if not keep[i]:
            continue
        near = tree.query(points[i], predicate="dwithin", distance=radius)
        keep[near[near > i]] = False
    return keep


def rasterize_roads(carriageways: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray, transform: Affine,
                    shape: tuple[int, int]) -> np.ndarray:
    """Boolean road mask: every pixel that a carriageway polygon touches."""
    from rasterio.features import rasterize

    geoms = carriageways.geometry.values if hasattr(carriageways, "geometry") else np.asarray(carriageways)
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(shape, dtype=bool)
    return rasterize(((g, 1) for g in geoms), out_shape=shape, transform=transform, fill=0,
                     all_touched=True, dtype="uint8").astype(bool)


HALO_PX = 16
"""Halo of a window (pixels): the road median (7 px), the network (5 convolutions), the object window
(5 px) and the road buffer all reach under 16 px, so a core's detections do not depend on the cut."""


def trucks_table(scene: Scene, road_mask: np.ndarray | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                 params: TruckParams | None = None,
                 pixels: tuple[np.ndarray, np.ndarray] | None = None,
                 window_px: int = WINDOW_PX, net: TruckNet | None = None) -> gpd.GeoDataFrame:
    """Moving trucks of one Sentinel-2 Scene (what the pipeline calls).

    ``road_mask`` is a boolean raster on the scene's grid, carriageway polygons in the
    scene's CRS (rasterised per window here), or None (no map: the whole image is searched).
    The scene is read window by window (cores of ``window_px`` with a :data:`HALO_PX` halo),
    so memory does not grow with the scene; each window keeps the trucks in its core, and
    near-duplicates across cores are removed as within one window. The band-difference
    noise that scales the band-order test is measured per window (its own roads and light).
    ``pixels`` is the whole scene's :func:`scene_reflectance` when the caller already holds it
    (then it is used as one window). ``net`` replaces the shipped network (e.g. one being scored).
    Adds ``scene_id``; speeds use the scene's own band time offsets.
    """
    params = params if params is not None else model_params()
    polygons = road_mask is not None and not isinstance(road_mask, np.ndarray)
    if polygons and road_mask.crs is not None:
        road_mask = road_mask.to_crs(scene.crs)
    if pixels is not None:
        windows, reads = [None], [pixels]
    else:
        windows = plan_windows(scene.shape, HALO_PX, window_px)
        reads = (window_reflectance(scene, w) for w in windows)
    parts = []
    for window, (refl, valid) in zip(windows, reads, strict=False):
        transform = scene.transform if window is None else window.transform(scene.transform)
        road = road_mask
        if polygons:
            road = rasterize_roads(road_mask, transform, valid.shape)
        elif road is not None and window is not None:
            r0, r1, c0, c1 = window.read
            road = road[r0:r1, c0:c1]
        table = detect_moving_trucks(refl, valid, transform, scene.band_time_offsets_s, road_mask=road,
                                     crs=scene.crs, params=params, net=net)
        if window is not None and len(table):
            cols, rows = ~scene.transform * (shapely.get_x(table.geometry.values), shapely.get_y(table.geometry.values))
            table = table[in_core(rows, cols, window.core, scene.shape)]
        parts.append(table)
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    table = gpd.GeoDataFrame(table, geometry="geometry", crs=scene.crs)
    if len(parts) > 1:
        table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        table = table[_nms(table.geometry.values, params.nms_m)].reset_index(drop=True)
    table.insert(0, "scene_id", pd.Series([scene.scene_id] * len(table), dtype="str"))
    return table


def in_core(rows: np.ndarray, cols: np.ndarray, core: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """True for points (fractional pixels) that belong to a window's core. A core on the scene's edge
    reaches past it: a truck placed at B04 time can lie just outside the image, and one pass keeps it."""
    r0, r1, c0, c1 = core
    lo_r, hi_r = (-np.inf if r0 == 0 else r0), (np.inf if r1 >= shape[0] else r1)
    lo_c, hi_c = (-np.inf if c0 == 0 else c0), (np.inf if c1 >= shape[1] else c1)
    return (rows >= lo_r) & (rows < hi_r) & (cols >= lo_c) & (cols < hi_c)


def traffic_per_km(trucks: gpd.GeoDataFrame, road_length_km: float) -> float | None:
    """Relative traffic: moving trucks seen per km of road (None without road)."""
    return None if road_length_km <= 0 else len(trucks) / road_length_km
