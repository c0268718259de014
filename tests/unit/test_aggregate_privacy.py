"""Privacy: small cells are withheld, and no published total gives one away."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from baseline.aggregate import Capabilities, DetectorRates, MeasuredRate, SceneQuality, aggregate
from baseline.aggregate.privacy import complementary, primary

CRS = "EPSG:32635"
RES = 9
TO_UTM = Transformer.from_crs(4326, CRS, always_xy=True)
BASE = h3.latlng_to_cell(60.1699, 24.9384, RES)  # central Helsinki


def cells_in_a_row(k: int) -> list[str]:
    """``k`` distinct neighbouring cells around BASE."""
    return sorted(h3.grid_disk(BASE, 1))[:k]


def vehicles_in(cells_and_counts: dict[str, int]) -> gpd.GeoDataFrame:
    """Cars at the centre of each cell (within a metre or two), as many as asked."""
    rng = np.random.default_rng(0)
    boxes = []
    for cell, n in cells_and_counts.items():
        lat, lng = h3.cell_to_latlng(cell)
        x, y = TO_UTM.transform(lng, lat)
        for dx, dy in rng.uniform(-2, 2, (n, 2)):
            boxes.append(box(x + dx - 2.2, y + dy - 0.9, x + dx + 2.2, y + dy + 0.9))
    n = len(boxes)
    return gpd.GeoDataFrame({"class": ["car"] * n, "on_road": [True, False] * (n // 2) + [True] * (n % 2),
                             "moving": [False] * n}, geometry=boxes, crs=CRS)


def run(counts: dict[str, int], **kw):
    vehicles = vehicles_in(counts)
    aoi = shapely.box(*vehicles.total_bounds).buffer(300)
    empty_b = gpd.GeoDataFrame({"height_m": []}, geometry=[], crs=CRS)
    roads = gpd.GeoDataFrame({"lanes": []}, geometry=[], crs=CRS)
    return aggregate(
        empty_b, vehicles, roads, aoi, CRS,
        quality=SceneQuality(datetime(2024, 6, 14, tzinfo=UTC), "Europe/Helsinki", "vhr", 0.3, "m@1"),
        rates=DetectorRates(vehicles=MeasuredRate.from_counts(900, 50, 50)), car_parc=None,
        capabilities=Capabilities.for_sensor("vhr", 0.3), n_draws=500, **kw,
    )


def by_cell(ind, column):
    return dict(zip(ind.h3["zone_id"], ind.h3[column], strict=True))


def test_a_cell_with_3_vehicles_is_withheld_and_a_single_small_cell_gets_a_complement():
    a, b, c = cells_in_a_row(3)
    ind = run({a: 40, b: 15, c: 3})
    withheld = by_cell(ind, "vehicles_withheld")
    totals = by_cell(ind, "vehicles_total")
    assert withheld[c] and pd.isna(totals[c])
    # c alone would be city - a - b: the next smallest cell, b, is withheld too
    assert withheld[b] and pd.isna(totals[b])
    assert not withheld[a] and totals[a] == 40
    row = ind.h3.set_index("zone_id").loc[c]
    for column in ("vehicles_on_road", "vehicles_total_est", "vehicles_total_lo", "on_road_share", "vehicles_parked"):
        assert pd.isna(row[column]), column
    assert "privacy" in row["notes"]
    city = ind.city.iloc[0]
    assert city["vehicles_total"] == 58  # still published: the suppression holds


def test_the_city_total_does_not_reveal_a_withheld_cell():
    a, b, c, d = cells_in_a_row(4)
    counts = {a: 40, b: 15, c: 3, d: 12}
    ind = run(counts)
    city_total = int(ind.city.iloc[0]["vehicles_total"])
    published = ind.h3[~ind.h3["vehicles_withheld"]]
    remainder = city_total - int(published["vehicles_total"].sum())
    hidden_with_vehicles = [cell for cell, n in counts.items() if by_cell(ind, "vehicles_withheld")[cell] and n > 0]
    assert len(hidden_with_vehicles) >= 2
    # the subtraction gives only a sum over several cells, never one cell's count
    assert remainder == sum(counts[cell] for cell in hidden_with_vehicles)
    assert all(remainder != counts[cell] for cell in hidden_with_vehicles)
    # the complement is the smallest published cell: d (12), not b (15)
    assert by_cell(ind, "vehicles_withheld")[d] and not by_cell(ind, "vehicles_withheld")[b]


def test_two_small_cells_protect_each_other():
    a, b, c, d = cells_in_a_row(4)
    ind = run({a: 40, b: 15, c: 3, d: 4})
    withheld = by_cell(ind, "vehicles_withheld")
    assert withheld[c] and withheld[d]
    assert not withheld[a] and not withheld[b]


def test_nothing_small_means_nothing_complementary():
    a, b = cells_in_a_row(2)
    ind = run({a: 40, b: 15})
    withheld = by_cell(ind, "vehicles_withheld")
    assert not withheld[a] and not withheld[b]
    assert int(ind.city.iloc[0]["vehicles_total"]) == 55


def test_the_threshold_is_configurable():
    a, b, c = cells_in_a_row(3)
    ind = run({a: 40, b: 15, c: 3}, min_vehicles_per_cell=2)
    assert not by_cell(ind, "vehicles_withheld")[c]


def test_a_city_with_few_vehicles_publishes_no_vehicle_figures():
    (a,) = cells_in_a_row(1)
    city = run({a: 4}).city.iloc[0]
    assert city["vehicles_withheld"] and pd.isna(city["vehicles_total"])


def test_districts_are_protected_against_the_city_total_too():
    a, b, c = cells_in_a_row(3)
    vehicles = vehicles_in({a: 40, b: 15, c: 3})
    # one district per cell: the district holding c is small and needs a complement
    cells = {cell: shapely.Polygon([TO_UTM.transform(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])
             for cell in (a, b, c)}
    districts = gpd.GeoDataFrame({"district": ["A", "B", "C"]}, geometry=list(cells.values()), crs=CRS)
    ind = run({a: 40, b: 15, c: 3}, districts=districts)
    d = dict(zip(ind.district["zone_id"], ind.district["vehicles_withheld"], strict=True))
    assert d["C"] and d["B"] and not d["A"]
    assert len(vehicles) == int(ind.city.iloc[0]["vehicles_total"])


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([40, 15, 3], [False, True, True]),
        ([40, 15, 3, 4], [False, False, True, True]),
        ([40, 15, 3, 0], [False, True, True, True]),  # an empty cell is no complement
        ([3], [True]),
    ],
)
def test_complementary_suppression_on_plain_arrays(counts, expected):
    counts = np.array(counts)
    withheld, published = complementary(counts, primary(counts, 10), [counts > 0], np.array([True]), 10)
    assert withheld.tolist() == expected
    assert published.tolist() == ([False] if counts.tolist() == [3] else [True])
