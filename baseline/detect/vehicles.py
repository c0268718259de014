"""Vehicles: chips -> CenterNet maps -> oriented boxes with class, heading and speed.

Decoding: the per-class heatmaps are reduced to their maximum over classes and
peaks are local maxima in a 3x3 window above a score threshold (one peak per
vehicle, whatever its class, so tightly packed cars stay apart because their
centres are a car width apart). At each peak the regression channels give the
sub-pixel centre, length and width (log metres), the long-axis angle as
(cos 2a, sin 2a) and the displacement of the vehicle between the blue and
the nir band (metres). Motion is then *measured* in the chip's own pixels
(:mod:`baseline.detect.motion`: the velocity along the axis that best aligns
the bands given the scene's band time offsets); where that measurement is
unreliable the learned displacement is used, ``speed = |d| / (t_nir - t_blue)``.
``moving`` is a shift of at least two pixels across the bands' time span
(10.8 km/h at 0.3 m over 0.2 s; see :func:`moving_threshold_kmh`); a moving
vehicle's heading is its direction of travel, a parked one's keeps the
180-degree ambiguity of its axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from torch.nn import functional as F

from baseline.core.chips import Chip
from baseline.core.geo import vector_to_compass
from baseline.core.schemas import VEHICLE_CLASSES, VEHICLES_OUT
from baseline.detect.boxes import box_polygons
from baseline.detect.frames import pixel_centres_to_xy, pixel_to_bearing, pixel_to_vector
from baseline.detect.motion import band_velocities
from baseline.detect.nets import VEHICLE_CHANNELS, VEHICLE_STRIDE
from baseline.detect.runtime import (
    CHIP_BANDS,
    FP32,
    InferenceSettings,
    prepare_chip,
    resolve_device,
    run_batches,
)
from baseline.detect.weights import LoadedModel

NET_MULTIPLE = 16
# A vehicle is moving when its bands are shifted by at least this many pixels between the earliest
# and the latest band: below about two pixels the measured shift is within its own noise (parked
# cars packed bumper to bumper read up to ~9 km/h at 0.3 m and 0.2 s). At 0.3 m over 0.2 s: 10.8 km/h.
MIN_MOTION_PX = 2.0


def moving_threshold_kmh(gsd_m: float, band_time_offsets_s: dict[str, float]) -> float:
    """The slowest speed told apart from standing still: :data:`MIN_MOTION_PX` over the bands' time span."""
    times = [band_time_offsets_s[b] for b in CHIP_BANDS if b in band_time_offsets_s]
    span = (max(times) - min(times)) if len(times) >= 2 else 0.0
    return float("inf") if span <= 0 else MIN_MOTION_PX * gsd_m / span * 3.6
MIN_MOTION_SCORE = 0.5
CH = {name: i for i, name in enumerate(VEHICLE_CHANNELS)}


@dataclass
class Peaks:
    """Decoded detections in model-input pixel coordinates (continuous, 0 = top-left edge).

    ``axis_row``/``axis_col`` is the unit long-axis vector; ``disp_row``/``disp_col``
    the blue->nir displacement in metres along the pixel axes.
    """

    row: np.ndarray
    col: np.ndarray
    score: np.ndarray
    cls: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    axis_row: np.ndarray
    axis_col: np.ndarray
    disp_row: np.ndarray
    disp_col: np.ndarray

    def select(self, keep: np.ndarray) -> Peaks:
        return Peaks(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def decode_maps(output: np.ndarray, *, score_threshold: float = 0.3, max_peaks: int = 2000) -> Peaks:
    """Peaks of one chip's raw network output (C, h, w) at stride :data:`VEHICLE_STRIDE`."""
    # peaks on logits (a sigmoid saturates to ties); plateaus keep one peak each
    logits = torch.from_numpy(np.ascontiguousarray(output[:2], dtype=np.float32))
    best, cls = logits.max(dim=0)
    pooled = F.max_pool2d(best[None, None], 3, stride=1, padding=1)[0, 0]
    thr_logit = float(np.log(score_threshold / (1.0 - score_threshold)))
    peak = ((best == pooled) & (best >= thr_logit)).numpy()
    ii, jj = _one_per_plateau(peak)
    scores = 1.0 / (1.0 + np.exp(-best.numpy()[ii, jj].astype(float)))
    if ii.size > max_peaks:
        top = np.argsort(-scores)[:max_peaks]
        ii, jj, scores = ii[top], jj[top], scores[top]
    o = output[:, ii, jj]
    angle2 = np.arctan2(o[CH["sin2a"]], o[CH["cos2a"]])
    a = angle2 / 2.0
    return Peaks(
        row=(ii + o[CH["off_row"]]) * VEHICLE_STRIDE,
        col=(jj + o[CH["off_col"]]) * VEHICLE_STRIDE,
        score=scores.astype(float),
        cls=cls.numpy()[ii, jj],
        length_m=np.exp(o[CH["log_length"]]),
        width_m=np.exp(o[CH["log_width"]]),
        axis_row=np.sin(a),
        axis_col=np.cos(a),
        disp_row=o[CH["disp_row"]].astype(float),
        disp_col=o[CH["disp_col"]].astype(float),
    )


def _one_per_plateau(peak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and cols of peaks, one per 8-connected group of tied maxima (the one nearest its middle)."""
    ii, jj = np.nonzero(peak)
    if ii.size < 2:
        return ii, jj
    groups, n = ndimage.label(peak, structure=np.ones((3, 3)))
    if n == ii.size:
        return ii, jj
    g = groups[ii, jj]
    mid_r = ndimage.mean(ii, g, np.arange(1, n + 1))[g - 1]
    mid_c = ndimage.mean(jj, g, np.arange(1, n + 1))[g - 1]
    dist = (ii - mid_r) ** 2 + (jj - mid_c) ** 2
    order = np.lexsort((dist, g))
    first = order[np.r_[True, np.diff(g[order]) != 0]]
    return ii[first], jj[first]


def suppress_inside(peaks: Peaks, gsd_m: float, shrink: float = 0.8) -> Peaks:
    """Drop a peak whose centre lies inside a higher-scoring box shrunk by ``shrink``.

    A long or fast vehicle can leave two maxima on its heatmap; neighbours
    parked side by side or nose to tail never have their centre inside each
    other's (shrunk) box, so they are all kept.
    """
    n = len(peaks.row)
    if n < 2:
        return peaks
    order = np.argsort(-peaks.score, kind="stable")
    half_l = shrink * peaks.length_m / gsd_m / 2.0
    half_w = shrink * peaks.width_m / gsd_m / 2.0
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.asarray(kept)
            dr = peaks.row[i] - peaks.row[k]
            dc = peaks.col[i] - peaks.col[k]
            along = np.abs(dr * peaks.axis_row[k] + dc * peaks.axis_col[k])
            across = np.abs(-dr * peaks.axis_col[k] + dc * peaks.axis_row[k])
            if np.any((along < half_l[k]) & (across < half_w[k])):
                continue
        kept.append(int(i))
    return peaks.select(np.sort(np.asarray(kept)))


def input_multiple(model: LoadedModel) -> int:
    """What the vehicle network's input sides must be a multiple of (its total stride)."""
    return NET_MULTIPLE


def blue_to_nir_seconds(band_time_offsets_s: dict[str, float] | None) -> float | None:
    """Seconds between the blue and the nir band, or None when the scene does not say."""
    if not band_time_offsets_s or "blue" not in band_time_offsets_s or "nir" not in band_time_offsets_s:
        return None
    dt = float(band_time_offsets_s["nir"]) - float(band_time_offsets_s["blue"])
    return dt if abs(dt) > 1e-6 else None


def peaks_to_frame(
    peaks: Peaks,
    chip: Chip,
    scale: float,
    *,
    crs: object,
    band_time_offsets_s: dict[str, float] | None,
    owned_only: bool = True,
    measure_motion: bool = True,
    min_motion_score: float = MIN_MOTION_SCORE,
) -> gpd.GeoDataFrame:
    """Oriented boxes (VEHICLES_OUT columns) in the scene CRS for one chip's peaks.

    ``scale`` is chip pixels per model pixel. Only detections whose centre lies
    in the chip's core are kept when ``owned_only`` (stitching without double counts).
    Speed and direction come from the band shift measured in the chip's pixels
    (:mod:`baseline.detect.motion`) where its match score reaches
    ``min_motion_score``, else from the network's displacement head.
    """
    rows_chip = peaks.row * scale
    cols_chip = peaks.col * scale
    keep = np.ones(rows_chip.shape, dtype=bool)
    if owned_only:
        keep &= chip.window.owns(rows_chip + chip.window.row, cols_chip + chip.window.col)
    r, c = np.floor(rows_chip).astype(int), np.floor(cols_chip).astype(int)
    inside = (r >= 0) & (r < chip.valid.shape[0]) & (c >= 0) & (c < chip.valid.shape[1])
    keep &= inside
    keep[inside] &= chip.valid[r[inside], c[inside]]
    p = peaks.select(keep)
    rows_chip, cols_chip = rows_chip[keep], cols_chip[keep]
    t = chip.transform
    x, y = pixel_centres_to_xy(t, rows_chip, cols_chip)
    axis_deg = pixel_to_bearing(t, p.axis_row, p.axis_col)
    # displacement: metres along pixel axes -> chip pixels -> ground metres
    de, dn = pixel_to_vector(t, p.disp_row / chip.gsd_m, p.disp_col / chip.gsd_m)
    dt = blue_to_nir_seconds(band_time_offsets_s)
    if dt is None:
        speed = np.full(len(x), np.nan)
        moving = pd.array([pd.NA] * len(x), dtype="boolean")
        heading = np.mod(axis_deg, 180.0)
    else:
        # the learned head's displacement, then the measured band shift where it is reliable
        speed = np.hypot(de, dn) / abs(dt) * 3.6
        travel = vector_to_compass(de * np.sign(dt), dn * np.sign(dt))
        forward = np.abs(np.mod(axis_deg - travel + 180.0, 360.0) - 180.0) <= 90.0
        offsets = [band_time_offsets_s.get(b) for b in CHIP_BANDS]
        if measure_motion and None not in offsets and len(x):
            v_axis, quality = band_velocities(
                chip.pixels, rows_chip, cols_chip, p.axis_row, p.axis_col, p.length_m / chip.gsd_m,
                p.width_m / chip.gsd_m, np.asarray(offsets, dtype=float), chip.gsd_m, dn_scale=chip.dn_scale,
            )
            good = quality >= min_motion_score
            speed = np.where(good, np.abs(v_axis) * 3.6, speed)
            forward = np.where(good, v_axis >= 0, forward)
        is_moving = speed > moving_threshold_kmh(chip.gsd_m, band_time_offsets_s)
        heading = np.where(is_moving, np.where(forward, axis_deg, axis_deg + 180.0), axis_deg)
        heading = np.mod(heading, 360.0)
        speed = np.where(is_moving, speed, 0.0)
        moving = pd.array(is_moving, dtype="boolean")
    frame = gpd.GeoDataFrame(
        {
            "vehicle_id": pd.array([pd.NA] * len(x), dtype="Int64"),
            "class": np.asarray(VEHICLE_CLASSES, dtype=object)[p.cls.astype(int)] if len(x) else np.array([], dtype=object),
            "on_road": pd.array([pd.NA] * len(x), dtype="boolean"),
            "moving": moving,
            "speed_kmh": speed.astype(float),
            "heading_deg": heading.astype(float),
            "score": p.score,
            "scene_id": chip.scene_id,
        },
        geometry=box_polygons(x, y, p.length_m, p.width_m, heading) if len(x) else gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    return frame[list(VEHICLES_OUT)]


def detect_vehicles_per_chip(
    chips: Sequence[Chip],
    model: LoadedModel,
    *,
    crs: object,
    band_time_offsets_s: dict[str, float] | None,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    score_threshold: float | None = None,
    owned_only: bool = True,
    settings: InferenceSettings = FP32,
) -> list[gpd.GeoDataFrame]:
    """One vehicles table per chip (in input order), each holding only what that chip owns."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    thr = float(score_threshold if score_threshold is not None else model.postprocess.get("score_threshold", 0.3))
    prepared = [prepare_chip(c, model, input_multiple(model)) for c in chips]
    result: dict[int, gpd.GeoDataFrame] = {}
    for batch, out in run_batches(model, prepared, dev, batch_size=batch_size, settings=settings):
        for item, raw in zip(batch, out, strict=True):
            peaks = suppress_inside(decode_maps(raw, score_threshold=thr), model.gsd_m)
            # drop peaks in the padding
            inside = (peaks.row < item.height) & (peaks.col < item.width)
            result[id(item)] = peaks_to_frame(
                peaks.select(inside), item.chip, item.scale, crs=crs,
                band_time_offsets_s=band_time_offsets_s, owned_only=owned_only,
            )
    return [result[id(item)] for item in prepared]
