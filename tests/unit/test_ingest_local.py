"""Local COG + STAC ingest: metadata, lazy pixels, masks, and clear errors."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from baseline.errors import InputFileError, SceneError
from baseline.ingest import LocalFilesSource, open_scene
from tests.factories import write_cog_scene


def test_open_scene_reads_metadata_and_stays_lazy(tmp_path):
    valid = np.ones((300, 400), bool)
    valid[:, :50] = False
    item = write_cog_scene(tmp_path, valid=valid, sun_elevation=33.5, sun_azimuth=201.0,
                           offsets={"blue": -0.1, "green": -0.05, "red": 0.0, "nir": 0.1})
    scene = open_scene(item)
    assert scene.crs.to_epsg() == 32635
    assert scene.gsd_m == pytest.approx(0.3)
    assert scene.shape == (300, 400)
    assert scene.bands == ("blue", "green", "red", "nir")
    assert scene.sun_elevation_deg == 33.5 and scene.sun_azimuth_deg == 201.0
    assert scene.acquired_at.utcoffset().total_seconds() == 0
    assert scene.band_time_offsets_s["nir"] == pytest.approx(0.1)
    assert isinstance(scene.data.data, da.Array) and isinstance(scene.valid.data, da.Array)
    assert scene.bounds == pytest.approx((385500.0, 6672900.0 - 90.0, 385500.0 + 120.0, 6672900.0))
    mask = scene.valid.values
    assert not mask[:, :50].any() and mask[:, 50:].all()
    assert len(scene.checksum) == 64


def test_pixels_round_trip(tmp_path):
    data = np.arange(4 * 300 * 400, dtype=np.uint16).reshape(4, 300, 400) % 5000
    scene = open_scene(write_cog_scene(tmp_path, data=data))
    np.testing.assert_array_equal(scene.data.values, data)


def test_sentinel2_bands_get_common_names(tmp_path):
    item = write_cog_scene(tmp_path, name="s2", bands=("B02", "B03", "B04", "B08", "SCL"),
                           sensor="sentinel-2-l2a", gsd=10.0, shape=(12, 10))
    scene = open_scene(item)
    assert scene.bands == ("blue", "green", "red", "nir", "scl")
    assert scene.band_index("scl") == 4


def test_missing_sun_angle_is_a_clear_error(tmp_path):
    item = write_cog_scene(tmp_path)
    doc = json.loads(item.read_text())
    del doc["properties"]["view:sun_elevation"]
    item.write_text(json.dumps(doc))
    with pytest.raises(SceneError, match="view:sun_elevation"):
        open_scene(item)


def test_missing_image_names_the_file(tmp_path):
    item = write_cog_scene(tmp_path)
    (tmp_path / "vhr.tif").unlink()
    with pytest.raises(InputFileError, match="vhr.tif"):
        open_scene(item)


def test_source_lists_scenes_and_rejects_empty_folder(tmp_path):
    write_cog_scene(tmp_path / "a", name="vhr")
    write_cog_scene(tmp_path / "a", name="s2", bands=("B02", "B03", "B04", "B08", "SCL"),
                    sensor="sentinel-2-l2a", gsd=10.0, shape=(12, 10))
    (tmp_path / "a" / "render.json").write_text("{}")  # not an Item: ignored
    scenes = LocalFilesSource(tmp_path / "a").scenes()
    assert [s.scene_id for s in scenes] == ["test-s2", "test-vhr"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no STAC Item"):
        LocalFilesSource(tmp_path / "empty").scenes()
