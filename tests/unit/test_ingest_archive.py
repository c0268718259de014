"""Local archives: multi-asset STAC Items stacked as VRTs, vendor metadata, product names, masks and errors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from rasterio.transform import from_origin

from baseline.core.scene import SENSOR_LANDSAT, SENSOR_S2, SENSOR_VHR
from baseline.errors import ConfigError, InputFileError, InvalidValueError, OutputError, SceneError
from baseline.ingest import ArchiveSource
from baseline.ingest.archive import SENSOR_LANDSAT_L1, nominal_overpass, parse_product_name
from baseline.ingest.vendor import (
    off_nadir_from_sat_elevation,
    parse_imd_text,
    read_vendor_metadata,
)
from baseline.preprocess import city_grid_for, plan_tiles, prepare_tile
from baseline.preprocess.masks import class_band_unusable, qa_pixel_unusable, scl_unusable
from baseline.synth.solar import solar_position

X0, Y0 = 385500.0, 6672900.0
UTM35 = CRS.from_epsg(32635)


def write_band(path: Path, data: np.ndarray, gsd: float, *, x0: float = X0, y0: float = Y0,
               crs: str = "EPSG:32635", nodata: float | None = None) -> Path:
    """One single-band raster; JP2 written losslessly (the driver defaults to lossy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                   crs=crs, transform=from_origin(x0, y0, gsd, gsd))
    if nodata is not None:
        profile["nodata"] = nodata
    if path.suffix == ".jp2":
        profile.update(driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def write_item(folder: Path, item_id: str, assets: dict[str, dict], props: dict) -> Path:
    """A STAC Item with one asset per band."""
    doc = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None,
           "properties": {"datetime": "2024-06-14T09:50:29Z", **props}, "assets": assets, "links": []}
    path = folder / f"{item_id}.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def s2_item(folder: Path, *, keys=("B02", "B03", "B04", "B08", "SCL"), suffix=".tif", scl=None, refl=None,
            raster_bands: dict | None = None, props: dict | None = None) -> dict[str, np.ndarray]:
    """A Sentinel-2 L2A Item: four 10 m bands (8 x 8 px) and a 20 m SCL (4 x 4 px); returns what was written."""
    rng = np.random.default_rng(1)
    if refl is None:
        refl = rng.integers(200, 3000, size=(4, 8, 8), dtype=np.uint16)
    if scl is None:
        scl = np.array([[4, 4, 5, 6], [4, 8, 9, 4], [3, 4, 4, 10], [0, 4, 5, 5]], np.uint8)
    assets = {}
    for i, key in enumerate(keys[:4]):
        href = f"{key}{suffix}"
        write_band(folder / href, refl[i], 10.0)
        assets[key] = {"href": href, "type": "image/tiff", "roles": ["data"]}
        if raster_bands:
            assets[key]["raster:bands"] = [raster_bands]
    write_band(folder / f"{keys[4]}{suffix}", scl, 20.0)
    assets[keys[4]] = {"href": f"{keys[4]}{suffix}", "roles": ["data"]}
    assets["thumbnail"] = {"href": "preview.png", "type": "image/png", "roles": ["thumbnail"]}
    write_item(folder, "S2B_T35VLG_20240614", assets,
               {"platform": "sentinel-2b", "view:sun_elevation": 50.5, "view:sun_azimuth": 170.0, **(props or {})})
    return {"refl": refl, "scl": scl}


# --- multi-asset Items ---


@pytest.mark.parametrize(("keys", "suffix"), [
    (("B02", "B03", "B04", "B08", "SCL"), ".tif"),
    (("blue", "green", "red", "nir", "scl"), ".tif"),
    (("B02", "B03", "B04", "B08", "SCL"), ".jp2"),
])
def test_s2_item_is_stacked_with_nearest_scl(tmp_path, keys, suffix):
    written = s2_item(tmp_path / "arc", keys=keys, suffix=suffix)
    refl, scl = written["refl"], written["scl"]
    refl[:, 0, 0] = 0  # a no-data pixel in every band
    for i, key in enumerate(keys[:4]):  # rewrite with the hole
        write_band(tmp_path / "arc" / f"{key}{suffix}", refl[i], 10.0)
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "cache").scenes()
    assert scene.scene_id == "S2B_T35VLG_20240614"
    assert scene.sensor == SENSOR_S2
    assert scene.bands == ("blue", "green", "red", "nir", "scl")
    assert scene.crs.to_epsg() == 32635 and scene.gsd_m == 10.0 and scene.shape == (8, 8)
    assert scene.scale == pytest.approx(1e-4)
    assert (scene.sun_elevation_deg, scene.sun_azimuth_deg) == (50.5, 170.0)
    assert Path(scene.href).parent == tmp_path / "cache" and Path(scene.href).suffix == ".vrt"
    values = scene.data.values
    np.testing.assert_array_equal(values[:4], refl)
    np.testing.assert_array_equal(values[4], np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1))
    valid = scene.valid.values
    assert not valid[0, 0] and valid.sum() == 63
    assert len(scene.checksum) == 64


def test_s2_item_offset_is_applied_as_counts_of_1e4(tmp_path):
    refl = np.full((4, 8, 8), 3000, np.uint16)
    refl[:, 0, :] = 1000  # reflectance (1000 - 1000) / 1e4 = 0: dark but valid
    refl[:, 1, 0] = 0  # no data
    refl[2, 2, 2] = 1001
    s2_item(tmp_path / "arc", refl=refl, raster_bands={"scale": 0.0001, "offset": -0.1, "nodata": 0})
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "cache").scenes()
    values = scene.data.values
    assert scene.scale == pytest.approx(1e-4)
    assert (values[:4, 3:, :] == 2000).all()  # (3000 * 1e-4 - 0.1) / 1e-4
    assert (values[:4, 0, :] == 1).all()  # kept valid: never 0 for a valid pixel
    assert values[2, 2, 2] == 1
    assert (values[:4, 1, 0] == 0).all()
    assert not scene.valid.values[1, 0] and scene.valid.values[0, :].all()


def test_s2_processing_baseline_4_gets_its_offset_without_raster_bands(tmp_path):
    refl = np.full((4, 8, 8), 2500, np.uint16)
    s2_item(tmp_path / "arc", refl=refl, props={"s2:processing_baseline": "05.10"})
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "cache").scenes()
    assert (scene.data.values[:4] == 1500).all()


def landsat_item(folder: Path, *, qa: np.ndarray | None = None, dn: np.ndarray | None = None,
                 keys=("SR_B2", "SR_B3", "SR_B4", "SR_B5", "QA_PIXEL")) -> dict[str, np.ndarray]:
    """A Landsat 8 C2 L2 Item, 30 m, 6 x 6 px, with USGS scale and offset in raster:bands."""
    if dn is None:
        dn = np.full((4, 6, 6), 10000, np.uint16)
        dn[3] = 20000
    if qa is None:
        qa = np.full((6, 6), 21824, np.uint16)  # clear land
    rb = {"scale": 2.75e-05, "offset": -0.2, "nodata": 0}
    assets = {}
    for i, key in enumerate(keys[:4]):
        write_band(folder / f"{key}.TIF", dn[i], 30.0, x0=X0, y0=Y0)
        assets[key] = {"href": f"{key}.TIF", "type": "image/tiff; application=geotiff", "raster:bands": [rb]}
    write_band(folder / f"{keys[4]}.TIF", qa, 30.0)
    assets[keys[4]] = {"href": f"{keys[4]}.TIF", "type": "image/tiff; application=geotiff"}
    write_item(folder, "LC08_L2SP_188018_20240614_02_T1", assets,
               {"platform": "landsat-8", "landsat:correction": "L2SP",
                "view:sun_elevation": 48.0, "view:sun_azimuth": 160.0})
    return {"dn": dn, "qa": qa}


@pytest.mark.parametrize("keys", [("SR_B2", "SR_B3", "SR_B4", "SR_B5", "QA_PIXEL"),
                                  ("blue", "green", "red", "nir08", "qa_pixel")])
def test_landsat_item_scale_offset_and_qa(tmp_path, keys):
    dn = np.full((4, 6, 6), 10000, np.uint16)
    dn[3] = 20000
    dn[:, 5, 5] = 0
    qa = np.full((6, 6), 21824, np.uint16)
    qa[5, 5] = 1  # fill
    landsat_item(tmp_path / "arc", dn=dn, qa=qa, keys=keys)
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    assert scene.sensor == SENSOR_LANDSAT
    assert scene.bands == ("blue", "green", "red", "nir", "qa_pixel")
    assert scene.gsd_m == 30.0 and scene.scale == pytest.approx(1e-4)
    values = scene.data.values
    reflectance = values[:4].astype(float) * scene.scale
    np.testing.assert_allclose(reflectance[:3, 0, 0], 10000 * 2.75e-5 - 0.2, atol=0.5e-4)
    np.testing.assert_allclose(reflectance[3, 0, 0], 20000 * 2.75e-5 - 0.2, atol=0.5e-4)
    assert (values[:4, 5, 5] == 0).all()
    np.testing.assert_array_equal(values[4], qa)
    assert not scene.valid.values[5, 5] and scene.valid.values.sum() == 35


def test_item_without_a_band_asset_is_a_clear_error(tmp_path):
    s2_item(tmp_path / "arc")
    item_path = tmp_path / "arc" / "S2B_T35VLG_20240614.json"
    doc = json.loads(item_path.read_text())
    del doc["assets"]["B08"]
    item_path.write_text(json.dumps(doc))
    with pytest.raises(SceneError, match=r"S2B_T35VLG_20240614\.json: no asset for band\(s\) nir"):
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()


def test_item_whose_band_file_is_missing_names_it(tmp_path):
    s2_item(tmp_path / "arc")
    (tmp_path / "arc" / "B04.tif").unlink()
    with pytest.raises(InputFileError, match=r"B04\.tif: asset 'B04' of S2B_T35VLG_20240614\.json is missing"):
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()


def test_single_asset_items_still_open_as_before(tmp_path):
    from tests.factories import write_cog_scene

    write_cog_scene(tmp_path / "arc", name="vhr")
    landsat_item(tmp_path / "arc" / "ls")
    scenes = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    assert [s.scene_id for s in scenes] == ["LC08_L2SP_188018_20240614_02_T1", "test-vhr"]
    only = ArchiveSource(tmp_path / "arc", sensors=(SENSOR_VHR,), cache_dir=tmp_path / "c").scenes()
    assert [s.scene_id for s in only] == ["test-vhr"]


# --- preprocess masks with the scene's own class band ---


def test_prepare_tile_masks_with_the_scenes_own_scl(tmp_path):
    refl = np.full((4, 8, 8), 800, np.uint16)  # dark: the bright-cloud rule would mask nothing
    scl = s2_item(tmp_path / "arc", refl=refl)["scl"]
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    grid = city_grid_for(scene, UTM35)
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 1000.0)[0], halo_m=0.0, chip_px=8, overlap_px=0)
    expected = ~scl_unusable(np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1))  # each 20 m class covers 2 x 2
    assert prepared.in_image.all()
    np.testing.assert_array_equal(prepared.valid, expected)
    assert (~prepared.valid).sum() == 5 * 4  # classes 8, 9, 3, 10 and 0: five 20 m pixels
    assert (prepared.pixels[:, ~expected] == 0).all() and (prepared.pixels[:, expected] == 800).all()


def test_prepare_tile_masks_with_landsat_qa_pixel(tmp_path):
    qa = np.full((6, 6), 21824, np.uint16)
    qa[0:2, 0:3] = 22280  # cloud (bit 3) + dilated cloud (bit 1) + high confidence bits
    qa[4, 4] = 23888  # cloud shadow (bit 4)
    qa[5, 0] = 54596  # cirrus (bit 2)
    landsat_item(tmp_path / "arc", qa=qa)
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    grid = city_grid_for(scene, UTM35)
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 1000.0)[0], halo_m=0.0, chip_px=6, overlap_px=0)
    expected = np.ones((6, 6), bool)
    expected[0:2, 0:3] = False
    expected[4, 4] = False
    expected[5, 0] = False
    np.testing.assert_array_equal(prepared.valid, expected)


def test_qa_pixel_bits():
    values = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128, 21824, 21952, 22280, 23888, 54596], np.uint16)
    unusable = qa_pixel_unusable(values)
    assert unusable.tolist() == [False, True, True, True, True, True, False, False, False,
                                 False, False, True, True, True]
    np.testing.assert_array_equal(class_band_unusable("qa_pixel", values), unusable)
    scl = np.array([0, 3, 4, 5, 6, 8, 9, 10, 11])
    assert class_band_unusable("scl", scl).tolist() == [True, True, False, False, False, True, True, True, False]
    with pytest.raises(InvalidValueError, match="class band"):
        class_band_unusable("fmask", values)


# --- vendor metadata ---

IMD = """version = "28.3";
generationTime = 2016-08-04T02:16:02.000000Z;
productOrderId = "058180416010_01_P001";
bandId = "Multi";
numRows = 6;
numColumns = 8;
productLevel = "LV2A";
radiometricLevel = "Corrected";
bitsPerPixel = 16;
BEGIN_GROUP = BAND_B
\tULLon = 24.93;
\tabsCalFactor = 1.260825e-02;
\teffectiveBandwidth = 5.430000e-02;
END_GROUP = BAND_B
BEGIN_GROUP = BAND_G
\tabsCalFactor = 9.713071e-03;
\teffectiveBandwidth = 6.300000e-02;
END_GROUP = BAND_G
BEGIN_GROUP = BAND_R
\tabsCalFactor = 5.829815e-03;
\teffectiveBandwidth = 5.740000e-02;
END_GROUP = BAND_R
BEGIN_GROUP = BAND_N
\tabsCalFactor = 9.232860e-03;
\teffectiveBandwidth = 9.890000e-02;
END_GROUP = BAND_N
outputFormat = "GeoTIFF";
BEGIN_GROUP = IMAGE_1
\tsatId = "WV02";
\tmode = "FullSwath";
\tCatId = "1030010059DB4A00";
\tTLCTime = 2016-08-03T10:16:41.123456Z;
\tnumTLC = 2;
\tTLCList = (
\t(0, 0.000000),
\t(6, 0.000824) );
\tfirstLineTime = 2016-08-03T10:16:41.123456Z;
\tavgLineRate = 7280.00;
\tmeanSunAz = 186.4;
\tmeanSunEl = 47.9;
\tmeanSatAz = 36.0;
\tmeanSatEl = 68.5;
\tmeanOffNadirViewAngle = 19.2;
\tcloudCover = 0.000;
END_GROUP = IMAGE_1
END;
"""

XML = """<?xml version="1.0" encoding="UTF-8"?>
<isd>
  <IMD>
    <BANDID>Multi</BANDID>
    <BAND_B><ABSCALFACTOR>1.260825e-02</ABSCALFACTOR><EFFECTIVEBANDWIDTH>5.430000e-02</EFFECTIVEBANDWIDTH></BAND_B>
    <BAND_G><ABSCALFACTOR>9.713071e-03</ABSCALFACTOR><EFFECTIVEBANDWIDTH>6.300000e-02</EFFECTIVEBANDWIDTH></BAND_G>
    <BAND_R><ABSCALFACTOR>5.829815e-03</ABSCALFACTOR><EFFECTIVEBANDWIDTH>5.740000e-02</EFFECTIVEBANDWIDTH></BAND_R>
    <BAND_N><ABSCALFACTOR>9.232860e-03</ABSCALFACTOR><EFFECTIVEBANDWIDTH>9.890000e-02</EFFECTIVEBANDWIDTH></BAND_N>
    <IMAGE>
      <SATID>WV02</SATID>
      <FIRSTLINETIME>2016-08-03T10:16:41.123456Z</FIRSTLINETIME>
      <MEANSUNAZ>186.4</MEANSUNAZ>
      <MEANSUNEL>47.9</MEANSUNEL>
      <MEANSATEL>68.5</MEANSATEL>
    </IMAGE>
  </IMD>
</isd>
"""


def write_vhr(folder: Path, stem: str, count: int = 4) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    data = (np.arange(count * 6 * 8, dtype=np.uint16).reshape(count, 6, 8) + 1) * 10
    profile = dict(driver="GTiff", width=8, height=6, count=count, dtype="uint16", crs="EPSG:32635",
                   transform=from_origin(X0, Y0, 0.5, 0.5))
    with rasterio.open(folder / f"{stem}.TIF", "w", **profile) as dst:
        dst.write(data)
    return data


def test_imd_is_parsed():
    doc = parse_imd_text(IMD)
    assert list(k for k in doc if k.startswith("BAND_")) == ["BAND_B", "BAND_G", "BAND_R", "BAND_N"]
    assert doc["IMAGE_1"]["firstlinetime"] == "2016-08-03T10:16:41.123456Z"
    assert doc["IMAGE_1"]["tlclist"].startswith("(")
    assert doc["IMAGE_1"]["meansunel"] == "47.9"


def test_imd_raster_loads_as_a_vhr_scene(tmp_path):
    data = write_vhr(tmp_path / "arc", "16AUG03101641-M2AS-058180416010_01_P001")
    (tmp_path / "arc" / "16AUG03101641-M2AS-058180416010_01_P001.IMD").write_text(IMD)
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c",
                             describe={"*.TIF": {"scale": 1e-4}}).scenes()
    assert scene.sensor == SENSOR_VHR
    assert scene.bands == ("blue", "green", "red", "nir")
    assert scene.acquired_at == datetime(2016, 8, 3, 10, 16, 41, 123456, tzinfo=UTC)
    assert (scene.sun_elevation_deg, scene.sun_azimuth_deg, scene.off_nadir_deg) == (47.9, 186.4, 19.2)
    assert scene.band_time_offsets_s == {}  # the IMD has no per-band time: none invented
    assert scene.gsd_m == 0.5
    np.testing.assert_array_equal(scene.data.values, data)


def test_dg_xml_gives_the_same_and_off_nadir_from_sat_elevation(tmp_path):
    write_vhr(tmp_path / "arc", "P001")
    (tmp_path / "arc" / "P001.XML").write_text(XML)
    (tmp_path / "arc" / "P001.TIF.aux.xml").write_text("<PAMDataset/>")  # GDAL's sidecar: not vendor metadata
    meta = read_vendor_metadata(tmp_path / "arc" / "P001.XML")
    assert meta.bands == ("blue", "green", "red", "nir") and meta.satellite == "WV02"
    assert meta.radiance_gain("red") == pytest.approx(5.829815e-03 / 5.74e-02)
    # WorldView-2 at 770 km: seen 68.5 deg above the horizon is about 19 deg off nadir at the satellite
    assert meta.off_nadir_deg == pytest.approx(off_nadir_from_sat_elevation(68.5, "WV02"))
    assert 18.5 < meta.off_nadir_deg < 19.8
    (scene,) = ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    assert scene.scene_id == "P001" and scene.sun_elevation_deg == 47.9


def test_vendor_metadata_errors_name_the_file_and_field(tmp_path):
    write_vhr(tmp_path / "arc", "P002", count=3)
    (tmp_path / "arc" / "P002.IMD").write_text(IMD)
    with pytest.raises(SceneError, match=r"P002\.IMD: 4 BAND groups .* but P002\.TIF has 3 bands"):
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    (tmp_path / "arc" / "P002.IMD").write_text(IMD.replace("\tfirstLineTime = 2016-08-03T10:16:41.123456Z;\n", ""))
    with pytest.raises(SceneError, match=r"P002\.IMD: IMAGE group has no firstLineTime"):
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()


# --- bare rasters: product names and describe ---


def test_product_names():
    ls = parse_product_name("LC08_L1TP_224078_20200518_B2B3B4_crop")
    assert (ls.mission, ls.sensor, ls.day, ls.acquired_at) == ("LC08", SENSOR_LANDSAT_L1, date(2020, 5, 18), None)
    assert parse_product_name("LE07_L2SP_016035_20020524_20200916_02_T1_SR_B3").sensor == SENSOR_LANDSAT
    s2 = parse_product_name("S2B_MSIL2A_20210926T095029_N0301_R079_T35VLG_20210926T113433")
    assert s2.acquired_at == datetime(2021, 9, 26, 9, 50, 29, tzinfo=UTC) and s2.sensor == SENSOR_S2
    assert parse_product_name("S2B_RGBNIR_20210926_Seurasaari").day == date(2021, 9, 26)
    assert parse_product_name("S2_NDVI_Seurasaari") is None
    assert parse_product_name("S2A_X_20211399") is None  # not a date


def test_nominal_overpass_time():
    # at the equator the pass is at the node's local time: 10:30 for Sentinel-2
    assert nominal_overpass(date(2021, 3, 20), 30.0, 0.0, "S2") == datetime(2021, 3, 20, 8, 30, tzinfo=UTC)
    # Sentinel-2 products over Helsinki (tile 35VLG) are sensed at about 09:50 UTC
    helsinki = nominal_overpass(date(2021, 9, 26), 24.9, 60.17, "S2")
    assert datetime(2021, 9, 26, 9, 35, tzinfo=UTC) < helsinki < datetime(2021, 9, 26, 10, 5, tzinfo=UTC)
    # GRASS's North Carolina sample: the Landsat 7 scene p016r035 of 2002-05-24 has, in its .met file,
    # sun elevation 64.77 and azimuth 120.88 deg at Raleigh (35.75 N, 78.69 W)
    when = nominal_overpass(date(2002, 5, 24), -78.69, 35.75, "LE07")
    sun = solar_position(when, -78.69, 35.75)
    assert sun.elevation_deg == pytest.approx(64.77, abs=1.0) and sun.azimuth_deg == pytest.approx(120.88, abs=1.5)


def test_named_raster_loads_with_sun_from_a_nominal_time(tmp_path, caplog):
    data = np.zeros((4, 5, 6), np.uint16)
    data[:, 1:, 1:] = 1200
    folder = tmp_path / "arc"
    folder.mkdir()
    profile = dict(driver="GTiff", width=6, height=5, count=4, dtype="uint16", crs="EPSG:32635",
                   transform=from_origin(X0, Y0, 10, 10))
    with rasterio.open(folder / "S2A_MSIL2A_20230601_city.tif", "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("B02", "B03", "B04", "B08")
    with caplog.at_level(logging.WARNING, logger="baseline.ingest.archive"):
        (scene,) = ArchiveSource(folder, cache_dir=tmp_path / "c").scenes()
    assert "NOMINAL" in caplog.text
    assert scene.bands == ("blue", "green", "red", "nir") and scene.sensor == SENSOR_S2
    assert scene.acquired_at.date() == date(2023, 6, 1) and 9 <= scene.acquired_at.hour <= 10
    assert scene.valid.values.sum() == 20 and not scene.valid.values[0].any()


def test_describe_gives_bands_in_file_order_time_sun_and_scale(tmp_path):
    folder = tmp_path / "arc"
    folder.mkdir()
    data = np.stack([np.full((4, 4), v, np.float32) for v in (30, 20, 10, 60)])
    profile = dict(driver="GTiff", width=4, height=4, count=4, dtype="float32", crs="EPSG:32632",
                   transform=from_origin(600000, 5797980, 10, 10))
    with rasterio.open(folder / "crop.tif", "w", **profile) as dst:
        dst.write(data)
    describe = {"crop.tif": {"sensor": "sentinel-2-l2a", "bands": ["B04", "B03", "B02", "B08"],
                             "datetime": "2019-07-22T10:30:00Z", "sun_elevation": 55.0, "sun_azimuth": 160.0,
                             "scale": 1 / 255, "id": "trucks"}}
    (scene,) = ArchiveSource(folder, describe=describe, cache_dir=tmp_path / "c").scenes()
    assert scene.scene_id == "trucks" and scene.bands == ("red", "green", "blue", "nir")
    assert scene.data.values[scene.band_index("blue")].max() == 10.0
    assert scene.scale == pytest.approx(1 / 255) and scene.sun_elevation_deg == 55.0


def test_describe_errors(tmp_path):
    folder = tmp_path / "arc"
    write_band(folder / "x.tif", np.ones((4, 4), np.uint16), 10.0)
    with pytest.raises(ConfigError, match="unknown key"):
        ArchiveSource(folder, describe={"x.tif": {"sensor": "vhr", "colour": "red"}})
    with pytest.raises(ConfigError, match=r"describe names y\.tif but no such raster"):
        ArchiveSource(folder, cache_dir=tmp_path / "c", describe={
            "x.tif": {"sensor": "vhr", "bands": ["red"], "datetime": "2024-01-01T10:00:00Z"},
            "y.tif": {"sensor": "vhr"}}).scenes()
    with pytest.raises(ConfigError, match=r"x\.tif'\] needs 'datetime'"):
        ArchiveSource(folder, cache_dir=tmp_path / "c", describe={"x.tif": {"sensor": "vhr", "bands": ["red"]}}).scenes()
    with pytest.raises(ConfigError, match="not the file's CRS relabelled"):
        ArchiveSource(folder, cache_dir=tmp_path / "c", describe={"x.tif": {
            "sensor": "vhr", "bands": ["red"], "datetime": "2024-01-01T10:00:00Z", "crs": "EPSG:32634"}}).scenes()


def test_unreadable_and_unknown_rasters(tmp_path):
    folder = tmp_path / "arc"
    folder.mkdir()
    (folder / "notes.tif").write_bytes(b"not a tiff")  # no name, no description: skipped
    with pytest.raises(InputFileError, match="no scenes found"):
        ArchiveSource(folder, cache_dir=tmp_path / "c").scenes()
    (folder / "LC08_L1TP_224078_20200518_B2B3B4.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(InputFileError, match=r"LC08_L1TP_224078_20200518_B2B3B4\.tif: not a readable"):
        ArchiveSource(folder, cache_dir=tmp_path / "c").scenes()
    with pytest.raises(InputFileError, match="archive folder not found"):
        ArchiveSource(tmp_path / "nowhere").scenes()


def test_remote_assets_and_unwritable_cache_are_clear_errors(tmp_path):
    s2_item(tmp_path / "arc")
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(OutputError, match="pass cache_dir= a writable folder"):
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "not-a-folder" / "vrt").scenes()
    item_path = tmp_path / "arc" / "S2B_T35VLG_20240614.json"
    doc = json.loads(item_path.read_text())
    doc["assets"]["B03"]["href"] = "https://example.com/B03.tif?sig=secret"
    item_path.write_text(json.dumps(doc))
    with pytest.raises(SceneError, match=r"asset 'B03' is remote \(https://example.com/B03.tif\)") as err:
        ArchiveSource(tmp_path / "arc", cache_dir=tmp_path / "c").scenes()
    assert "secret" not in str(err.value)
