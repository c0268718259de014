"""Buildings: chips -> stitched maps -> footprints with heights.

Per chip the network gives extent, boundary and ground-shadow logits and a
roof-height map at the model's GSD (see :mod:`baseline.detect.nets`). Maps are
stitched in a :class:`~baseline.detect.mosaic.BuildingMosaic`; on the mosaic,
:func:`~baseline.detect.instances.separate_instances` finds the buildings,
their polygons come from the label image, and each height is measured from its
shadow and the sun angles (``height_source="shadow"``) or, where no shadow ray
is usable, taken as the median of the learned height map over the footprint
(``height_source="learned"``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from baseline.core.chips import REFLECTANCE_MAX, Chip
from baseline.core.label_stats import label_median_and_spread, label_quantile
from baseline.core.schemas import BUILDINGS_OUT
from baseline.detect.instances import polygons_from_labels, separate_instances
from baseline.detect.mosaic import BuildingMosaic
from baseline.detect.nets import BUILDING_CHANNELS, BUILDING_HEIGHT_SCALE_M
from baseline.detect.regularise import DEFAULT_TOLERANCE_DEG
from baseline.detect.runtime import (
    FP32,
    InferenceSettings,
    prepare_chip,
    resample,
    resolve_device,
    run_batches,
)
from baseline.detect.shadows import (
    MAX_RAY_INCIDENCE_DEG,
    ShadowHeight,
    chained_shadow_heights,
    roof_darkness,
    shaded_roofs,
    shadow_heights,
)
from baseline.detect.sun_planes import shadow_vector
from baseline.detect.weights import LoadedModel

log = logging.getLogger(__name__)

NET_MULTIPLE = 32  # the U-Net's total stride
LEARNED_SIGMA_FLOOR_M = 1.5
SHADOW_GAP_M = 2.4
"""Lit stretches a shadow ray crosses and goes on (a car or a tree crown standing in the shadow)."""
MOSAIC_CHANNELS = (*BUILDING_CHANNELS, "brightness", "blueness")
"""What a building mosaic holds: the network's maps, then the input's mean reflectance and its blue over
near-infrared ratio (NaN without both bands): how dark a roof pixel is, and whether that darkness is a shadow's."""


def input_multiple(model: LoadedModel) -> int:
    """What the building network's input sides must be a multiple of (its stride, times its 2x2 fold)."""
    return NET_MULTIPLE * model.output_stride


def building_maps(output: np.ndarray) -> np.ndarray:
    """Network output (C, h, w) -> maps: sigmoid probabilities and height in metres."""
    maps = np.empty_like(output)
    maps[:3] = 1.0 / (1.0 + np.exp(-output[:3]))
    maps[3] = np.maximum(output[3], 0.0) * BUILDING_HEIGHT_SCALE_M
    return maps


def add_chips_to_mosaic(
    chips: Sequence[Chip],
    model: LoadedModel,
    mosaic: BuildingMosaic,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    settings: InferenceSettings = FP32,
    sun_elevation_deg: float | None = None,
    sun_azimuth_deg: float | None = None,
) -> None:
    """Run the building model over ``chips`` and add their maps to ``mosaic``.

    The sun angles feed a model that takes sun planes; others ignore them.
    ``settings.building_flips`` > 1 averages the maps over mirror images.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    s = model.output_stride
    prepared = [prepare_chip(c, model, input_multiple(model)) for c in chips]
    sun = shadow_vector(chips[0].transform, sun_elevation_deg, sun_azimuth_deg) if chips and model.sun_planes else None
    for batch, out in run_batches(model, prepared, dev, batch_size=batch_size, settings=settings, sun=sun,
                                  flips=settings.building_flips):
        for item, raw in zip(batch, out, strict=True):
            h, w = -(-item.height // s), -(-item.width // s)
            valid = item.padded
            if s > 1:  # valid where most of the folded input pixels are
                vh, vw = valid.shape[0] // s, valid.shape[1] // s
                folded = valid[: vh * s, : vw * s].reshape(vh, s, vw, s).sum(axis=(1, 3), dtype=np.uint16)
                valid = 2 * folded > s * s
            maps = building_maps(raw[:, :h, :w])
            light = _roof_light(item.chip, model, s)[:, :h, :w]
            bh, bw = light.shape[1:]
            maps = np.concatenate([maps[:, :bh, :bw], light])
            mosaic.add(item.chip, maps, valid[:bh, :bw])


def _roof_light(chip: Chip, model: LoadedModel, stride: int) -> np.ndarray:
    """(2, h, w) on the model's output grid: mean reflectance over the chip's bands, and blue over near-infrared.

    A shadow keeps only the diffuse skylight, which is bluer than the sun, so a
    roof pixel in shadow has a higher blue/NIR ratio than the sunlit part of the
    same roof, while the darker facet of a pitched roof keeps the ratio. The
    ratio is NaN where the chip has no blue or no near-infrared band (a grey
    image cannot tell the two apart).
    """
    bands = list(model.bands)
    counts = chip.pixels[:, : chip.window.height, : chip.window.width]
    if np.issubdtype(counts.dtype, np.integer):  # clip in counts, average, then scale: no float copy of every band
        pixels, scale = np.minimum(counts, int(REFLECTANCE_MAX / chip.dn_scale)), np.float32(chip.dn_scale)
    else:
        pixels, scale = chip.reflectance[:, : chip.window.height, : chip.window.width], np.float32(1.0)
    mean = pixels.mean(axis=0, dtype=np.float32) * scale
    if "blue" in bands and "nir" in bands:
        blue, nir = (pixels[bands.index(b)].astype(np.float32) * scale for b in ("blue", "nir"))
    else:
        blue = nir = np.full_like(mean, np.nan)
    light = np.stack([mean, blue, nir])
    resize = model.gsd_m / chip.gsd_m
    if abs(resize - 1.0) > 1e-3:
        size = (max(1, round(light.shape[1] / resize)), max(1, round(light.shape[2] / resize)))
        light = resample(light, size)
    if stride > 1:
        h, w = -(-light.shape[1] // stride) * stride, -(-light.shape[2] // stride) * stride
        padded = np.pad(light, ((0, 0), (0, h - light.shape[1]), (0, w - light.shape[2])), mode="edge")
        light = padded.reshape(3, h // stride, stride, w // stride, stride).mean(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        blueness = light[1] / np.maximum(light[2], np.float32(1e-4))
    return np.stack([light[0], blueness]).astype(np.float32)


def buildings_from_mosaic(
    mosaic: BuildingMosaic,
    *,
    crs: object,
    sun_elevation_deg: float | None,
    sun_azimuth_deg: float | None,
    scene_id: str,
    postprocess: dict | None = None,
    owned_only: bool = True,
) -> gpd.GeoDataFrame:
    """Building footprints (BUILDINGS_OUT columns) from a filled mosaic.

    ``postprocess`` may override ``extent_threshold``, ``boundary_threshold``,
    ``min_seed_m2`` (smaller seeds merge into their neighbours), ``split_thresholds`` and
    ``min_split_m2`` (stricter boundary thresholds that split a seed holding two
    parts at least that large: faint walls between terraced houses), ``height_seed_m2``
    (the finer split whose dominant part gives each footprint its height), ``min_area_m2``, ``shadow_threshold``, ``min_shadow_rays``, ``simplify_px``, ``regularise_deg``,
    ``shadow_quantile`` (which ray estimate), ``shadow_length_offset_m`` (calibrated on
    training renders) and
    ``learned_height_sigma_m``, ``learned_height_offsets_by_area`` ([upper area m², offset m] pairs: the
    learned head's bias on small footprints), ``shadow_gap_m`` (lit stretches a ray bridges),
    ``roof_shadows`` (carry rays over neighbouring roofs), ``roof_shadow_darkness``,
    ``roof_shadow_min_blueness`` (how much bluer than its sunlit part, blue over NIR, a darker roof
    pixel must be to count as shadow; unset: darkness alone), ``shade_neighbours`` (known buildings
    whose shadow ends on a roof measure that roof), ``shaded_roof_blueness`` and ``shaded_roof_brightness``
    (a roof at least that much bluer and at most that bright, against the scene's typical roof, is wholly
    in a neighbour's shadow: rays cross it; unset: no roof is),
    ``min_roof_run_px``, ``max_contradicting_rays``, ``shadow_max_incidence_deg`` (rays start on edges facing within it of the
    shadow) and ``shadow_sigma_floor_m`` (the card's ``postprocess`` block).
    """
    pp = dict(postprocess or {})
    maps = mosaic.mean()
    extent, boundary, shadow, height, brightness, blueness = (maps[MOSAIC_CHANNELS.index(k)] for k in MOSAIC_CHANNELS)
    transform = mosaic.grid.transform
    pixel_m2 = abs(transform.a * transform.e - transform.b * transform.d)
    def instances(seed_m2: float) -> np.ndarray:
        return separate_instances(
            extent,
            boundary,
            extent_threshold=float(pp.get("extent_threshold", 0.5)),
            boundary_threshold=float(pp.get("boundary_threshold", 0.5)),
            min_seed_px=max(1, int(round(seed_m2 / pixel_m2))),
            min_area_px=max(1, int(round(float(pp.get("min_area_m2", 8.0)) / pixel_m2))),
            split_thresholds=tuple(float(t) for t in pp.get("split_thresholds", ())),
            min_split_px=max(1, int(round(float(pp.get("min_split_m2", seed_m2)) / pixel_m2))),
        )

    seed_m2 = float(pp.get("min_seed_m2", 1.5))
    labels = instances(seed_m2)
    n = int(labels.max())
    if n == 0:
        return empty_buildings(crs)
    polygons = polygons_from_labels(labels, transform, simplify_px=float(pp.get("simplify_px", 0.75)),
                                    regularise_deg=float(pp.get("regularise_deg", DEFAULT_TOLERANCE_DEG)))
    index = np.arange(1, n + 1)
    score = ndimage.mean(extent, labels, index)
    learned, learned_mad = label_median_and_spread(height, labels, n)
    shadow_h = {}
    # Heights are measured on a finer split (small seeds kept): where two buildings
    # of different heights merged into one footprint, the footprint takes the height
    # of its dominant part rather than a blend of both.
    height_seed_m2 = float(pp.get("height_seed_m2", seed_m2))
    fine = labels if height_seed_m2 >= seed_m2 else instances(height_seed_m2)
    parts = _parts_by_size(labels, fine)
    if sun_elevation_deg is not None and sun_azimuth_deg is not None:
        # each roof's sunlit level (its 0.9 brightness quantile), shared by the two roof tests below
        roof_level = label_quantile(brightness, fine, int(fine.max()), 0.9)
        # roofs wholly in a taller neighbour's shadow: rays cross them, and their own rays only bound them
        shaded = None
        if pp.get("shaded_roof_blueness") is not None:
            shaded = shaded_roofs(brightness, blueness, fine, min_blueness=float(pp["shaded_roof_blueness"]),
                                  max_brightness=float(pp.get("shaded_roof_brightness", 0.7)), level=roof_level)
        shadow_h = shadow_heights(
            fine,
            shadow,
            transform,
            sun_elevation_deg,
            sun_azimuth_deg,
            valid=mosaic.covered,
            threshold=float(pp.get("shadow_threshold", 0.5)),
            min_rays=int(pp.get("min_shadow_rays", 3)),
            quantile=float(pp.get("shadow_quantile", 0.5)),
            lower_quantile=float(pp.get("lower_bound_quantile", 0.5)),
            max_gap_m=float(pp.get("shadow_gap_m", SHADOW_GAP_M)),
            max_incidence_deg=float(pp.get("shadow_max_incidence_deg", MAX_RAY_INCIDENCE_DEG)),
            shaded=shaded,
        )
        if bool(pp.get("roof_shadows", True)):
            # buildings whose shadow falls on a neighbour: carry the rays over its roof
            shadow_h = chained_shadow_heights(
                fine,
                shadow,
                roof_darkness(brightness, fine, blueness=blueness,
                              min_blueness=pp.get("roof_shadow_min_blueness"), level=roof_level),
                transform,
                sun_elevation_deg,
                sun_azimuth_deg,
                shadow_h,
                valid=mosaic.covered,
                threshold=float(pp.get("shadow_threshold", 0.5)),
                darkness_threshold=float(pp.get("roof_shadow_darkness", 0.4)),
                min_rays=int(pp.get("min_shadow_rays", 3)),
                min_roof_run_px=float(pp.get("min_roof_run_px", 1.5)),
                max_gap_m=float(pp.get("shadow_gap_m", SHADOW_GAP_M)),
                max_contradicting=float(pp.get("max_contradicting_rays", 3.0)),
                max_incidence_deg=float(pp.get("shadow_max_incidence_deg", MAX_RAY_INCIDENCE_DEG)),
                shade_neighbours=bool(pp.get("shade_neighbours", False)),
                shaded=shaded,
                through_roofs=bool(pp.get("shadow_through_roofs", False)),
            )
    learned_floor = float(pp.get("learned_height_sigma_m", LEARNED_SIGMA_FLOOR_M))
    # the rays' own spread under-states a shadow height's error (edges, censoring): the card's
    # floor, added in quadrature and fitted on training renders, puts 95% of errors within 1.96 sigma there
    shadow_sigma_floor = float(pp.get("shadow_sigma_floor_m", 0.0))
    # calibrated bias of measured shadow lengths (from training renders), applied as a length
    length_offset = float(pp.get("shadow_length_offset_m", 0.0))
    tan_e = math.tan(math.radians(sun_elevation_deg)) if sun_elevation_deg else 0.0
    # the learned head's bias on small footprints, by size class (fitted on training renders)
    size_offsets = [(float(upper), float(offset)) for upper, offset in pp.get("learned_height_offsets_by_area", [])]
    rows = []
    inv = ~transform
    for k in index:
        poly = polygons.get(int(k))
        if poly is None:
            continue
        if owned_only:
            c = poly.centroid
            col, row = inv @ (c.x, c.y)
            ri, ci = int(np.floor(row)), int(np.floor(col))
            if not (0 <= ri < labels.shape[0] and 0 <= ci < labels.shape[1] and mosaic.owned[ri, ci]):
                continue
        sh = _measured_part(parts.get(int(k), []), shadow_h, float(pp.get("min_part_share", 0.2)))
        if sh is not None and np.isfinite(sh.height_m):
            h, sigma, source = max(sh.height_m + length_offset * tan_e, 0.0), float(np.hypot(sh.sigma_m, shadow_sigma_floor)), "shadow"
            if np.isfinite(sh.lower_bound_m):
                h = max(h, sh.lower_bound_m + length_offset * tan_e)
        else:
            h = learned_with_offset(float(learned[k - 1]), poly.area, size_offsets)
            sigma = float(np.hypot(learned_mad[k - 1], learned_floor))
            source = "learned"
            if sh is not None and np.isfinite(sh.upper_bound_m):
                h = min(h, sh.upper_bound_m)
            if sh is not None and np.isfinite(sh.lower_bound_m):
                h = max(h, sh.lower_bound_m + length_offset * tan_e)
        rows.append((poly, h, source, sigma, float(score[k - 1])))
    frame = gpd.GeoDataFrame(
        {
            "building_id": pd.array([pd.NA] * len(rows), dtype="Int64"),
            "height_m": [r[1] for r in rows],
            "height_source": [r[2] for r in rows],
            "height_sigma_m": [r[3] for r in rows],
            "score": [r[4] for r in rows],
            "scene_id": scene_id,
        },
        geometry=[r[0] for r in rows],
        crs=crs,
    )
    return frame[list(BUILDINGS_OUT)]


def learned_with_offset(height_m: float, area_m2: float, offsets: list[tuple[float, float]]) -> float:
    """A learned height plus the offset of the first size class (upper area, offset) ``area_m2`` is under.

    Footprints larger than every class keep the head's height; no height
    goes under a metre.
    """
    for upper, offset in sorted(offsets):
        if area_m2 < upper:
            return max(height_m + offset, 1.0)
    return height_m


def _parts_by_size(coarse: np.ndarray, fine: np.ndarray) -> dict[int, list[tuple[int, float]]]:
    """For each coarse label, its fine labels with the share of its pixels each covers, largest first."""
    both = (coarse > 0) & (fine > 0)
    if not both.any():
        return {}
    base = int(fine.max()) + 1
    keys, counts = np.unique(coarse[both].astype(np.int64) * base + fine[both], return_counts=True)
    c, f = keys // base, keys % base
    order = np.lexsort((-counts, c))
    totals = np.bincount(c, weights=counts)
    out: dict[int, list[tuple[int, float]]] = {}
    for i in order:
        out.setdefault(int(c[i]), []).append((int(f[i]), float(counts[i] / totals[c[i]])))
    return out


def _measured_part(
    parts: list[tuple[int, float]], heights: dict[int, ShadowHeight], min_share: float
) -> ShadowHeight | None:
    """The height of a footprint's largest part that has a measured height (and covers ``min_share``).

    Where the dominant part's shadow falls only on roofs, a smaller part of
    the same footprint whose shadow reaches the ground still measures it;
    when no part qualifies, the dominant part's bounds (if any) are returned.
    """
    for index, (label, share) in enumerate(parts):
        sh = heights.get(label)
        if sh is not None and np.isfinite(sh.height_m) and (index == 0 or share >= min_share):
            return sh
    return heights.get(parts[0][0]) if parts else None


def empty_buildings(crs: object) -> gpd.GeoDataFrame:
    """A buildings table with the output columns and no rows."""
    frame = gpd.GeoDataFrame(
        {
            "building_id": pd.array([], dtype="Int64"),
            "height_m": pd.Series([], dtype=float),
            "height_source": pd.Series([], dtype=object),
            "height_sigma_m": pd.Series([], dtype=float),
            "score": pd.Series([], dtype=float),
            "scene_id": pd.Series([], dtype=object),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    return frame[list(BUILDINGS_OUT)]
