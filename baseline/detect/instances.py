"""Building instances from the extent and boundary maps, and their polygons.

Touching buildings (terraces, perimeter blocks) share walls, so the extent
map alone would merge them. The network also predicts the *boundary* band
around every footprint (both sides of a shared wall), so extent minus boundary
leaves one seed per building; a marker watershed grows the seeds back over the
extent with the boundary probability as the relief, so each pixel goes to the
seed it is not separated from by a ridge. A seed that holds two large parts
once the boundary threshold is made stricter (a faint wall between two
terraced houses) is split into those parts: a hierarchy of thresholds, so
that a weak wall splits a pair of houses without lowering the threshold, and
with it the seeds of every other building, everywhere. Footprints are then vectorised with
``rasterio.features.shapes`` and lightly simplified (the pixel staircase goes;
corners stay).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import Polygon, shape
from skimage.segmentation import watershed

from baseline.detect.regularise import DEFAULT_TOLERANCE_DEG, regularise_polygon


def separate_instances(
    extent: np.ndarray,
    boundary: np.ndarray,
    *,
    extent_threshold: float = 0.5,
    boundary_threshold: float = 0.5,
    min_seed_px: int = 4,
    min_area_px: int = 12,
    split_thresholds: Sequence[float] = (),
    min_split_px: int | None = None,
) -> np.ndarray:
    """Label image (int32, 0 = background) of building instances.

    ``extent`` and ``boundary`` are probabilities on the same grid. Seeds are
    the extent where the boundary is under ``boundary_threshold``, at least
    ``min_seed_px`` large; each of ``split_thresholds`` (stricter, in turn) then
    splits a seed that holds two or more parts of at least ``min_split_px``
    (default ``min_seed_px``) under it. Parts of the extent that no seed reaches
    (a building too small to have an interior) become instances of their own;
    instances under ``min_area_px`` are dropped.
    """
    mask = extent > extent_threshold
    if not mask.any():
        return np.zeros(extent.shape, dtype=np.int32)
    seeds_mask = mask & (boundary < boundary_threshold)
    seeds, n = ndimage.label(seeds_mask)
    if n:
        sizes = np.bincount(seeds.ravel(), minlength=n + 1)
        small = sizes < min_seed_px
        small[0] = False
        seeds[small[seeds]] = 0
    for threshold in split_thresholds:
        if threshold < boundary_threshold:
            seeds = split_seeds(seeds, boundary, threshold, min_seed_px if min_split_px is None else min_split_px)
    labels = watershed_where_contested(boundary.astype(np.float32), seeds, mask)
    orphans, m = ndimage.label(mask & (labels == 0))
    if m:
        labels[orphans > 0] = orphans[orphans > 0] + labels.max()
    labels, _, _ = _relabel(labels)
    sizes = np.bincount(labels.ravel())
    tiny = sizes < min_area_px
    tiny[0] = False
    labels[tiny[labels]] = 0
    return _relabel(labels)[0]


def watershed_where_contested(relief: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The marker watershed of ``seeds`` over ``relief`` inside ``mask``, run only where it decides anything.

    The flood never crosses outside ``mask`` (4-connected, as the watershed's own neighbourhood),
    so each connected part of the mask is flooded on its own: a part holding one seed label goes
    wholly to it, a part holding none stays 0, and only parts holding two or more labels (touching
    buildings) need the watershed, on their bounding box. Most buildings stand alone, so this does
    a fraction of the work of flooding the whole tile. The labels (int32) are the whole tile's
    watershed where the relief has no ties; a tied pixel goes by the heap's order, which here
    depends only on its own part.
    """
    parts, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, dtype=np.int32)
    seeded = seeds > 0
    base = np.int64(int(seeds.max()) + 1)
    pairs = np.unique(parts[seeded].astype(np.int64) * base + seeds[seeded])
    part_of, label_of = pairs // base, (pairs % base).astype(np.int32)
    per_part = np.bincount(part_of, minlength=n + 1)
    single = per_part[part_of] == 1
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[part_of[single]] = label_of[single]
    labels = lookup[parts]
    boxes = ndimage.find_objects(parts)
    for part in np.flatnonzero(per_part >= 2):
        box = boxes[part - 1]
        inside = parts[box] == part
        flooded = watershed(relief[box], markers=np.where(inside, seeds[box], 0), mask=inside)
        labels[box][inside] = flooded[inside]
    return labels


def split_seeds(seeds: np.ndarray, boundary: np.ndarray, threshold: float, min_part_px: int) -> np.ndarray:
    """``seeds`` with every seed that holds two or more parts of at least
    ``min_part_px`` where ``boundary < threshold`` replaced by those parts.

    The rest of a split seed's pixels are left unseeded, for the watershed to
    hand to the nearest part across the weakest relief. Seeds with one such
    part or none are kept whole, so a stricter threshold never shrinks or
    removes a building's seed, it only divides it.
    """
    parts, n = ndimage.label((seeds > 0) & (boundary < threshold))
    if n < 2:
        return seeds
    inside = parts > 0
    parent = np.zeros(n + 1, dtype=np.int64)
    parent[parts[inside]] = seeds[inside]
    large = np.bincount(parts[inside], minlength=n + 1) >= min_part_px
    large[0] = False
    per_seed = np.bincount(parent[large], minlength=int(seeds.max()) + 1)
    divided = per_seed >= 2
    divided[0] = False
    if not divided.any():
        return seeds
    kept = large & divided[parent]
    out = np.where(divided[seeds], 0, seeds)
    new = kept[parts]
    out[new] = parts[new] + int(seeds.max())
    return out


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive labels 1..n (0 stays 0)."""
    from skimage.segmentation import relabel_sequential

    out, fw, inv = relabel_sequential(labels)
    return out.astype(np.int32), fw, inv


def polygons_from_labels(
    labels: np.ndarray,
    transform: Affine,
    *,
    simplify_px: float = 0.75,
    min_hole_px: float = 16.0,
    regularise_deg: float = DEFAULT_TOLERANCE_DEG,
) -> dict[int, Polygon]:
    """One polygon per label in CRS coordinates (largest part; small holes filled).

    ``simplify_px`` is the Douglas-Peucker tolerance in pixels: enough to remove
    the staircase of a diagonal edge, not enough to cut a corner off.
    ``regularise_deg`` is how far off its axes an edge may be and still be
    snapped to them (0: keep the traced outline); the outline it snaps is
    simplified by one pixel, steps under a pixel merge and off-axis edges
    under five pixels are taken for corners the grid cut.
    """
    pixel = abs(transform.a * transform.e - transform.b * transform.d) ** 0.5
    parts: dict[int, list[Polygon]] = defaultdict(list)
    for geom, value in features.shapes(labels, mask=labels > 0, connectivity=4, transform=transform):
        parts[int(value)].append(shape(geom))
    out: dict[int, Polygon] = {}
    for value, polys in parts.items():
        poly = max(polys, key=lambda p: p.area)
        holes = [h for h in poly.interiors if Polygon(h).area >= min_hole_px * pixel * pixel]
        poly = Polygon(poly.exterior, holes)
        poly = poly.simplify(simplify_px * pixel, preserve_topology=True)
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
            if poly.geom_type != "Polygon":
                candidates = [g for g in getattr(poly, "geoms", []) if g.geom_type == "Polygon"]
                if not candidates:
                    continue
                poly = max(candidates, key=lambda p: p.area)
        if regularise_deg > 0 and not poly.is_empty:
            poly = regularise_polygon(poly, tolerance_deg=regularise_deg, outline_m=pixel, merge_m=pixel,
                                      min_free_edge_m=5 * pixel)
        if not poly.is_empty and poly.area > 0:
            out[value] = poly
    return out
