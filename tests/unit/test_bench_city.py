"""The bench city: exact periodic copies of a scene's pixels, its map context shifted with them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import CRS

from baseline.bench.city import build_bench_city, tile_context
from baseline.context.osm import MapContext
from baseline.errors import InvalidValueError
from baseline.ingest import open_scene
from tests.factories import write_cog_scene

UTM35 = CRS.from_epsg(32635)


@pytest.fixture
def base(tmp_path):
    valid = np.ones((100, 150), bool)
    valid[:5] = False
    item = write_cog_scene(tmp_path / "base", shape=(100, 150), valid=valid)
    return item.parent


def test_city_pixels_are_periodic_copies_and_the_item_opens(base, tmp_path):
    city = build_bench_city(base, 0.006, tmp_path / "city")  # 77.5 m a side at 0.3 m: 258 px, 3 x 2 copies
    assert (city.rows, city.cols) == (258, 258) and city.copies == (3, 2)
    with rasterio.open(base / "vhr.tif") as src:
        b, bmask = src.read(), src.dataset_mask() > 0
    with rasterio.open(city.scene_dir / "vhr.tif") as src:
        c, cmask = src.read(), src.dataset_mask() > 0
    rows, cols = np.arange(258) % 100, np.arange(258) % 150
    np.testing.assert_array_equal(c, b[:, rows][:, :, cols])
    np.testing.assert_array_equal(cmask, bmask[rows][:, cols])
    scene = open_scene(city.scene_dir / "vhr.json")
    assert scene.data.shape == (4, 258, 258) and scene.gsd_m == pytest.approx(0.3)
    assert scene.bounds == pytest.approx(city.bounds)


def test_context_is_copied_with_the_pixels(base, tmp_path):
    city = build_bench_city(base, 0.006, tmp_path / "city")
    x0, y0 = city.origin
    road = gpd.GeoDataFrame({"road_id": [7]}, geometry=[shapely.LineString([(x0 + 1, y0 - 1), (x0 + 20, y0 - 1)])],
                            crs=UTM35)
    empty = gpd.GeoDataFrame(geometry=[], crs=UTM35)
    ctx = MapContext(UTM35, shapely.box(x0, y0 - 30, x0 + 45, y0), empty, road, road, empty, empty, empty, empty)
    tiled = tile_context(ctx, city)
    assert len(tiled.road_segments) == 6
    assert tiled.road_segments["road_id"].is_unique
    starts = sorted((round(g.coords[0][0] - x0, 3), round(y0 - g.coords[0][1], 3)) for g in tiled.road_segments.geometry)
    assert starts == sorted((1 + j * 45.0, 1 + i * 30.0) for i in range(3) for j in range(2))
    assert tiled.aoi.equals(shapely.box(*city.bounds))


def test_too_small_a_city_is_refused(base, tmp_path):
    with pytest.raises(InvalidValueError, match="bench area"):
        build_bench_city(base, 1e-5, tmp_path / "city")
