"""Shadow geometry: the ground-shadow target and heights measured from shadow rays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.detect.frames import bearing_to_pixel
from baseline.detect.shadows import (
    MAX_RAY_INCIDENCE_DEG,
    chained_shadow_heights,
    facing_cosine,
    ground_shadow,
    rasterize_ground_shadow,
    roof_darkness,
    shaded_roofs,
    shadow_heights,
    trailing_edge_pixels,
)

GSD = 0.3
T = from_origin(0.0, 120.0, GSD, GSD)
SHAPE = (400, 400)


def _labels(polys):
    return features.rasterize([(p, i + 1) for i, p in enumerate(polys)], out_shape=SHAPE, transform=T).astype(np.int32)


@pytest.mark.parametrize("azimuth", [180.0, 135.0, 250.0])
def test_recovers_known_height_from_shadow(azimuth: float) -> None:
    # a 20 m box under a 40 degree sun casts a 23.84 m shadow
    assert 20.0 / math.tan(math.radians(40.0)) == pytest.approx(23.84, abs=0.01)
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, azimuth, T, SHAPE).astype(np.float32)
    result = shadow_heights(_labels([building]), shadow, T, 40.0, azimuth)[1]
    assert result.rays_used >= 10
    assert result.height_m == pytest.approx(20.0, abs=1.0)
    assert result.sigma_m < 2.0


def test_ground_shadow_excludes_footprints_and_has_the_right_length() -> None:
    building = box(0, 0, 10, 10)
    geom = ground_shadow([building], np.array([20.0]), 40.0, 180.0)  # sun in the south: shadow to the north
    assert not geom.intersects(building.buffer(-0.01))
    assert geom.bounds[3] == pytest.approx(10 + 23.84, abs=0.01)


def test_rays_that_hit_another_building_are_censored() -> None:
    tall = box(45.0, 45.0, 70.0, 65.0)
    # a neighbour 10 m north, inside the 23.8 m shadow: rays from the tall one meet it
    neighbour = box(40.0, 75.0, 75.0, 90.0)
    shadow = rasterize_ground_shadow([tall, neighbour], np.array([20.0, 3.0]), 40.0, 180.0, T, SHAPE)
    result = shadow_heights(_labels([tall, neighbour]), shadow.astype(np.float32), T, 40.0, 180.0)
    assert result[1].rays_used == 0
    assert math.isnan(result[1].height_m)
    # the low neighbour's own shadow is measured (3 m -> 3.58 m long)
    assert result[2].height_m == pytest.approx(3.0, abs=0.6)


def test_rays_leaving_the_valid_area_are_censored() -> None:
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, 180.0, T, SHAPE).astype(np.float32)
    valid = np.ones(SHAPE, dtype=bool)
    valid[:150, :] = False  # north of y = 75 m is unseen
    result = shadow_heights(_labels([building]), shadow, T, 40.0, 180.0, valid=valid)[1]
    assert result.rays_used == 0


def test_a_shadow_map_that_fades_at_the_no_data_edge_still_censors_its_rays() -> None:
    # mosaics hold 0 where nothing was seen; next to a diagonal no-data edge a
    # ray's interpolated sample mixes those zeros in, and the ray must go on to
    # the unseen pixel (censored) rather than end on the mix
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, 135.0, T, SHAPE).astype(np.float32)
    rows, cols = np.indices(SHAPE)
    valid = rows + cols >= 330  # the shadow runs north-west into the unseen corner
    shadow[~valid] = 0.0
    result = shadow_heights(_labels([building]), shadow, T, 40.0, 135.0, valid=valid)[1]
    assert result.rays_used < 3


def _roof_scene(h_tall: float, h_low: float, gap_m: float):
    """A tall box south of a lower one under a 40 degree sun from the south: maps as a mosaic holds them."""
    tall = box(45.0, 45.0, 70.0, 65.0)
    low = box(40.0, 65.0 + gap_m, 75.0, 65.0 + gap_m + 30.0)
    heights = np.array([h_tall, h_low])
    labels = _labels([tall, low])
    shadow = rasterize_ground_shadow([tall, low], heights, 40.0, 180.0, T, SHAPE).astype(np.float32)
    brightness = np.full(SHAPE, 0.5, dtype=np.float32)
    brightness[shadow > 0] = 0.15
    reach = (h_tall - h_low) / math.tan(math.radians(40.0))  # shadow reach above the low roof
    if reach > 0:
        roof_shade = features.rasterize([(tall.union(box(45.0, 65.0, 70.0, 65.0 + reach)), 1)], out_shape=SHAPE,
                                        transform=T).astype(bool) & (labels == 2)
        brightness[roof_shade] = 0.15
    return labels, shadow, brightness


def test_roof_darkness_is_relative_to_the_sunlit_part_of_each_roof() -> None:
    labels, _, brightness = _roof_scene(25.0, 10.0, 5.0)
    dark = roof_darkness(brightness * np.where(labels == 1, 2.0, 1.0), labels)
    assert dark[labels == 0].min() == 1.0
    assert np.median(dark[labels == 1]) == pytest.approx(1.0)
    assert dark[labels == 2].min() == pytest.approx(0.3, abs=0.01)  # shaded part of the low roof


def test_a_shadow_falling_on_a_lower_roof_measures_the_taller_building() -> None:
    labels, shadow, brightness = _roof_scene(25.0, 10.0, 5.0)
    first = shadow_heights(labels, shadow, T, 40.0, 180.0)
    assert math.isnan(first[1].height_m)  # every ground ray meets the low building
    assert first[2].height_m == pytest.approx(10.0, abs=0.6)
    chained = chained_shadow_heights(labels, shadow, roof_darkness(brightness, labels), T, 40.0, 180.0, first)
    assert chained[1].height_m == pytest.approx(25.0, abs=1.0)
    assert chained[1].rays_used >= 10
    assert chained[2] == first[2]  # measured heights are kept


def _shaded_low_roof(h_tall: float = 25.0, h_low: float = 10.0):
    """The roof scene with the tall building's height known and the low one's own shadow unmeasured."""
    from baseline.detect.shadows import ShadowHeight

    labels, shadow, brightness = _roof_scene(h_tall, h_low, 5.0)
    known = {1: ShadowHeight(h_tall, 0.3, 20, 20), 2: ShadowHeight(float("nan"), float("nan"), 0, 20)}
    return labels, shadow, brightness, known


def test_a_known_building_whose_shadow_ends_on_a_roof_measures_that_roof() -> None:
    """hB = hA - (shadow run from A's wall to where B's roof turns sunlit) x tan(elevation)."""
    labels, shadow, brightness, known = _shaded_low_roof()
    darkness = roof_darkness(brightness, labels)
    off = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, known)
    assert math.isnan(off[2].height_m)  # the caster's direction only, as before
    on = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, known, shade_neighbours=True)
    assert on[2].height_m == pytest.approx(10.0, abs=0.6)
    assert on[2].rays_used >= 10
    assert on[2].sigma_m > known[1].sigma_m  # the caster's own uncertainty is carried
    assert on[1] == known[1]


def test_a_dark_patch_on_a_taller_roof_is_not_read_as_a_lower_roof() -> None:
    """A's shadow stops at B's wall along most of it (B is taller); dark fixtures by the wall on a sixth of it
    would, believed, put B under A: the rays that stop at the wall contradict them."""
    labels, shadow, brightness = _roof_scene(8.0, 10.0, 5.0)
    from baseline.detect.shadows import ShadowHeight

    known = {1: ShadowHeight(8.0, 0.3, 20, 20), 2: ShadowHeight(float("nan"), float("nan"), 0, 20)}
    patches = [box(x, 70.0, x + 1.2, 72.5) for x in (47.0, 55.0, 63.0)]
    dark = features.rasterize([(p, 1) for p in patches], out_shape=SHAPE, transform=T).astype(bool) & (labels == 2)
    brightness[dark] = 0.15
    darkness = roof_darkness(brightness, labels)
    believed = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, known, shade_neighbours=True,
                                      max_contradicting=1e9)
    assert believed[2].height_m < 8.0
    chained = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, known, shade_neighbours=True)
    assert math.isnan(chained[2].height_m)


def test_roof_darkness_counts_only_bluer_darkness_as_shadow() -> None:
    """Shadow keeps the skylight, bluer than the sun; a pitched roof's far facet is darker in every band alike."""
    labels = _labels([box(40.0, 40.0, 80.0, 80.0), box(10.0, 10.0, 30.0, 30.0)])
    brightness = np.full(SHAPE, 0.3, dtype=np.float32)
    blueness = np.full(SHAPE, 0.8, dtype=np.float32)
    rows, _ = np.indices(SHAPE)
    half = np.zeros(SHAPE, dtype=bool)
    for lab in (1, 2):  # the southern half of each roof
        half |= (labels == lab) & (rows > rows[labels == lab].mean())
    brightness[(labels > 0) & half] = 0.1  # the southern half of both roofs is darker
    blueness[(labels == 1) & half] = 0.8 * 1.75  # on roof 1 because of a shadow, on roof 2 a facet
    plain = roof_darkness(brightness, labels)
    gated = roof_darkness(brightness, labels, blueness=blueness, min_blueness=1.3)
    for lab in (1, 2):
        assert plain[(labels == lab) & half].max() == pytest.approx(1 / 3, abs=0.01)
    assert gated[(labels == 1) & half].max() == pytest.approx(1 / 3, abs=0.01)
    assert gated[(labels == 2) & half].min() == 1.0
    grey = roof_darkness(brightness, labels, blueness=np.full(SHAPE, np.nan, np.float32), min_blueness=1.3)
    np.testing.assert_array_equal(grey, plain)  # no blue or NIR band: darkness alone decides


def test_a_shadow_stopping_at_a_taller_wall_gives_only_an_upper_bound() -> None:
    labels, shadow, brightness = _roof_scene(8.0, 10.0, 5.0)
    first = shadow_heights(labels, shadow, T, 40.0, 180.0)
    chained = chained_shadow_heights(labels, shadow, roof_darkness(brightness, labels), T, 40.0, 180.0, first)
    assert math.isnan(chained[1].height_m)
    # no taller than the wall it shades plus the shaded gap: 10 + 5 tan(40)
    assert chained[1].upper_bound_m == pytest.approx(10.0 + 5.0 * math.tan(math.radians(40.0)), abs=0.6)


def test_a_lit_object_standing_in_the_shadow_is_bridged_up_to_the_gap() -> None:
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, 180.0, T, SHAPE).astype(np.float32)
    # a 1.5 m lit strip (a car roof) across the whole shadow, 8 m north of the wall
    car = features.rasterize([(box(40.0, 73.0, 75.0, 74.5), 1)], out_shape=SHAPE, transform=T).astype(bool)
    shadow[car] = 0.0
    labels = _labels([building])
    cut = shadow_heights(labels, shadow, T, 40.0, 180.0)[1]
    bridged = shadow_heights(labels, shadow, T, 40.0, 180.0, max_gap_m=2.4)[1]
    assert cut.height_m == pytest.approx(8.0 * math.tan(math.radians(40.0)), abs=0.6)
    assert bridged.height_m == pytest.approx(20.0, abs=1.0)


def test_a_few_dark_roof_patches_at_a_taller_wall_do_not_make_the_building_taller() -> None:
    """An 8 m building's shadow stops at a 10 m neighbour's wall; dark fixtures on that roof next to the wall
    (a sixth of the wall the shadow meets) must not read as its shadow climbing on: most rays stop at the wall."""
    labels, shadow, brightness = _roof_scene(8.0, 10.0, 5.0)
    patches = [box(x, 70.0, x + 1.2, 72.5) for x in (47.0, 55.0, 63.0)]  # three 1.2 m fixtures' shadows
    dark = features.rasterize([(p, 1) for p in patches], out_shape=SHAPE, transform=T).astype(bool) & (labels == 2)
    brightness[dark] = 0.15
    first = shadow_heights(labels, shadow, T, 40.0, 180.0)
    darkness = roof_darkness(brightness, labels)
    believed = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, first, max_contradicting=1e9)
    assert believed[1].height_m > 11.0  # the patches alone, believed, make it taller than its neighbour
    chained = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, first)
    assert math.isnan(chained[1].height_m)
    assert chained[1].upper_bound_m == pytest.approx(10.0 + 5.0 * math.tan(math.radians(40.0)), abs=0.6)



def test_rays_start_only_on_walls_that_face_the_shadow() -> None:
    """A 60 x 12 m slab whose long walls run 2 degrees off the shadow direction: rays from those walls
    would run along them inside a shadow sliver under a metre wide, which a predicted shadow map does not
    resolve (on the seed-2026 render such rays made a 23 m building 0.8 m tall); only the end wall facing
    the shadow starts rays."""
    from shapely import affinity

    slab = affinity.rotate(box(50.0, 30.0, 62.0, 90.0), -30.0, origin=(56.0, 60.0))  # long axis to azimuth 30
    end_wall = shapely.LineString(list(slab.exterior.coords)[1:3])  # the north-east end (the box's top edge)
    labels = _labels([slab])
    drow, dcol = bearing_to_pixel(T, 32.0)  # shadow towards azimuth 32: sun at 212
    every = trailing_edge_pixels(labels, drow, dcol, max_incidence_deg=90.0)
    facing = trailing_edge_pixels(labels, drow, dcol)
    far = facing_cosine(labels, *every, drow, dcol) < math.cos(math.radians(MAX_RAY_INCIDENCE_DEG))

    def distance_to_end_wall(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        xs, ys = T * (cols + 0.5, rows + 0.5)
        return shapely.distance(shapely.points(xs, ys), end_wall)

    assert far.sum() > len(facing[0])  # most edge pixels the old rule kept lie along the long walls
    assert distance_to_end_wall(*every).max() > 30.0
    assert distance_to_end_wall(*facing).max() < 1.0
    assert len(facing[0]) >= 12.0 / GSD * 0.8  # the whole end wall still starts rays


def _blocks(n: int = 4) -> np.ndarray:
    """``n`` separate 30 x 30 px roofs in a row."""
    labels = np.zeros((60, 40 * n), dtype=np.int32)
    for i in range(n):
        labels[15:45, 40 * i + 5 : 40 * i + 35] = i + 1
    return labels


def test_shaded_roofs_marks_only_roofs_both_darker_and_bluer_than_the_scene() -> None:
    labels = _blocks(5)
    brightness = np.full(labels.shape, 0.2, dtype=np.float32)
    blueness = np.full(labels.shape, 0.7, dtype=np.float32)
    brightness[labels == 2], blueness[labels == 2] = 0.06, 1.2  # wholly in shadow: dark, skylight-blue
    brightness[labels == 3] = 0.06  # a dark roofing, no bluer
    blueness[labels == 4] = 1.2  # a bluish roofing in full sun
    shaded = shaded_roofs(brightness, blueness, labels, min_blueness=1.4, max_brightness=0.7)
    assert shaded.tolist() == [False, False, True, False, False, False]
    none = shaded_roofs(brightness, np.full(labels.shape, np.nan, dtype=np.float32), labels,
                        min_blueness=1.4, max_brightness=0.7)
    assert not none.any()  # no blue or near-infrared band: nothing can be told


def test_a_shadow_crossing_a_wholly_shaded_roof_measures_its_caster_on_the_ground_beyond() -> None:
    # a 30 m building 5 m south of an 8 m deep, 3 m high one: under a 40 degree sun its
    # 35.75 m shadow covers the low roof (the shadow is still 19 m up at its far edge)
    tall, low = box(45.0, 45.0, 70.0, 65.0), box(40.0, 70.0, 75.0, 78.0)
    labels = _labels([tall, low])
    shadow = rasterize_ground_shadow([tall, low], np.array([30.0, 3.0]), 40.0, 180.0, T, SHAPE).astype(np.float32)
    censored = shadow_heights(labels, shadow, T, 40.0, 180.0)
    assert math.isnan(censored[1].height_m)  # every ray meets the low building
    shaded = np.array([False, False, True])
    crossed = shadow_heights(labels, shadow, T, 40.0, 180.0, shaded=shaded)
    assert crossed[1].height_m == pytest.approx(30.0, abs=1.0)
    # the low building's own rays end where the tall one's shadow does: only an upper bound
    assert math.isnan(crossed[2].height_m)
    assert crossed[2].upper_bound_m == pytest.approx(19.1, abs=1.0)


def test_a_shadow_crossing_a_lower_roof_and_landing_beyond_it_measures_its_caster() -> None:
    # a 30 m building 5 m south of a wider, 8 m deep, 3 m high one (40 degree sun from the south):
    # its shadow darkens a strip across the low roof and lands on the ground beyond, ending 35.75 m out
    tall, low = box(45.0, 45.0, 70.0, 65.0), box(25.0, 70.0, 90.0, 78.0)
    labels = _labels([tall, low])
    heights = np.array([30.0, 3.0])
    shadow = rasterize_ground_shadow([tall, low], heights, 40.0, 180.0, T, SHAPE).astype(np.float32)
    brightness = np.full(SHAPE, 0.5, dtype=np.float32)
    brightness[shadow > 0] = 0.15
    strip = features.rasterize([(box(45.0, 70.0, 70.0, 78.0), 1)], out_shape=SHAPE, transform=T).astype(bool)
    brightness[strip] = 0.15  # the tall one's shadow on the low roof
    first = shadow_heights(labels, shadow, T, 40.0, 180.0)
    assert math.isnan(first[1].height_m)  # every ground ray meets the low building
    assert first[2].height_m == pytest.approx(3.0, abs=0.6)  # the low roof's sunlit ends measure it
    darkness = roof_darkness(brightness, labels)
    without = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, first)
    assert math.isnan(without[1].height_m)  # the roof never turns sunlit under the rays
    crossed = chained_shadow_heights(labels, shadow, darkness, T, 40.0, 180.0, first, through_roofs=True)
    assert crossed[1].height_m == pytest.approx(30.0, abs=1.0)
    assert crossed[2] == first[2]


def test_a_shadow_crossing_two_lower_roofs_is_traced_on_over_both() -> None:
    # a 40 m building's 47.7 m shadow (40 degree sun from the south) darkens strips across two
    # wider, 3 m high buildings in a row, and ends on the ground beyond the second
    tall = box(45.0, 45.0, 70.0, 65.0)
    low1, low2 = box(25.0, 70.0, 90.0, 76.0), box(25.0, 82.0, 90.0, 88.0)
    labels = _labels([tall, low1, low2])
    heights = np.array([40.0, 3.0, 3.0])
    shadow = rasterize_ground_shadow([tall, low1, low2], heights, 40.0, 180.0, T, SHAPE).astype(np.float32)
    brightness = np.full(SHAPE, 0.5, dtype=np.float32)
    brightness[shadow > 0] = 0.15
    strips = features.rasterize([(box(45.0, 70.0, 70.0, 88.0), 1)], out_shape=SHAPE, transform=T).astype(bool)
    brightness[strips & (labels > 1)] = 0.15
    first = shadow_heights(labels, shadow, T, 40.0, 180.0)
    assert math.isnan(first[1].height_m)
    assert first[3].height_m == pytest.approx(3.0, abs=0.6)
    crossed = chained_shadow_heights(labels, shadow, roof_darkness(brightness, labels), T, 40.0, 180.0, first,
                                     through_roofs=True)
    assert crossed[1].height_m == pytest.approx(40.0, abs=1.0)
