"""Training targets from vector labels.

Buildings (rasters on the model's grid, made once per scene): extent, the
boundary band of every footprint (both sides of each edge, shared walls
included), ground shadow swept from footprints + heights + sun angles, and
roof height. Vehicles (made per crop, after augmentation moved the objects):
CenterNet maps at stride 2 — an oriented Gaussian per vehicle in its class's
heatmap and the regression targets at its centre cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio import features
from scipy import ndimage

from baseline.core.schemas import VEHICLE_CLASSES
from baseline.detect.frames import bearing_to_pixel
from baseline.detect.nets import BUILDING_HEIGHT_SCALE_M, VEHICLE_CHANNELS, VEHICLE_STRIDE
from baseline.detect.shadows import rasterize_ground_shadow
from baseline.detect.sun_planes import shadow_vector
from baseline.train.data import LabelledScene

CH = {name: i for i, name in enumerate(VEHICLE_CHANNELS)}


@dataclass
class BuildingTargets:
    """A scene at the building model's GSD: image and target rasters on one grid.

    ``image`` uint16 (4, H*s, W*s) reflectance x 10000 at the model's input GSD;
    ``targets`` float16 (4, H, W) on its output grid (``s`` = ``output_stride``
    input pixels per output pixel): extent, boundary, shadow (0/1) and height /
    scale; ``masks`` bool (5, H, W): where the segmentation, shadow and height
    losses apply, the shared-wall pixels (weighted up in the boundary loss),
    and the pixels of small buildings with a one-pixel ring around them
    (:data:`SMALL_BUILDING_M2`; weighted up in the extent loss when a fit asks).
    Compact dtypes keep a whole city scene in a few hundred megabytes.
    """

    scene_id: str
    image: np.ndarray
    targets: np.ndarray
    masks: np.ndarray
    transform: Affine
    centres: np.ndarray  # (n, 2) building centre rows/cols (output grid), for sampling crops
    output_stride: int = 1
    sun_vector: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # shadow per metre of height


SMALL_BUILDING_M2 = 60.0
"""Footprints under this area are *small*: kiosks, shelters, sheds, a few output pixels across.

Per pixel they weigh almost nothing in the extent loss, and on the renders the
network trained on they were most of what it missed (27 of 51 unmatched
buildings on seed 2025 were under 25 m², 25 of them with no prediction on
them at all), so a fit may weigh their pixels up (``small_weight``). A
3,000-iteration fit with it found one or two more a scene (README), so it is
off by default.
"""


def small_building_pixels(labels: np.ndarray, areas_m2: np.ndarray, small_m2: float = SMALL_BUILDING_M2) -> np.ndarray:
    """Pixels of footprints under ``small_m2`` (``labels``: 1-based ids, ``areas_m2`` per id) and a 1-pixel ring.

    The ring is part of what makes a small footprint come out the right size
    (its edge pixels are half the footprint), so it is weighted with it.
    """
    small_id = np.concatenate([[False], np.asarray(areas_m2, float) < small_m2])
    small = small_id[labels]
    return ndimage.binary_dilation(small, structure=np.ones((3, 3), bool)) if small.any() else small


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average (C, H, W) by an integer ``factor`` (edges cropped to a multiple)."""
    if factor == 1:
        return image
    c, h, w = image.shape
    h2, w2 = h // factor, w // factor
    return image[:, : h2 * factor, : w2 * factor].reshape(c, h2, factor, w2, factor).mean(axis=(2, 4))


def integer_factor(model_gsd_m: float, scene_gsd_m: float) -> int | None:
    """How many scene pixels make one model pixel, when that is a whole number (1 = same GSD), else None."""
    ratio = model_gsd_m / scene_gsd_m
    factor = round(ratio)
    return factor if factor >= 1 and abs(ratio - factor) <= 1e-3 * ratio else None


def scene_on_model_grid(scene: LabelledScene, gsd_m: float) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The scene's image (reflectance x 10000), validity and transform at the model's GSD ``gsd_m``.

    A scene finer by a whole factor is area-averaged (each model pixel is a
    block of scene pixels); any other GSD (0.5 m WorldView imagery for a
    0.3 m model, or 0.2 m for 0.3 m) is resampled the way a run reads it onto
    the model's grid (:func:`baseline.detect.runtime.resample`: area average
    down, bilinear up), so the network trains and is scored at the ground
    scale it works at, never on pixels of another size taken for its own.
    At the model's GSD the scene's own uint16 array comes back (no copy);
    otherwise a float32 one, which callers round if they keep it compact.
    """
    factor = integer_factor(gsd_m, scene.gsd_m)
    if factor == 1:
        return scene.image, scene.valid, scene.transform
    if factor is not None:
        image = downsample(scene.image.astype(np.float32), factor)
        valid = downsample(scene.valid[None].astype(np.float32), factor)[0] > 0.5
        return image, valid, scene.transform @ Affine.scale(factor)
    from baseline.detect.runtime import resample

    scale = gsd_m / scene.gsd_m
    h, w = scene.valid.shape
    size = (max(1, round(h / scale)), max(1, round(w / scale)))
    image = np.maximum(resample(scene.image, size), np.float32(0.0))
    valid = resample(scene.valid[None].astype(np.float32), size)[0] > 0.5
    image[:, ~valid] = 0.0
    return image, valid, scene.transform @ Affine.scale(scale)


def building_targets(scene: LabelledScene, gsd_m: float, output_stride: int = 1) -> BuildingTargets:
    """Rasterise a scene's building labels for a model with input GSD ``gsd_m``.

    The image is brought to ``gsd_m`` first (:func:`scene_on_model_grid`, any
    scene GSD); targets are on the model's output grid, ``output_stride``
    input pixels per output pixel.
    """
    image, in_valid, in_transform = scene_on_model_grid(scene, gsd_m)
    if image.dtype != np.uint16:
        image = np.clip(np.round(image), 0, 65535).astype(np.uint16)
    valid = downsample(in_valid[None].astype(np.float32), output_stride)[0] > 0.5
    image = image[:, : valid.shape[0] * output_stride, : valid.shape[1] * output_stride]
    transform = in_transform @ Affine.scale(output_stride)
    shape = valid.shape
    b = scene.buildings
    labels = np.zeros(shape, dtype=np.int32)
    if b is not None and len(b):
        labels = features.rasterize(
            [(g, i + 1) for i, g in enumerate(b.geometry)], out_shape=shape, transform=transform, dtype="int32"
        )
    extent = labels > 0
    boundary = ndimage.maximum_filter(labels, 3) != ndimage.minimum_filter(labels, 3)
    # shared walls: building pixels next to another building (the hard, rare part of the boundary)
    masked = np.where(extent, labels, np.iinfo(np.int32).max)
    wall = extent & (ndimage.minimum_filter(masked, 3) != ndimage.maximum_filter(labels, 3))
    heights = np.full(shape, np.nan, dtype=np.float32)
    shadow = np.zeros(shape, dtype=bool)
    has_sun = scene.sun_elevation_deg is not None and scene.sun_azimuth_deg is not None
    if b is not None and len(b):
        hv = np.concatenate([[np.nan], b["height_m"].to_numpy(dtype=np.float32)])
        heights = np.where(extent, hv[labels], np.nan).astype(np.float32)
        if has_sun and np.isfinite(b["height_m"]).all():
            shadow = rasterize_ground_shadow(
                list(b.geometry), b["height_m"].to_numpy(float), scene.sun_elevation_deg,
                scene.sun_azimuth_deg, transform, shape,
            )
    targets = np.stack([extent, boundary, shadow, np.nan_to_num(heights) / BUILDING_HEIGHT_SCALE_M]).astype(np.float16)
    shadow_ok = valid & (has_sun and (b is None or np.isfinite(b["height_m"]).all()))
    small = small_building_pixels(labels, b.geometry.area.to_numpy() if b is not None and len(b) else np.zeros(0))
    masks = np.stack([valid, shadow_ok, valid & np.isfinite(heights), wall, small & valid])
    centres = np.zeros((0, 2))
    if b is not None and len(b):
        inv = ~transform
        c = b.geometry.centroid
        cols, rows = inv @ (c.x.to_numpy(), c.y.to_numpy())
        centres = np.stack([rows, cols], axis=1)
    sun = shadow_vector(transform, scene.sun_elevation_deg, scene.sun_azimuth_deg)
    return BuildingTargets(scene.scene_id, image, targets, masks, transform, centres, output_stride, sun)


@dataclass
class VehicleObjects:
    """Vehicles of a scene in its pixel frame (continuous coordinates, 0 = top-left edge).

    ``axis`` (n, 2) is the unit heading/long-axis vector (drow, dcol); ``disp``
    (n, 2) the blue->nir displacement in metres along the pixel axes (row,
    col); ``has_motion`` says whether the displacement is known.
    """

    centre: np.ndarray
    axis: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    cls: np.ndarray
    disp: np.ndarray
    has_motion: bool


def vehicle_objects(scene: LabelledScene) -> VehicleObjects:
    """The scene's vehicles as arrays in its pixel frame."""
    v = scene.vehicles
    if v is None or not len(v):
        z = np.zeros((0, 2))
        return VehicleObjects(z, z, np.zeros(0), np.zeros(0), np.zeros(0, int), z, True)
    inv = ~scene.transform
    c = v.geometry.centroid
    cols, rows = inv @ (c.x.to_numpy(), c.y.to_numpy())
    ar, ac = bearing_to_pixel(scene.transform, v["axis_deg"].to_numpy(float))
    offsets = scene.band_time_offsets_s
    has_motion = "blue" in offsets and "nir" in offsets
    dt = float(offsets.get("nir", 0.1)) - float(offsets.get("blue", -0.1))
    speed = v["speed_kmh"].to_numpy(float) / 3.6 * v["moving"].to_numpy(bool)
    # heading is the travel direction: displacement = speed * dt along it, in metres
    disp = np.stack([ar * speed * dt, ac * speed * dt], axis=1)
    cls = np.array([VEHICLE_CLASSES.index(k) for k in v["class"]], dtype=int)
    return VehicleObjects(
        np.stack([rows, cols], axis=1), np.stack([ar, ac], axis=1), v["length_m"].to_numpy(float),
        v["width_m"].to_numpy(float), cls, disp, has_motion,
    )


def vehicle_maps(objects: VehicleObjects, size: int, gsd_m: float) -> tuple[np.ndarray, np.ndarray]:
    """CenterNet targets for a ``size`` x ``size`` crop whose objects are already in crop pixels.

    Returns ``(target (C, s, s), weight (C, s, s))`` at stride 2; the heatmaps
    are oriented Gaussians (sigma a sixth of the box's length and width, floored),
    the regressions live at each centre cell and, at half weight, its 3x3
    neighbours inside the vehicle (offsets only at the centre cell).
    """
    s = size // VEHICLE_STRIDE
    target = np.zeros((len(VEHICLE_CHANNELS), s, s), dtype=np.float32)
    weight = np.zeros_like(target)
    weight[:2] = 1.0
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    for i in range(len(objects.centre)):
        r, c = objects.centre[i] / VEHICLE_STRIDE
        if not (0 <= r < s and 0 <= c < s):
            continue
        ar, ac = objects.axis[i]
        length_px = objects.length_m[i] / gsd_m / VEHICLE_STRIDE
        width_px = objects.width_m[i] / gsd_m / VEHICLE_STRIDE
        sl, sw = max(length_px / 6.0, 0.6), max(width_px / 6.0, 0.5)
        rad = int(math.ceil(3 * sl)) + 1
        r0, r1 = max(0, int(r) - rad), min(s, int(r) + rad + 1)
        c0, c1 = max(0, int(c) - rad), min(s, int(c) + rad + 1)
        dy, dx = yy[r0:r1, c0:c1] + 0.5 - r, xx[r0:r1, c0:c1] + 0.5 - c
        along = dy * ar + dx * ac
        across = -dy * ac + dx * ar
        g = np.exp(-0.5 * ((along / sl) ** 2 + (across / sw) ** 2))
        k = int(objects.cls[i])
        target[k, r0:r1, c0:c1] = np.maximum(target[k, r0:r1, c0:c1], g)
        ri, ci = int(r), int(c)
        target[k, ri, ci] = 1.0
        a2 = 2.0 * math.atan2(ar, ac)
        values = {
            "log_length": math.log(objects.length_m[i]), "log_width": math.log(objects.width_m[i]),
            "cos2a": math.cos(a2), "sin2a": math.sin(a2),
            "disp_row": objects.disp[i, 0], "disp_col": objects.disp[i, 1],
        }
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = ri + dr, ci + dc
                if not (0 <= rr < s and 0 <= cc < s):
                    continue
                w = 1.0 if dr == dc == 0 else 0.5
                if w < 1.0 and abs((rr + 0.5 - r) * ar + (cc + 0.5 - c) * ac) > length_px / 2:
                    continue
                if weight[CH["log_length"], rr, cc] >= w:
                    continue  # a closer centre already claimed this cell
                for name, value in values.items():
                    if name.startswith("disp") and not objects.has_motion:
                        continue
                    target[CH[name], rr, cc] = value
                    weight[CH[name], rr, cc] = w
        target[CH["off_row"], ri, ci] = r - ri
        target[CH["off_col"], ri, ci] = c - ci
        weight[CH["off_row"], ri, ci] = weight[CH["off_col"], ri, ci] = 1.0
    return target, weight
