"""The STAC source against a real STAC API and COG storage on loopback.

pystac-client searches, odc-stac and GDAL read COGs over HTTP with range
requests, and the Planetary Computer signer asks a token service: all real
clients, talking HTTP to :mod:`tests.servers.stac_server`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio

from baseline.config.schema import SceneSpec
from baseline.errors import ConfigError, SourceError
from baseline.ingest.http import Deadline, HttpPolicy
from baseline.ingest.signing import PlanetaryComputerSigner
from baseline.ingest.sources import area_of_interest, open_source
from tests.servers.stac_scenes import (
    CITY,
    Acq,
    city_lonlat,
    publish_landsat,
    publish_s2,
    publish_s2_across_antimeridian,
    reflectance_plane,
)
from tests.servers.stac_server import Fault, StacServer

TUE = datetime(2024, 6, 4, 9, 50, tzinfo=UTC)  # 12:50 in Helsinki
WED = datetime(2024, 6, 12, 9, 50, tzinfo=UTC)
SAT = datetime(2024, 6, 15, 9, 50, tzinfo=UTC)
WEST_OF_CITY = (384000.0, 6670500.0, 384900.0, 6673500.0)  # cloud in the tile, not over the city


@pytest.fixture
def server(tmp_path):
    srv = StacServer(tmp_path / "storage").start()
    yield srv
    srv.stop()


def spec_for(server: StacServer, tmp_path, **overrides) -> SceneSpec:
    stac = {"endpoint": server.url, "collections": ["sentinel-2-l2a"], **overrides.pop("stac", {})}
    selection = {"start": "2024-06-01", "end": "2024-06-30", **overrides.pop("selection", {})}
    http = {"timeout_s": 3, "max_retries": 3, "backoff_s": 0.1, "backoff_max_s": 3, "deadline_s": 60,
            **overrides.pop("http", {})}
    return SceneSpec(source="stac", path=tmp_path / "staged", stac=stac, selection=selection, http=http, **overrides)


def scenes_of(spec: SceneSpec, bbox=None, timezone: str = "Europe/Helsinki"):
    aoi = area_of_interest(bbox or city_lonlat(), timezone)
    return open_source(spec, folder=spec.path, aoi=aoi, show_progress=False).scenes()


def staged_files(spec: SceneSpec) -> list[str]:
    return sorted(p.name for p in spec.path.glob("*")) if spec.path.exists() else []


def expected_counts(scene, band: str) -> np.ndarray:
    rows, cols = scene.shape
    t = scene.transform
    c, r = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    return np.rint(reflectance_plane(band, t.c + c * t.a, t.f + r * t.e) * 10000)


def test_the_clearest_pass_over_the_city_wins_not_the_clearest_tile(server, tmp_path):
    root = server.root
    publish_s2(server, root, Acq("S2B_TUE", TUE, [CITY], tile_cloud_cover=3.0))  # 3% of the tile, all over the city
    publish_s2(server, root, Acq("S2B_WED", WED, [WEST_OF_CITY], tile_cloud_cover=70.0))
    spec = spec_for(server, tmp_path)
    (scene,) = scenes_of(spec)

    assert scene.sensor == "sentinel-2-l2a" and scene.scene_id.endswith("2024-06-12")
    assert scene.crs.to_epsg() == 32635 and scene.gsd_m == pytest.approx(10.0)
    assert scene.bands == ("blue", "green", "red", "nir", "scl")
    data = scene.data.values
    for i, band in enumerate(("blue", "green", "red", "nir")):  # offset -0.1 removed, 1e-4 counts, right place
        np.testing.assert_allclose(data[i], expected_counts(scene, band), atol=1)
    assert (data[4] == 4).all() and scene.valid.values.all()
    assert (scene.sun_elevation_deg, scene.sun_azimuth_deg) == (48.0, 170.0)
    with rasterio.open(scene.href) as src:
        assert src.crs.to_epsg() == 32635 and src.dtypes[0] == "uint16"

    import json

    prov = json.loads(scene.href.with_suffix(".json").read_text())["properties"]["citybaseline:provenance"]
    measured = {a["key"]: a for a in prov["acquisitions"]}
    assert list(measured) == ["sentinel-2-l2a-2024-06-12"]
    assert measured["sentinel-2-l2a-2024-06-12"]["cloud_fraction_over_city"] == 0.0
    assert measured["sentinel-2-l2a-2024-06-12"]["acquired_at_local"].startswith("2024-06-12T12:50")
    assert prov["endpoint"] == server.url


def test_weekday_and_local_hour_windows(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [WEST_OF_CITY], 70.0))
    publish_s2(server, server.root, Acq("S2B_SAT", SAT, [], 0.0))
    (weekend,) = scenes_of(spec_for(server, tmp_path))
    assert weekend.scene_id.endswith("2024-06-15")  # the clearest of all

    (weekday,) = scenes_of(spec_for(server, tmp_path, selection={"weekdays": ["mon", "tue", "wed", "thu", "fri"]}))
    assert weekday.scene_id.endswith("2024-06-12")

    with pytest.raises(SourceError, match="between 07:00 and 10:00 local time") as err:
        scenes_of(spec_for(server, tmp_path, selection={"local_hours": [7, 10]}))
    assert "widen scene.selection" in err.value.hint


def test_a_second_run_reuses_the_staged_scene_without_reading_pixels(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    spec = spec_for(server, tmp_path)
    (first,) = scenes_of(spec)
    reads_before = len(server.hits_for("/files/S2B_WED/blue.tif"))
    (second,) = scenes_of(spec)
    assert second.checksum == first.checksum
    assert len(server.hits_for("/files/S2B_WED/blue.tif")) == reads_before  # searched and measured, not re-read
    assert staged_files(spec) == [f"{first.href.stem}.json", f"{first.href.stem}.tif"]


def test_median_composite_fills_each_pass_clouds_from_the_other(server, tmp_path):
    west_half = (CITY[0] - 500, CITY[1] - 500, (CITY[0] + CITY[2]) / 2, CITY[3] + 500)
    east_half = ((CITY[0] + CITY[2]) / 2, CITY[1] - 500, CITY[2] + 500, CITY[3] + 500)
    publish_s2(server, server.root, Acq("S2B_TUE", TUE, [west_half], 20.0))
    publish_s2(server, server.root, Acq("S2B_WED", WED, [east_half], 20.0))
    spec = spec_for(server, tmp_path, selection={"strategy": "median", "max_cloud_fraction": 0.6})
    (scene,) = scenes_of(spec)
    assert "median" in scene.scene_id and scene.bands == ("blue", "green", "red", "nir")
    assert scene.valid.values.mean() > 0.98  # a clear observation almost everywhere (SCL is 20 m)
    data = scene.data.values
    valid = scene.valid.values
    np.testing.assert_allclose(data[2][valid], expected_counts(scene, "red")[valid], atol=1)


def test_landsat_collection2_level2_scale_offset_and_qa_pixel(server, tmp_path):
    publish_landsat(server, server.root, Acq("LC09_TUE", TUE, [(CITY[0], CITY[1], CITY[0] + 300, CITY[3])], 5.0))
    spec = spec_for(server, tmp_path, stac={"collections": ["landsat-c2-l2"]},
                    selection={"max_cloud_fraction": 0.5})
    (scene,) = scenes_of(spec)
    assert scene.sensor == "landsat-c2-l2" and scene.gsd_m == pytest.approx(30.0)
    assert scene.bands == ("blue", "green", "red", "nir", "qa_pixel")
    data = scene.data.values
    np.testing.assert_allclose(data[3], expected_counts(scene, "nir"), atol=1.5)  # 2.75e-5 steps, then 1e-4
    qa = data[4]
    assert set(np.unique(qa)) == {21824, 22280}  # clear and cloud, bits intact for the mask
    cloud_cols = (scene.transform.c + (np.arange(scene.shape[1]) + 0.5) * 30) < CITY[0] + 300
    assert (qa[:, cloud_cols] == 22280).all() and (qa[:, ~cloud_cols] == 21824).all()


def test_planetary_computer_style_items_are_signed_and_resigned_after_a_403(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_PC", WED, [], 0.0), style="planetary-computer", signed=True)
    server.fail("/signed/S2B_PC/B04.tif", Fault(403))  # storage refuses once, as for an expired signature
    spec = spec_for(server, tmp_path, stac={"signing": "planetary-computer", "sas_endpoint": f"{server.url}/sas"})
    (scene,) = scenes_of(spec)
    data = scene.data.values
    np.testing.assert_allclose(data[2], expected_counts(scene, "red"), atol=1)  # offset from processing baseline
    assert scene.sun_elevation_deg == pytest.approx(48.0)  # from s2:mean_solar_zenith 42
    assert len(server.hits_for("/sas/sentinel-2-l2a")) >= 2  # signed, then signed again after the 403
    unsigned = [h for h in server.hits_for("/signed/") if "sig=" not in h.query]
    assert not unsigned


def test_unsigned_reads_of_signed_storage_fail_clearly(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_PC", WED, [], 0.0), style="planetary-computer", signed=True)
    with pytest.raises(SourceError, match="HTTP 403") as err:
        scenes_of(spec_for(server, tmp_path))
    assert "scene.stac.signing" in err.value.hint
    assert staged_files(spec_for(server, tmp_path)) == []


def test_tokens_are_renewed_before_they_expire(server):
    server.token_lifetime_s = 1.0
    signer = PlanetaryComputerSigner(f"{server.url}/sas", HttpPolicy(), Deadline(30, "test"))
    first = signer.sign(f"{server.url}/signed/x.tif", "sentinel-2-l2a")
    assert signer.sign(f"{server.url}/signed/y.tif", "sentinel-2-l2a").split("?")[1] == first.split("?")[1]
    time.sleep(0.6)  # past half the token's life: renewed before it can expire mid-read
    third = signer.sign(f"{server.url}/signed/x.tif", "sentinel-2-l2a")
    assert third != first and signer.tokens_fetched == 2


def test_search_retries_429_honouring_retry_after_and_5xx(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    server.fail("/search", Fault(429, {"Retry-After": "1"}), Fault(503), Fault(502))
    (scene,) = scenes_of(spec_for(server, tmp_path))
    searches = server.hits_for("/search")
    assert [h.status for h in searches[:4]] == [429, 503, 502, 200]
    assert searches[1].at - searches[0].at >= 0.95  # waited as told


def test_a_retry_after_beyond_the_cap_fails_now_not_in_an_hour(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    server.fail("/search", Fault(429, {"Retry-After": "3600"}))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="3600"):
        scenes_of(spec_for(server, tmp_path))
    assert time.monotonic() - t0 < 10


def test_storage_429s_beyond_gdal_retries_wait_for_retry_after_then_read(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    server.fail("/files/S2B_WED/nir.tif", *[Fault(429, {"Retry-After": "1"})] * 5)  # GDAL tries 3 times
    (scene,) = scenes_of(spec_for(server, tmp_path))
    np.testing.assert_allclose(scene.data.values[3], expected_counts(scene, "nir"), atol=1)
    statuses = [h.status for h in server.hits_for("/files/S2B_WED/nir.tif")]
    assert statuses[:5] == [429] * 5 and 206 in statuses[5:]
    probes = [h for h in server.hits_for("/files/S2B_WED/nir.tif") if h.range == "bytes=0-0"]
    assert probes and probes[-1].status == 206 and probes[-1].at - probes[0].at >= 0.95


def test_storage_failing_for_good_ends_in_a_typed_error_and_stages_nothing(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    server.fail("/files/S2B_WED/green.tif", *[Fault(500)] * 100)
    spec = spec_for(server, tmp_path, http={"max_retries": 2, "backoff_max_s": 0.5})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="S2B_WED") as err:
        scenes_of(spec)
    assert time.monotonic() - t0 < 30
    assert "retry later" in err.value.hint
    assert [p for p in staged_files(spec) if not p.startswith(".")] == []


def test_a_missing_asset_is_named(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    (server.root / "S2B_WED" / "red.tif").unlink()
    with pytest.raises(SourceError, match="missing") as err:
        scenes_of(spec_for(server, tmp_path))
    assert "S2B_WED" in str(err.value)


def test_an_unreachable_endpoint_fails_within_the_timeout(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = SceneSpec(source="stac", path=tmp_path / "staged", stac={"endpoint": f"http://127.0.0.1:{port}/v1"},
                     http={"timeout_s": 2, "max_retries": 1, "backoff_s": 0.1})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}") as err:
        scenes_of(spec)
    assert time.monotonic() - t0 < 15 and "network" in err.value.hint


def test_a_hanging_endpoint_times_out(server, tmp_path):
    server.fail("/", Fault(200, delay_s=30))
    t0 = time.monotonic()
    with pytest.raises(SourceError):
        scenes_of(spec_for(server, tmp_path, http={"timeout_s": 1, "max_retries": 0}))
    assert time.monotonic() - t0 < 10


def test_no_acquisition_in_the_window_says_what_to_widen(server, tmp_path):
    publish_s2(server, server.root, Acq("S2B_WED", WED, [], 0.0))
    with pytest.raises(SourceError, match="no sentinel-2-l2a acquisition"):
        scenes_of(spec_for(server, tmp_path, selection={"start": "2023-01-01", "end": "2023-01-31"}))


def test_a_city_across_the_antimeridian_from_two_utm_zones(server, tmp_path):
    bbox = publish_s2_across_antimeridian(server, server.root, WED)
    spec = spec_for(server, tmp_path)
    (scene,) = scenes_of(spec, bbox=bbox, timezone="Pacific/Fiji")
    assert scene.crs.to_epsg() == 32760
    searched = [h for h in server.hits_for("/search") if h.method == "POST"]
    assert len(searched) >= 2  # one box each side of 180 degrees
    valid = scene.valid.values
    assert valid.mean() > 0.97  # both halves, no seam of nodata
    red = scene.data.values[2].astype(float) / 10000
    rows, cols = scene.shape
    from pyproj import Transformer

    c, r = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    t = scene.transform
    lon, _ = Transformer.from_crs(32760, 4326, always_xy=True).transform(t.c + c * t.a, t.f + r * t.e)
    truth = 0.10 + 0.5 * (np.where(lon < 0, lon + 360, lon) - 179.88)
    np.testing.assert_allclose(red[valid], truth[valid], atol=6e-4)  # bilinear on a plane: exact but for edges


def test_config_errors_name_the_field(server, tmp_path):
    with pytest.raises(ConfigError, match="scene.stac.collections"):
        scenes_of(spec_for(server, tmp_path, stac={"collections": ["naip"]}))
    with pytest.raises(ConfigError, match="s2cloudless"):
        scenes_of(spec_for(server, tmp_path, stac={"collections": ["landsat-c2-l2"]}, masks={"cloud": "s2cloudless"}))
    with pytest.raises(ConfigError, match="antimeridian"):
        area_of_interest((10.0, 60.0, 10.0, 61.0), "UTC")


def test_s2cloudless_sees_the_cloud_that_scl_missed(server, tmp_path):
    """SCL calls Tuesday clear and Wednesday partly cloudy; s2cloudless, on the L1C twins, says the opposite."""
    from tests.servers.stac_scenes import publish_s2_l1c

    west_strip = (CITY[0] - 100, CITY[1] - 100, CITY[0] + 240, CITY[3] + 100)
    publish_s2(server, server.root, Acq("S2B_TUE", TUE, [], 1.0))
    publish_s2(server, server.root, Acq("S2B_WED", WED, [(CITY[0], CITY[1], CITY[2], CITY[1] + 400)], 1.0))
    publish_s2_l1c(server, server.root, Acq("S2B_TUE", TUE, [CITY], 1.0))
    publish_s2_l1c(server, server.root, Acq("S2B_WED", WED, [west_strip], 1.0))

    (by_classes,) = scenes_of(spec_for(server, tmp_path / "classes"))
    assert by_classes.scene_id.endswith("2024-06-04")

    (scene,) = scenes_of(spec_for(server, tmp_path / "model", masks={"cloud": "s2cloudless"}))
    assert scene.scene_id.endswith("2024-06-12") and scene.bands[-1] == "cloud_mask"
    mask = scene.data.values[4]
    x = scene.transform.c + (np.arange(scene.shape[1]) + 0.5) * scene.transform.a
    assert (mask[:, x < CITY[0] + 180] == 2).all()  # cloud where L1C shows it (60 m pixels)
    assert (mask[:, x > CITY[0] + 420] == 1).all()  # clear elsewhere, SCL's false cloud ignored

    from baseline.preprocess.masks import class_band_unusable

    assert class_band_unusable("cloud_mask", mask)[:, x < CITY[0] + 180].all()


def test_baseline_fetch_stages_and_reports_the_choice(server, tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    from tests.integration.test_run_remote_cli import REPO

    publish_s2(server, server.root, Acq("S2B_TUE", TUE, [CITY], 3.0))
    publish_s2(server, server.root, Acq("S2B_WED", WED, [WEST_OF_CITY], 70.0))
    config = {
        "schema_version": 1, "name": "fetch", "city": "helsinki", "catalog": str(REPO / "data_catalog"),
        "scene": {"source": "stac", "path": str(tmp_path / "staged"), "aoi": list(city_lonlat()),
                  "stac": {"endpoint": server.url}, "selection": {"start": "2024-06-01", "end": "2024-06-30"}},
        "publish": {"out": str(tmp_path / "out")},
    }
    (tmp_path / "fetch.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "baseline.cli.main", "fetch", str(tmp_path / "fetch.yaml"), "--quiet",
         "--json", str(tmp_path / "chosen.json")], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "sentinel-2-l2a-2024-06-12" in result.stderr and "12:50 local" in result.stderr
    assert "cloud over the city 0.0%" in result.stderr
    chosen = json.loads((tmp_path / "chosen.json").read_text())["scenes"][0]
    assert chosen["provenance"]["acquisitions"][0]["cloud_fraction_over_city"] == 0.0
    assert (tmp_path / "staged" / "sentinel-2-l2a-2024-06-12.tif").is_file()
    assert not (tmp_path / "out").exists()  # fetch runs nothing else
