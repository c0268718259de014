"""``baseline synth`` end to end: the scene folder, its formats, its errors, and the full Helsinki render."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from baseline.core.geoparquet import read_geoparquet
from baseline.core.schemas import BUILDINGS_TRUTH, ROADS_TRUTH, VEHICLES_TRUTH
from baseline.errors import OutputError
from baseline.synth import RenderParams, render_scene, write_scene

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "helsinki_3d_buildings"
CROP = "385700,6672000,386000,6672300"
SCENE_FILES = {"vhr.tif", "vhr.json", "s2.tif", "s2.json", "preview.png", "render.json",
               "truth/buildings.parquet", "truth/vehicles.parquet", "truth/roads.parquet"}


def baseline(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``baseline`` console script (or the module, when the package is not installed)."""
    script = Path(sys.executable).parent / "baseline"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "baseline.cli.main"]
    return subprocess.run([*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def crop_scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "scene"
    done = baseline("synth", "--city", "helsinki", "--out", str(out), "--seed", "3", "--clouds", "0.2",
                    "--bbox", CROP)
    assert done.returncode == 0, done.stderr
    assert "vehicles" in done.stdout and "wrote 9 files" in done.stdout
    return out


def test_help_shows_examples():
    done = baseline("synth", "--help")
    assert done.returncode == 0
    assert "Examples:" in done.stdout and "baseline synth --city helsinki --out" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--city", "atlantis"], "unknown city 'atlantis'"),
        (["--buildings", "no/such/footprints.geojson"], "file not found"),
        (["--buildings", "README.md"], "not a readable vector file"),
        (["--gsd", "0"], "gsd = 0.0 is not allowed"),
    ],
)
def test_errors_are_one_line_without_a_traceback(tmp_path, args, message):
    out = tmp_path / "scene"
    done = baseline("synth", "--out", str(out), *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not out.exists()


def test_the_scene_folder_holds_exactly_the_contract_files(crop_scene):
    assert _files(crop_scene) == SCENE_FILES
    assert not list(crop_scene.parent.glob(".tmp-*")), "no temporary folder left behind"


@pytest.mark.parametrize(("name", "gsd", "bands"), [("vhr.tif", 0.3, ("blue", "green", "red", "nir")),
                                                   ("s2.tif", 10.0, ("B02", "B03", "B04", "B08", "SCL"))])
def test_images_are_valid_cogs_in_utm_with_masks_and_tags(crop_scene, name, gsd, bands):
    path = crop_scene / name
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32635
        assert src.res == (gsd, gsd)
        assert (src.transform.c, src.transform.f) == (385700.0, 6672300.0)
        assert src.descriptions == bands and src.dtypes[0] == "uint16"
        assert all(rasterio.enums.MaskFlags.per_dataset in flags for flags in src.mask_flag_enums)
        tags = src.tags()
        assert tags["ACQUISITION_TIME"] == "2024-06-14T09:30:00Z"
        assert 50 < float(tags["SUN_ELEVATION"]) < 54 and 150 < float(tags["SUN_AZIMUTH"]) < 170
        offsets = json.loads(tags["BAND_TIME_OFFSETS_S"])
        assert offsets[bands[2]] == 0.0
        assert offsets == ({"blue": -0.1, "green": -0.05, "red": 0.0, "nir": 0.1} if name == "vhr.tif"
                           else {"B02": -1.005, "B03": -0.478, "B04": 0.0, "B08": -0.742})
        data = src.read()
        assert src.read_masks(1).all() and (data[:4] > 0).all()
    if name == "s2.tif":
        assert set(np.unique(data[4])) <= {3, 4, 5, 6, 8, 9}


@pytest.mark.parametrize(("name", "sensor", "gsd"), [("vhr.json", "vhr", 0.3), ("s2.json", "sentinel-2-l2a", 10.0)])
def test_stac_items_load_with_pystac_and_carry_the_contract_fields(crop_scene, name, sensor, gsd):
    item = pystac.Item.from_file(str(crop_scene / name))
    p = item.properties
    assert item.id.startswith("helsinki-s3-") and item.id.endswith("-vhr" if sensor == "vhr" else "-s2")
    assert item.datetime.isoformat() == "2024-06-14T09:30:00+00:00"
    assert p["gsd"] == gsd and p["proj:code"] == "EPSG:32635" and len(p["proj:transform"]) == 6
    assert p["constellation"] == p["platform"] == "citybaseline-synthetic"
    assert p["citybaseline:sensor"] == sensor and p["citybaseline:scale"] == 0.0001
    assert 0.0 <= p["eo:cloud_cover"] <= 100.0
    assert -90 < p["view:sun_elevation"] <= 90 and p["view:off_nadir"] == 0.0
    asset = item.assets["image"]
    assert asset.href.endswith(name.replace(".json", ".tif"))
    assert asset.media_type == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert asset.roles == ["data"] and [b["name"] for b in asset.extra_fields["eo:bands"]][:4] == list(
        p["citybaseline:band_time_offsets_s"])
    with rasterio.open(crop_scene / asset.href) as src:
        assert p["proj:shape"] == [src.height, src.width]
        assert p["proj:transform"] == list(src.transform)[:6]


def test_truth_tables_round_trip_with_the_contract_columns(crop_scene):
    for table, columns in (("buildings", BUILDINGS_TRUTH), ("vehicles", VEHICLES_TRUTH), ("roads", ROADS_TRUTH)):
        frame = read_geoparquet(crop_scene / "truth" / f"{table}.parquet")
        assert tuple(frame.columns) == columns, table
        assert frame.crs.to_epsg() == 32635 and len(frame) > 0
        assert frame.geom_type.eq("Polygon").all(), table
    v = read_geoparquet(crop_scene / "truth" / "vehicles.parquet")
    assert v["vehicle_id"].is_unique and v["on_road"].dtype == bool and v["moving"].dtype == bool
    assert set(v["context"]) <= {"lane", "queue", "kerb", "car_park"}
    b = read_geoparquet(crop_scene / "truth" / "buildings.parquet")
    assert b["building_id"].is_unique and (b["height_m"] > 0).all()
    assert set(b["height_origin"]) <= {"osm_height", "osm_levels", "drawn", "file"}
    import pyarrow.parquet as pq

    geo = json.loads(pq.read_schema(crop_scene / "truth" / "roads.parquet").metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]


def test_preview_and_render_record(crop_scene):
    with Image.open(crop_scene / "preview.png") as img:
        assert img.mode == "RGB" and img.size == (1000, 1000)
    record = json.loads((crop_scene / "render.json").read_text())
    assert record["params"]["seed"] == 3 and record["params"]["clouds"] == 0.2
    assert record["params"]["bbox"] == [385700.0, 6672000.0, 386000.0, 6672300.0]
    assert record["sun"]["source"] == "computed" and record["crs"] == "EPSG:32635"
    assert record["counts"]["vehicles"] == len(read_geoparquet(crop_scene / "truth" / "vehicles.parquet"))


def test_a_failed_write_leaves_no_partial_scene(tmp_path, monkeypatch):
    import baseline.synth.writer as writer

    result = render_scene(RenderParams(bbox=(385700.0, 6672000.0, 385760.0, 6672060.0), sentinel2=False))

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "write_preview", broken)
    with pytest.raises(OutputError, match="disk full"):
        write_scene(result, tmp_path / "scene")
    assert list(tmp_path.iterdir()) == []


def test_rewriting_a_scene_folder_replaces_its_files(tmp_path):
    result = render_scene(RenderParams(bbox=(385700.0, 6672000.0, 385760.0, 6672060.0), sentinel2=False))
    out = tmp_path / "scene"
    write_scene(result, out)
    (out / "notes.txt").write_text("mine")
    files = write_scene(result, out)
    assert set(files) == SCENE_FILES - {"s2.tif", "s2.json"}
    assert (out / "notes.txt").read_text() == "mine" and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not here")
def test_real_footprints_with_measured_heights_are_drawn_with_their_heights(tmp_path):
    """The Helsinki 3D city model (EPSG:3879): its two districts lie 4 km apart, so the
    whole extent is refused as too large and a --bbox around Kalasatama is drawn."""
    source = SHARED / "helsinki_3d_lod2_buildings_epsg3879.geojson"
    done = baseline("synth", "--out", str(tmp_path / "all"), "--buildings", str(source))
    assert done.returncode != 0 and "Mpx" in done.stderr and "--bbox" in done.stderr
    measured = gpd.read_file(source).to_crs(32635)
    kalasatama = measured[measured["source_tile"] == "2549_6674"]
    x0, y0, x1, y1 = kalasatama.total_bounds
    out = tmp_path / "kalasatama"
    done = baseline("synth", "--out", str(out), "--buildings", str(source), "--sun-elevation", "45",
                    "--sun-azimuth", "200", "--bbox", f"{x0 - 60},{y0 - 60},{x1 + 60},{y1 + 60}")
    assert done.returncode == 0, done.stderr
    truth = read_geoparquet(out / "truth" / "buildings.parquet")
    assert truth.crs.to_epsg() == 32635
    assert len(truth) >= 0.9 * len(kalasatama)
    assert (truth["height_origin"] == "file").all()
    assert truth["height_m"].max() == pytest.approx(kalasatama["measured_height_m"].max())
    assert sorted(truth["height_m"].round(2))[-5:] == sorted(kalasatama["measured_height_m"].round(2))[-5:]
    with rasterio.open(out / "vhr.tif") as src:
        left, bottom, right, top = src.bounds
    assert left < x0 and bottom < y0 and right > x1 and top > y1


@pytest.mark.slow
def test_full_helsinki_default_render(tmp_path):
    """The acceptance run: the whole OSM extract at 0.3 m, every count above its floor."""
    out = tmp_path / "helsinki"
    started = time.perf_counter()
    done = baseline("synth", "--city", "helsinki", "--out", str(out), timeout=600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert seconds < 240, f"took {seconds:.0f} s"
    buildings = read_geoparquet(out / "truth" / "buildings.parquet")
    vehicles = read_geoparquet(out / "truth" / "vehicles.parquet")
    assert len(buildings) >= 450
    assert len(vehicles) >= 300
    assert vehicles["on_road"].mean() >= 0.2 and (~vehicles["on_road"]).mean() >= 0.2
    assert vehicles["moving"].sum() >= 100 and (vehicles["context"] == "queue").sum() >= 20
    with rasterio.open(out / "vhr.tif") as src:
        assert src.crs.to_epsg() == 32635 and src.res == (0.3, 0.3)
        assert src.width * src.height > 3000 * 5000
        assert 0.8 < src.read_masks(1, out_shape=(500, 300)).astype(bool).mean() < 1.0  # slanted extract edges
    assert cog_validate(str(out / "vhr.tif"))[0] and cog_validate(str(out / "s2.tif"))[0]
    with Image.open(out / "preview.png") as img:
        assert max(img.size) <= 2000
