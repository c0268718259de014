"""SentinelHubSource against a Sentinel Hub deployment on loopback, through the real sentinelhub-py client.

The server (tests/servers/sentinelhub_server.py) speaks OAuth2 client
credentials, the Catalog API and the Process API over real HTTP; every
request below is made by sentinelhub-py and requests-oauthlib. Plain http on
loopback needs OAUTHLIB_INSECURE_TRANSPORT (requests-oauthlib's switch for
local testing); production URLs are https and the source refuses to send
credentials in clear otherwise (tested below).
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from scipy import ndimage

from baseline.config.schema import SceneSpec
from baseline.core.secrets import RedactingFilter, forget_secrets, redact, register_secret
from baseline.errors import ConfigError, SourceError
from baseline.ingest.sentinelhub import (
    MAX_PIECE_PX,
    SentinelHubSource,
    default_token_url,
    deployment_for,
)
from baseline.ingest.sources import area_of_interest
from tests.servers.sentinelhub_server import (
    Acquisition,
    Fault,
    SentinelHubServer,
    grid_for,
    landsat_acquisition,
    s2_acquisition,
    utc,
)

CLIENT_ID = "citybaseline-test-client"
SECRET = "s3cret-" + uuid.uuid4().hex
BOX = (24.930, 60.165, 24.950, 60.175)  # central Helsinki, about 1.1 x 1.1 km
UTM = "EPSG:32635"
FAST_HTTP = {"timeout_s": 2.0, "max_retries": 3, "backoff_s": 0.05, "backoff_max_s": 1.0, "deadline_s": 20.0}


@pytest.fixture(autouse=True)
def sh_env(monkeypatch, tmp_path):
    """Credentials in the environment; an empty sentinelhub-py config home; plain http allowed on loopback."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SH_PROFILE", raising=False)
    yield
    forget_secrets()


@pytest.fixture
def server():
    with SentinelHubServer(client_id=CLIENT_ID, client_secret=SECRET) as srv:
        yield srv


def spec(server_url: str, folder: Path, **sections: dict) -> SceneSpec:
    """A ``scene`` section for Sentinel Hub at ``server_url`` with fast HTTP limits, sections overridden."""
    raw = {
        "source": "sentinelhub", "path": str(folder), "aoi": list(BOX),
        "sentinelhub": {"base_url": server_url},
        "selection": {"start": "2024-06-01", "end": "2024-06-30"},
        "http": FAST_HTTP,
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return SceneSpec.model_validate(raw)


def source(scene: SceneSpec, box: tuple[float, float, float, float] = BOX) -> SentinelHubSource:
    return SentinelHubSource(scene, folder=scene.path, aoi=area_of_interest(box, "Europe/Helsinki"),
                             show_progress=False)


def s2_grid(box=BOX, gsd=10.0):
    return grid_for(box, UTM, gsd, margin_m=300.0)


def aoi_mask(transform, shape, box=BOX) -> np.ndarray:
    """Pixels of a server grid whose centre lies in the lon/lat box."""
    rows, cols = shape
    xs, ys = np.meshgrid(transform.c + transform.a * (np.arange(cols) + 0.5),
                         transform.f + transform.e * (np.arange(rows) + 0.5))
    lon, lat = Transformer.from_crs(UTM, 4326, always_xy=True).transform(xs, ys)
    return (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])


def staged_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def expected_counts(scene, acq: Acquisition, band: str, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The staged pixels' values taken independently from the server's arrays at each pixel centre."""
    rows, cols = scene.shape
    t = scene.transform
    xs, ys = np.meshgrid(t.c + t.a * (np.arange(cols) + 0.5), t.f + t.e * (np.arange(rows) + 0.5))
    col, row = ~acq.transform * (xs, ys)
    row, col = np.floor(row).astype(int), np.floor(col).astype(int)
    values = acq.bands[band][row, col].astype("float64") * factor
    return np.clip(np.rint(values), 1, 65535).astype("uint16"), acq.bands["dataMask"][row, col] > 0


# --- happy paths ---


def three_s2_overpasses(server: SentinelHubServer, only: str | None = None) -> dict[str, Acquisition]:
    """Fri: clearest tile but cloud over the city; Mon: cloudy tile, clear city; Thu: some cloud over the city."""
    t, shape = s2_grid()
    city = aoi_mask(t, shape)
    over_city = city.copy()
    over_city[:, : shape[1] // 4] = False  # about 70% of the city
    outside_city = ~ndimage.binary_dilation(city, iterations=5)  # clouds over the tile, 50 m clear of the city
    some_city = city & (np.arange(shape[0])[:, None] < shape[0] * 0.45)
    acqs = {
        "fri": s2_acquisition("S2A_fri", utc("2024-06-14T09:50:21"), UTM, t, shape, cloud=over_city, cloud_cover=3.0,
                              seed=1),
        "mon": s2_acquisition("S2B_mon", utc("2024-06-17T09:50:11"), UTM, t, shape, cloud=outside_city,
                              cloud_cover=45.0, seed=2),
        "thu": s2_acquisition("S2A_thu", utc("2024-06-20T09:50:31"), UTM, t, shape, cloud=some_city, cloud_cover=10.0,
                              seed=3),
    }
    server.add(*(a for k, a in acqs.items() if only in (None, k)))
    return acqs


def test_s2_chooses_the_overpass_clear_over_the_city_and_stages_it_on_the_utm_grid(server, tmp_path):
    acqs = three_s2_overpasses(server)
    scene = source(spec(server.url, tmp_path / "stage")).scenes()[0]

    assert scene.sensor == "sentinel-2-l2a"
    assert scene.bands == ("blue", "green", "red", "nir", "scl")
    assert scene.crs.to_epsg() == 32635 and scene.gsd_m == 10.0 and scene.transform.a == 10.0
    assert scene.acquired_at == utc("2024-06-17T09:50:11")
    item = json.loads(Path(scene.href).with_suffix(".json").read_text())
    prov = item["properties"]["citybaseline:provenance"]
    assert prov["catalog_ids"] == ["S2B_mon"], "the tile's cloud cover (45%) must not decide, the city's must"
    assert prov["cloud_fraction_city"] == 0.0 and prov["coverage_city"] == 1.0 and prov["tile_cloud_cover"] == 0.45
    assert prov["acquired_at_local"] == "2024-06-17T12:50:11+03:00" and prov["local_weekday"] == "mon"
    assert prov["deployment"] == server.url and prov["collection"] == "sentinel-2-l2a"
    assert prov["candidates"]["measured"] == 3 and prov["candidates"]["too_cloudy"] == 1

    data, valid = scene.data.values, scene.valid.values
    want, imaged = expected_counts(scene, acqs["mon"], "B02", 10000.0)
    assert valid.all() and imaged.all()
    np.testing.assert_array_equal(data[0], want)
    want_nir, _ = expected_counts(scene, acqs["mon"], "B08", 10000.0)
    np.testing.assert_array_equal(data[3], want_nir)
    assert set(np.unique(data[4])) == {4}
    sizes = [(h.detail["width"], h.detail["height"]) for h in server.process_hits()]
    assert len(sizes) == 4 and max(max(s) for s in sizes) <= MAX_PIECE_PX  # 3 cloud measures, 1 fetch
    assert SECRET not in Path(scene.href).with_suffix(".json").read_text()


def test_weekday_and_hour_windows_are_local_time(server, tmp_path):
    three_s2_overpasses(server)
    # 09:50 UTC is 12:50 in Helsinki: a window read in UTC would keep nothing
    scene = source(spec(server.url, tmp_path / "a", selection={"weekdays": ["thu", "fri"], "local_hours": [12, 13]})
                   ).scenes()[0]
    prov = json.loads(Path(scene.href).with_suffix(".json").read_text())["properties"]["citybaseline:provenance"]
    assert prov["catalog_ids"] == ["S2A_thu"] and prov["local_weekday"] == "thu"  # Fri is cloudier over the city
    assert 0.3 < prov["cloud_fraction_city"] < 0.5

    with pytest.raises(SourceError, match=r"no acquisition.*3 outside the local hours") as err:
        source(spec(server.url, tmp_path / "b", selection={"local_hours": [9, 10]})).scenes()
    assert "widen scene.selection" in str(err.value)
    assert staged_files(tmp_path / "b") == []


def test_a_rerun_reuses_the_staged_scene_without_contacting_the_service(server, tmp_path):
    three_s2_overpasses(server)
    scene_spec = spec(server.url, tmp_path / "stage")
    first = source(scene_spec).scenes()[0]
    hits = len(server.hits)
    again = source(scene_spec).scenes()[0]
    assert again.scene_id == first.scene_id and again.checksum == first.checksum
    assert len(server.hits) == hits, "no token, catalog or process request on a rerun"
    other = source(spec(server.url, tmp_path / "stage", sentinelhub={"gsd_m": 20.0})).scenes()[0]
    assert other.scene_id != first.scene_id and other.gsd_m == 20.0 and len(server.hits) > hits


def test_landsat_measures_qa_pixel_cloud_over_the_city(server, tmp_path):
    t, shape = grid_for(BOX, UTM, 30.0, margin_m=600.0)
    city = aoi_mask(t, shape)
    cloud = city & (np.arange(shape[1])[None, :] < np.flatnonzero(city.any(axis=0)).min() + city.any(axis=0).sum() / 3)
    acq = landsat_acquisition("LC09_1", utc("2024-06-15T09:40:00"), UTM, t, shape, cloud=cloud, cloud_cover=80.0)
    server.add(acq)
    scene = source(spec(server.url, tmp_path / "stage", sentinelhub={"collection": "landsat-ot-l2"})).scenes()[0]
    assert scene.sensor == "landsat-c2-l2" and scene.gsd_m == 30.0
    assert scene.bands == ("blue", "green", "red", "nir", "qa_pixel")
    prov = json.loads(Path(scene.href).with_suffix(".json").read_text())["properties"]["citybaseline:provenance"]
    assert prov["cloud_fraction_city"] == pytest.approx(1 / 3, abs=0.08)
    assert prov["cloud_basis"].startswith("QA_PIXEL")
    want, _ = expected_counts(scene, acq, "B05", 10000.0)
    np.testing.assert_array_equal(scene.data.values[3], want)
    assert set(np.unique(scene.data.values[4])) <= {21824, 22280}


def test_byoc_vhr_is_fetched_in_pieces_within_the_process_limit(server, tmp_path):
    collection = f"byoc-{uuid.uuid4()}"
    box = (24.930, 60.1700, 24.9465, 60.1718)  # about 910 x 200 m: more than 2500 px wide at 0.3 m
    t, shape = grid_for(box, UTM, 0.3, margin_m=3.0)
    rng = np.random.default_rng(5)
    bands = {name: rng.integers(200, 4000, shape, dtype=np.uint16) for name in ("BLUE", "GREEN", "RED", "NIR1")}
    bands["dataMask"] = np.ones(shape, dtype=np.uint8)
    acq = Acquisition(collection, "vhr-1", utc("2024-06-14T09:31:00"), UTM, t, bands, cloud_cover=2.0,
                      properties={"view:sun_elevation": 47.5, "view:sun_azimuth": 171.0, "view:off_nadir": 8.0})
    server.add(acq)
    server.describe(collection, [{"name": "BLUE"}, {"name": "GREEN"}, {"name": "RED"},
                                 {"name": "NIR1", "common_name": "nir"}])

    scene = source(spec(server.url, tmp_path / "stage", sentinelhub={"collection": collection}), box).scenes()[0]
    assert scene.sensor == "vhr" and scene.bands == ("blue", "green", "red", "nir") and scene.gsd_m == 0.3
    assert (scene.sun_elevation_deg, scene.sun_azimuth_deg, scene.off_nadir_deg) == (47.5, 171.0, 8.0)
    rows, cols = scene.shape
    assert cols > MAX_PIECE_PX
    fetches = [h.detail for h in server.process_hits() if h.detail["width"] > 200]
    assert len(fetches) == 2 and sum(f["width"] for f in fetches) == cols
    assert all(f["width"] <= MAX_PIECE_PX and f["height"] <= MAX_PIECE_PX for f in fetches)
    for i, name in enumerate(("BLUE", "GREEN", "RED", "NIR1")):
        want, _ = expected_counts(scene, acq, name, 1.0)
        np.testing.assert_array_equal(scene.data.values[i], want, err_msg=name)
    prov = json.loads(Path(scene.href).with_suffix(".json").read_text())["properties"]["citybaseline:provenance"]
    assert prov["cloud_fraction_city"] == 0.02 and "catalog" in prov["cloud_basis"]


def test_credentials_from_a_sentinelhub_profile(server, tmp_path, monkeypatch):
    monkeypatch.delenv("SH_CLIENT_ID")
    monkeypatch.delenv("SH_CLIENT_SECRET")
    config = tmp_path / "xdg" / "sentinelhub" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[city]\nsh_client_id = "{CLIENT_ID}"\nsh_client_secret = "{SECRET}"\n')
    three_s2_overpasses(server)
    scene = source(spec(server.url, tmp_path / "stage", sentinelhub={"profile": "city"})).scenes()[0]
    assert scene.bands[0] == "blue" and server.count("token", 200) == 1


# --- failures ---


def test_429_with_retry_after_is_waited_for_then_succeeds(server, tmp_path):
    three_s2_overpasses(server)
    server.fail("catalog", Fault(429, retry_after_ms=400), Fault(429, retry_after_ms=400))
    source(spec(server.url, tmp_path / "stage")).scenes()
    times = server.times("catalog")
    assert server.count("catalog", 429) == 2 and server.count("catalog", 200) == 1
    gaps = np.diff(times)
    assert (gaps >= 0.4).all(), f"Retry-After (400 ms) must be honoured, waits were {gaps}"
    assert (gaps <= 0.4 + FAST_HTTP["backoff_s"] + 0.3).all(), "jitter is bounded by backoff_s"


def test_retry_after_beyond_the_cap_fails_at_once(server, tmp_path):
    three_s2_overpasses(server)
    server.fail("catalog", Fault(429, retry_after_ms=3_600_000))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"Sentinel Hub: .*rate-limiting \(HTTP 429\)") as err:
        source(spec(server.url, tmp_path / "stage")).scenes()
    assert time.monotonic() - t0 < 2.0
    assert "backoff_max_s" in str(err.value) and err.value.exit_code == 4


def test_5xx_then_success(server, tmp_path):
    three_s2_overpasses(server)
    server.fail("token", Fault(503))
    server.fail("catalog", Fault(502), Fault(500))
    server.fail("process", Fault(None), Fault(None), Fault(None), Fault(503), Fault(504))
    scene = source(spec(server.url, tmp_path / "stage")).scenes()[0]
    assert scene.bands[-1] == "scl"
    assert server.count("token", 503) == 1 and server.count("token", 200) == 1
    assert server.count("catalog", 200) == 1 and server.count("process", 200) == 4
    gaps = np.diff(server.times("catalog"))
    assert (gaps >= FAST_HTTP["backoff_s"]).all() and (gaps <= FAST_HTTP["backoff_max_s"] + 0.3).all()


def test_5xx_forever_ends_in_a_source_error_in_bounded_time_with_nothing_staged(server, tmp_path):
    three_s2_overpasses(server)
    folder = tmp_path / "stage"
    server.fail("process", Fault(None), Fault(None), Fault(None), *[Fault(503) for _ in range(50)])
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"Sentinel Hub: .*/api/v1/process kept failing \(HTTP 503\)") as err:
        source(spec(server.url, folder)).scenes()
    assert time.monotonic() - t0 < 6.0
    assert "retry later" in str(err.value) and "?" not in str(err.value)
    assert server.count("process", 503) == FAST_HTTP["max_retries"] + 1
    assert staged_files(folder) == [], "nothing staged, not even a temporary file"


def test_a_refused_token_is_renewed_and_the_request_repeated(server, tmp_path):
    three_s2_overpasses(server, only="mon")  # one overpass: requests come one at a time
    server.fail("process", Fault(None), Fault(expire_tokens=True, status=None))
    scene = source(spec(server.url, tmp_path / "stage")).scenes()[0]
    assert scene.bands[0] == "blue"
    assert server.count("process", 401) == 1 and server.count("token", 200) == 2


def test_a_token_about_to_expire_is_renewed_before_use(tmp_path):
    with SentinelHubServer(client_id=CLIENT_ID, client_secret=SECRET, token_lifetime_s=1.0,
                           token_valid_s=1.0) as short:
        three_s2_overpasses(short)
        source(spec(short.url, tmp_path / "stage")).scenes()
        assert short.count("process", 401) == 0
        assert short.count("token", 200) >= 2, "a token with 1 s left is renewed before the next request"


def test_bad_credentials_end_in_a_source_error_naming_the_variables(server, tmp_path, monkeypatch):
    three_s2_overpasses(server)
    wrong = "wrong-" + uuid.uuid4().hex
    monkeypatch.setenv("SH_CLIENT_SECRET", wrong)
    with pytest.raises(SourceError) as err:
        source(spec(server.url, tmp_path / "stage")).scenes()
    message = str(err.value)
    assert "Sentinel Hub" in message and "SH_CLIENT_ID" in message and "SH_CLIENT_SECRET" in message
    assert server.token_url in message and "invalid_client" in message
    assert wrong not in message and err.value.exit_code == 4
    assert server.count("token", 401) == 1, "refused credentials are not retried"
    assert server.count("process") == 0 and staged_files(tmp_path / "stage") == []


def test_missing_credentials_are_a_config_error_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.delenv("SH_CLIENT_ID")
    monkeypatch.delenv("SH_CLIENT_SECRET")
    with pytest.raises(ConfigError, match="SH_CLIENT_ID and SH_CLIENT_SECRET are not set") as err:
        source(spec(server.url, tmp_path / "stage")).scenes()
    assert err.value.exit_code == 2 and server.hits == []
    assert not (tmp_path / "xdg" / "sentinelhub").exists(), "no default sentinelhub config written"


def test_credentials_are_not_sent_over_plain_http(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    with pytest.raises(ConfigError, match="not https"):
        source(spec(server.url, tmp_path / "stage")).scenes()
    assert server.hits == []


def test_an_unreachable_endpoint_fails_within_the_timeout(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=rf"Sentinel Hub: cannot reach {url}/auth/realms/main") as err:
        source(spec(url, tmp_path / "stage")).scenes()
    assert time.monotonic() - t0 < 3.0
    assert "check scene.sentinelhub.base_url" in str(err.value) and err.value.exit_code == 4


def test_a_hanging_endpoint_times_out_instead_of_hanging(server, tmp_path):
    three_s2_overpasses(server)
    server.fail("catalog", Fault(hang_s=30), Fault(hang_s=30))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer from .*/api/v1/catalog/1.0.0/search within 0.5 s"):
        source(spec(server.url, tmp_path / "stage", http={"timeout_s": 0.5, "max_retries": 1})).scenes()
    assert time.monotonic() - t0 < 4.0


def test_the_deadline_bounds_the_whole_conversation(server, tmp_path):
    three_s2_overpasses(server)
    server.fail("catalog", *[Fault(503) for _ in range(50)])
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="Sentinel Hub"):
        source(spec(server.url, tmp_path / "stage", http={"max_retries": 40, "backoff_s": 0.2,
                                                          "deadline_s": 1.0})).scenes()
    assert time.monotonic() - t0 < 2.5


def test_unsupported_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="median.*not supported"):
        source(spec("https://example.invalid", tmp_path, selection={"strategy": "median"}))
    with pytest.raises(ConfigError, match="s2cloudless.*Sentinel-2"):
        source(spec("https://example.invalid", tmp_path, sentinelhub={"collection": "landsat-ot-l2"},
                    masks={"cloud": "s2cloudless"}))
    with pytest.raises(ConfigError, match="collection 'planet-scope' is not supported"):
        source(spec("https://example.invalid", tmp_path, sentinelhub={"collection": "planet-scope"}))


# --- secrets ---


def test_no_credential_or_token_reaches_a_debug_log(server, tmp_path, caplog):
    three_s2_overpasses(server)
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.DEBUG):
        scene = source(spec(server.url, tmp_path / "stage")).scenes()[0]
    text = caplog.text
    assert "client_secret=***" in text, "requests-oauthlib logs the token request body at DEBUG; it must be redacted"
    assert SECRET not in text and CLIENT_ID not in text
    assert "tok-" not in text, "no access token in the logs"
    for path in Path(scene.href).parent.iterdir():
        assert SECRET.encode() not in path.read_bytes() and b"tok-" not in path.read_bytes()


def test_redact_hides_registered_values_in_their_wire_forms():
    register_secret("abc")  # too short to be a secret: ignored
    register_secret("p@ss word/with+signs")
    text = "a=p%40ss+word%2Fwith%2Bsigns b='p@ss word/with+signs' Bearer eyJhbGciOi.x.y abc"
    assert redact(text) == "a=*** b='***' Bearer *** abc"


def test_deployments_and_token_urls():
    main = "https://services.sentinel-hub.com"
    assert deployment_for(main, "landsat-ot-l2") == "https://services-uswest2.sentinel-hub.com"
    assert deployment_for(main + "/", "sentinel-2-l2a") == main
    assert default_token_url("https://services-uswest2.sentinel-hub.com") == (
        main + "/auth/realms/main/protocol/openid-connect/token")
    assert default_token_url("https://sh.dataspace.copernicus.eu").startswith(
        "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/")
    assert default_token_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/auth/realms/main/protocol/openid-connect/token"
