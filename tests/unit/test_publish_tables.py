"""publish_tables: GeoParquet 1.1 files that are valid, ordered, reproducible and atomic."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import Point, box

from baseline.core.geoparquet import read_geoparquet
from baseline.core.schemas import BUILDINGS_OUT, TABLE_SCHEMA_VERSION, VEHICLES_OUT
from baseline.errors import OutputError
from baseline.publish import publish_tables, read_table_provenance

TABLES = ("buildings", "vehicles", "indicators_city", "indicators_h3")


def _publish(sample, out_dir, **kwargs):
    return publish_tables(out_dir, sample.buildings, sample.vehicles, sample.indicators_city,
                          sample.indicators_h3, run_id="demo-0123abcd", code_version="9.9.9", **kwargs)


def test_writes_every_table_and_nothing_else(publish_sample, tmp_path):
    paths = _publish(publish_sample, tmp_path)
    assert set(paths) == set(TABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_district_table_is_written_when_given(publish_sample, tmp_path):
    districts = publish_sample.indicators_h3.head(3).rename(columns={"zone_id": "district"})
    paths = _publish(publish_sample, tmp_path, indicators_district=districts.drop(columns="h3_cell"))
    assert paths["indicators_district"].name == "indicators_district.parquet"
    assert list(read_geoparquet(paths["indicators_district"])["district"]) == sorted(districts["district"])


def test_contract_columns_come_first_and_values_round_trip(publish_sample, tmp_path):
    paths = _publish(publish_sample, tmp_path)
    buildings = read_geoparquet(paths["buildings"])
    vehicles = read_geoparquet(paths["vehicles"])
    assert tuple(buildings.columns[: len(BUILDINGS_OUT)]) == BUILDINGS_OUT
    assert tuple(vehicles.columns[: len(VEHICLES_OUT)]) == VEHICLES_OUT
    assert buildings.crs.to_epsg() == 32635
    source = publish_sample.buildings.set_index("building_id").sort_index()
    assert np.allclose(buildings["height_m"], source["height_m"])
    assert np.allclose(buildings.area, source.area)
    assert vehicles["on_road"].dtype == bool


def test_rows_are_sorted_by_their_key(publish_sample, tmp_path):
    paths = _publish(publish_sample, tmp_path)
    assert list(read_geoparquet(paths["buildings"])["building_id"]) == sorted(publish_sample.buildings["building_id"])
    assert list(read_geoparquet(paths["vehicles"])["vehicle_id"]) == sorted(publish_sample.vehicles["vehicle_id"])
    assert list(read_geoparquet(paths["indicators_h3"])["h3_cell"]) == sorted(publish_sample.indicators_h3["h3_cell"])


def test_geo_metadata_is_geoparquet_1_1_with_projjson_and_bbox_covering(publish_sample, tmp_path):
    for path in _publish(publish_sample, tmp_path).values():
        geo = json.loads(pq.read_schema(path).metadata[b"geo"])
        assert geo["version"] == "1.1.0"
        assert geo["primary_column"] == "geometry"
        column = geo["columns"]["geometry"]
        assert column["encoding"] == "WKB"
        assert isinstance(column["crs"], dict), "CRS must be PROJJSON, not a string"
        assert column["crs"]["id"] == {"authority": "EPSG", "code": 32635}
        assert column["covering"] == {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
        assert set(column["geometry_types"]) <= {"Polygon", "MultiPolygon"}


def test_bbox_covering_column_holds_each_geometry(publish_sample, tmp_path):
    for path in _publish(publish_sample, tmp_path).values():
        table = pq.read_table(path, columns=["geometry", "bbox"])
        geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
        bbox = table.column("bbox").combine_chunks()
        got = np.column_stack([bbox.field(k).to_numpy() for k in ("xmin", "ymin", "xmax", "ymax")])
        want = shapely.bounds(geoms)
        assert got.shape == want.shape and len(got) > 0
        # float32-safe containment: the box must hold the geometry, and be tight
        assert np.all(got[:, :2] <= want[:, :2]) and np.all(got[:, 2:] >= want[:, 2:])
        assert np.allclose(got, want, atol=1e-6)


def test_provenance_metadata_sits_beside_geo(publish_sample, tmp_path):
    for name, path in _publish(publish_sample, tmp_path).items():
        meta = read_table_provenance(path)
        assert meta == {"table": name, "schema_version": TABLE_SCHEMA_VERSION,
                        "code_version": "9.9.9", "run_id": "demo-0123abcd"}
        keys = set(pq.read_schema(path).metadata)
        assert {b"geo", b"citybaseline"} <= keys


def test_rerun_gives_byte_identical_files_whatever_the_row_order(publish_sample, tmp_path):
    first = {k: v.read_bytes() for k, v in _publish(publish_sample, tmp_path / "a").items()}
    publish_sample.buildings = publish_sample.buildings.sample(frac=1.0, random_state=99)
    publish_sample.vehicles = publish_sample.vehicles.iloc[::-1]
    second = {k: v.read_bytes() for k, v in _publish(publish_sample, tmp_path / "b").items()}
    assert first == second


def test_a_write_killed_midway_keeps_the_old_file_and_leaves_no_partial(publish_sample, tmp_path, monkeypatch):
    paths = _publish(publish_sample, tmp_path)
    before = paths["buildings"].read_bytes()

    def half_written_then_killed(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PAR1 partial")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", half_written_then_killed)
    publish_sample.buildings = publish_sample.buildings.assign(height_m=1.0)
    with pytest.raises(KeyboardInterrupt):
        _publish(publish_sample, tmp_path)
    assert paths["buildings"].read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_a_failure_while_adding_metadata_leaves_no_partial(publish_sample, tmp_path, monkeypatch):
    import baseline.publish.tables as tables

    def broken(source, target, extra):
        target.write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables, "_copy_with_metadata", broken)
    with pytest.raises(OutputError, match="cannot write"):
        _publish(publish_sample, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("column", ["height_source", "building_id", "score"])
def test_missing_contract_column_is_a_clear_error_and_nothing_is_written(publish_sample, tmp_path, column):
    publish_sample.buildings = publish_sample.buildings.drop(columns=column)
    with pytest.raises(OutputError, match=rf"buildings: missing column\(s\) {column}"):
        _publish(publish_sample, tmp_path)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_invalid_tables_are_refused(publish_sample, tmp_path):
    sample = publish_sample
    bad_class = sample.vehicles.assign(**{"class": "bicycle"})
    with pytest.raises(OutputError, match="'class' has value"):
        publish_tables(tmp_path, sample.buildings, bad_class, sample.indicators_city, sample.indicators_h3)
    no_crs = sample.buildings.set_crs(None, allow_override=True)
    with pytest.raises(OutputError, match="no CRS"):
        publish_tables(tmp_path, no_crs, sample.vehicles, sample.indicators_city, sample.indicators_h3)
    points = sample.vehicles.set_geometry(sample.vehicles.centroid)
    with pytest.raises(OutputError, match="Point not allowed"):
        publish_tables(tmp_path, sample.buildings, points, sample.indicators_city, sample.indicators_h3)
    null_geom = sample.buildings.copy()
    null_geom.loc[null_geom.index[0], "geometry"] = None
    with pytest.raises(OutputError, match="null or empty geometry"):
        publish_tables(tmp_path, null_geom, sample.vehicles, sample.indicators_city, sample.indicators_h3)
    no_key = sample.indicators_h3.drop(columns=["h3_cell", "zone_id"])
    with pytest.raises(OutputError, match="indicators_h3: no key column"):
        publish_tables(tmp_path, sample.buildings, sample.vehicles, sample.indicators_city, no_key)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_withheld_cells_never_leave_with_vehicle_figures(publish_sample, tmp_path):
    cells = publish_sample.indicators_h3.copy()
    leaky = cells["vehicles_withheld"].to_numpy()
    assert leaky.any()
    cells.loc[leaky, "vehicles_total"] = 3.0  # an upstream bug would publish a count of 3
    cells["vehicles_total_est"] = 3.3
    publish_sample.indicators_h3 = cells
    written = read_geoparquet(_publish(publish_sample, tmp_path)["indicators_h3"])
    withheld = written["vehicles_withheld"].to_numpy()
    for column in ("vehicles_total", "vehicles_total_est", "vehicles_on_road", "on_road_share"):
        assert written.loc[withheld, column].isna().all(), column
    assert written.loc[~withheld, "vehicles_total"].notna().all()


def test_zone_id_alone_keys_the_h3_table(publish_sample, tmp_path):
    publish_sample.indicators_h3 = publish_sample.indicators_h3.drop(columns="h3_cell")
    written = read_geoparquet(_publish(publish_sample, tmp_path)["indicators_h3"])
    assert list(written["zone_id"]) == sorted(written["zone_id"])


def test_duplicate_keys_are_ordered_by_geometry(tmp_path):
    from baseline.publish.tables import sort_rows

    frame = gpd.GeoDataFrame({"k": [1, 1, 0]}, geometry=[box(2, 2, 3, 3), box(0, 0, 1, 1), Point(5, 5).buffer(1)],
                             crs=32635)
    once = sort_rows(frame, ("k",))
    again = sort_rows(frame.iloc[[1, 2, 0]], ("k",))
    assert list(once["k"]) == [0, 1, 1]
    assert once.geometry.equals(again.geometry)
