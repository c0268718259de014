"""The data catalog's cities and the example configs: every entry loads, AOIs parse, car parcs say where from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from shapely.geometry import MultiPolygon, Polygon

from baseline.config.catalog import check_bbox, load_city
from baseline.config.schema import load_config
from baseline.errors import ConfigError, InputFileError

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "data_catalog"
CITIES = sorted(p.stem for p in (CATALOG / "cities").glob("*.yaml"))
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def entry(tmp_path: Path, aoi: object, *, name: str = "somewhere", files: dict[str, str] | None = None) -> Path:
    """A one-city catalog in ``tmp_path`` whose entry has ``aoi`` (omitted when None)."""
    cities = tmp_path / "cities"
    cities.mkdir(exist_ok=True)
    raw = {"name": name, "timezone": "UTC", "osm": "osm/somewhere.osm.pbf"}
    if aoi is not None:
        raw["aoi"] = aoi
    (cities / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    for filename, text in (files or {}).items():
        (cities / filename).write_text(text)
    return tmp_path


def square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def test_the_catalog_has_the_example_cities():
    assert {"helsinki", "beijing-2nd-ring", "shanghai-hongkou", "paris", "nairobi"} <= set(CITIES)


@pytest.mark.parametrize("city", CITIES)
def test_every_city_entry_loads(city):
    entry_ = load_city(CATALOG, city)
    assert entry_.name == city
    assert entry_.display_name
    raw = yaml.safe_load(entry_.path.read_text())
    assert raw.get("name", city) == city, "an entry's name must match its file name"
    if entry_.aoi_bbox is not None:
        west, south, east, north = entry_.aoi_bbox
        assert south < north
        polygon = entry_.aoi_polygon()
        assert polygon is not None and polygon.area > 0
        minx, miny, maxx, maxy = polygon.bounds
        assert (miny, maxy) == pytest.approx((south, north))
        if west < east:
            assert (minx, maxx) == pytest.approx((west, east))


@pytest.mark.parametrize("city", CITIES)
def test_every_car_parc_says_where_it_comes_from(city):
    path = CATALOG / "cities" / f"{city}.yaml"
    parc = yaml.safe_load(path.read_text())["car_parc"]
    assert isinstance(parc["year"], int) and 1950 <= parc["year"] <= 2100
    assert isinstance(parc["source"], str) and len(parc["source"].split()) >= 5
    assert isinstance(parc["illustrative"], bool)
    assert parc.get("scope", "city") in ("city", "aoi")
    assert isinstance(parc["note"], str) and parc["note"].strip()
    value = parc["value"]
    if value is None:
        # no ratio published: the note says what figure is needed and where to get it
        assert "registry count" in parc["note"] or "register" in parc["note"]
    else:
        assert isinstance(value, int) and not isinstance(value, bool) and value > 0


@pytest.mark.parametrize("city", ["beijing-2nd-ring", "shanghai-hongkou", "paris", "nairobi"])
def test_real_city_extracts_are_not_shipped_and_say_where_to_get_them(city):
    entry_ = load_city(CATALOG, city)
    assert entry_.osm.startswith("osm/") and entry_.osm.endswith(".osm.pbf")
    assert entry_.osm_url and entry_.osm_url.startswith("https://")
    if not (entry_.path.parent / entry_.osm).exists():
        with pytest.raises(InputFileError, match="OpenStreetMap extract not found") as err:
            entry_.osm_path()
        assert entry_.osm_url in str(err.value)


def test_beijing_aoi_is_the_ring_road_polygon():
    beijing = load_city(CATALOG, "beijing-2nd-ring")
    assert beijing.aoi_path is not None and beijing.aoi_path.name == "beijing-2nd-ring.geojson"
    polygon = beijing.aoi_polygon()
    assert isinstance(polygon, Polygon) and polygon.is_valid
    west, south, east, north = beijing.aoi_bbox
    assert 116.33 < west < 116.36 and 116.43 < east < 116.46
    assert 39.85 < south < 39.87 and 39.94 < north < 39.96
    assert polygon.contains(Polygon(square(116.39, 39.91, 116.40, 39.92)))  # Tian'anmen and the Forbidden City


def test_a_bbox_aoi(tmp_path):
    city = load_city(entry(tmp_path, [24.93, 60.16, 24.96, 60.18]), "somewhere")
    assert city.aoi_bbox == (24.93, 60.16, 24.96, 60.18)
    assert city.aoi_path is None
    assert city.aoi_polygon().bounds == pytest.approx((24.93, 60.16, 24.96, 60.18))


def test_no_aoi_means_none(tmp_path):
    city = load_city(entry(tmp_path, None), "somewhere")
    assert city.aoi_bbox is None and city.aoi_polygon() is None


def test_a_box_across_the_antimeridian(tmp_path):
    city = load_city(entry(tmp_path, [179.8, -17.0, -179.8, -16.6]), "somewhere")
    assert city.aoi_bbox == (179.8, -17.0, -179.8, -16.6)
    polygon = city.aoi_polygon()
    assert isinstance(polygon, MultiPolygon) and len(polygon.geoms) == 2
    assert polygon.area == pytest.approx(0.4 * 0.4)


def test_a_geojson_polygon_aoi(tmp_path):
    geometry = {"type": "Polygon", "coordinates": [[[2.0, 48.0], [3.0, 48.0], [2.5, 49.0], [2.0, 48.0]]]}
    feature = {"type": "Feature", "properties": {}, "geometry": geometry}
    for name, document in (("bare.geojson", geometry), ("feature.geojson", feature),
                           ("collection.geojson", {"type": "FeatureCollection", "features": [feature]})):
        city = load_city(entry(tmp_path, name, files={name: json.dumps(document)}), "somewhere")
        assert city.aoi_bbox == (2.0, 48.0, 3.0, 49.0)
        assert city.aoi_path == (tmp_path / "cities" / name).resolve()
        assert city.aoi_polygon().area == pytest.approx(0.5)


def test_a_geojson_aoi_split_at_the_antimeridian_gives_a_crossing_box(tmp_path):
    document = {"type": "MultiPolygon", "coordinates": [[square(179.5, -17.0, 180.0, -16.5)],
                                                         [square(-180.0, -17.0, -179.7, -16.5)]]}
    city = load_city(entry(tmp_path, "fiji.geojson", files={"fiji.geojson": json.dumps(document)}), "somewhere")
    assert city.aoi_bbox == (179.5, -17.0, -179.7, -16.5)
    assert isinstance(city.aoi_polygon(), MultiPolygon)


@pytest.mark.parametrize(
    ("aoi", "message"),
    [
        ([10.0, 50.0, 11.0], "not a box"),
        ([10.0, 51.0, 11.0, 50.0], "south 51 must be below north 50"),
        ([10.0, 50.0, 11.0, 95.0], "south 50 must be below north 95"),
        ([190.0, 50.0, 11.0, 51.0], "within -180..180"),
        ([10.0, 50.0, 10.0, 51.0], "must differ"),
        (["west", 50.0, 11.0, 51.0], "four finite numbers"),
        ([True, 50.0, 11.0, 51.0], "four finite numbers"),
        ({"west": 10}, "not allowed"),
        (42, "not allowed"),
    ],
)
def test_a_bad_box_names_the_file_and_the_field(tmp_path, aoi, message):
    catalog = entry(tmp_path, aoi)
    with pytest.raises(ConfigError, match=message) as err:
        load_city(catalog, "somewhere")
    assert str(catalog / "cities" / "somewhere.yaml") in str(err.value)
    assert "aoi" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Point", "coordinates": [2.0, 48.0]}), "Point"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "no features"),
        (json.dumps({"features": []}), "not a GeoJSON object"),
        (json.dumps({"type": "Polygon", "coordinates": [square(200.0, 48.0, 201.0, 49.0)]}), "outside lon"),
        (json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}), "invalid polygon"),
    ],
)
def test_a_bad_geojson_aoi_names_the_file_and_the_field(tmp_path, text, message):
    files = {} if text is None else {"area.geojson": text}
    catalog = entry(tmp_path, "area.geojson", files=files)
    with pytest.raises(ConfigError, match=message) as err:
        load_city(catalog, "somewhere")
    assert str(catalog / "cities" / "somewhere.yaml") in str(err.value)
    assert "aoi" in str(err.value)


def test_check_bbox_accepts_integers_and_returns_floats():
    assert check_bbox([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize("config", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_config_validates(config):
    run = load_config(config)
    assert run.name == config.stem
    assert run.city in CITIES, f"{config.name} names a city the catalog lacks"
    load_city(run.catalog, run.city)
    assert run.scene.path == (REPO / ".cache" / "scenes" / run.name).resolve()
    assert run.publish.out == (REPO / "runs" / run.name).resolve()


def test_the_example_configs_cover_each_remote_source():
    runs = {p.stem: load_config(p) for p in CONFIGS}
    assert runs["beijing-2nd-ring-s2"].scene.source == "stac"
    assert runs["beijing-2nd-ring-s2"].scene.stac.endpoint.startswith("https://earth-search.aws.element84.com")
    paris = runs["paris-planetary-computer"].scene
    assert paris.stac.signing == "planetary-computer"
    assert paris.stac.endpoint == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert paris.stac.collections == ["sentinel-2-l2a"]
    nairobi = runs["nairobi-landsat"].scene
    assert nairobi.stac.collections == ["landsat-c2-l2"] and nairobi.selection.strategy == "median"
    hongkou = runs["hongkou-sentinelhub"].scene
    assert hongkou.source == "sentinelhub" and hongkou.sentinelhub.collection.startswith("byoc-")
