"""Heights from a surface model: the median height above ground inside each footprint, and the fusion."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.detect.surface_heights import (
    VERTICAL_SIGMA_M,
    footprint_surface_heights,
    fuse_surface_heights,
)
from baseline.errors import InputFileError

CRS = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0
T = from_origin(X0, Y0, 1.0, 1.0)  # 1 m pixels, 200 x 200 m
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opengeos_elevation"


def _write(path: Path, array: np.ndarray, nodata: float = -9999.0) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="float32", crs=CRS, transform=T, nodata=nodata) as dst:
        dst.write(array.astype(np.float32), 1)
    return path


def _city(tmp_path: Path) -> tuple[gpd.GeoDataFrame, Path, Path]:
    """Ground sloping from 10 to 30 m; a 12 m block with a 3 m chimney, a 40 m tower, a 2 m shed too small to count."""
    rows, cols = np.indices((200, 200))
    ground = 10.0 + 0.1 * cols
    heights = np.zeros((200, 200))
    heights[20:40, 20:60] = 12.0   # block: rows are y down from Y0
    heights[25:27, 30:32] = 15.0   # chimney on it
    heights[100:130, 120:140] = 40.0
    heights[180:181, 10:12] = 2.0  # shed: 2 pixels
    dsm = ground + heights
    dsm[110:112, 125:127] = -9999.0  # a hole in the lidar
    footprints = gpd.GeoDataFrame(
        {"height_m": [11.0, 25.0, 2.5], "height_sigma_m": [0.5, 6.0, 6.0],
         "height_source": ["shadow", "learned", "learned"]},
        geometry=[box(X0 + 20, Y0 - 40, X0 + 60, Y0 - 20), box(X0 + 120, Y0 - 130, X0 + 140, Y0 - 100),
                  box(X0 + 10, Y0 - 181, X0 + 12, Y0 - 180)],
        crs=CRS,
    )
    return footprints, _write(tmp_path / "dsm.tif", dsm), _write(tmp_path / "dtm.tif", ground)


def test_median_height_above_ground_per_footprint(tmp_path):
    footprints, dsm, dtm = _city(tmp_path)
    got = footprint_surface_heights(footprints.to_crs(4326), dsm, dtm)  # any CRS: projected to the raster's
    assert got.height_m[0] == pytest.approx(12.0, abs=0.01)   # the chimney does not lift the median
    assert got.height_m[1] == pytest.approx(40.0, abs=0.01)
    assert got.pixels[1] == 30 * 20 - 4                       # the lidar hole is not counted
    assert np.isnan(got.height_m[2]) and got.pixels[2] == 2   # too few pixels to say
    assert got.sigma_m[0] == pytest.approx(VERTICAL_SIGMA_M, abs=0.05)
    # the same footprints against the ground-less DSM read as if it were an nDSM: ground included
    raw = footprint_surface_heights(footprints, dsm)
    assert raw.height_m[0] > 12.0 + 10.0


def test_fusion_takes_the_surface_height_where_there_is_one(tmp_path):
    footprints, dsm, dtm = _city(tmp_path)
    measured = footprint_surface_heights(footprints, dsm, dtm)
    fused = fuse_surface_heights(footprints, measured)
    assert list(fused["height_source"]) == ["dsm", "dsm", "learned"]
    assert fused["height_m"].tolist()[:2] == pytest.approx([12.0, 40.0], abs=0.01)
    assert fused["height_sigma_m"].tolist()[:2] == pytest.approx(measured.sigma_m[:2].tolist())
    assert fused["height_m"].iloc[2] == 2.5 and fused["height_sigma_m"].iloc[2] == 6.0  # no surface height


def test_bad_surface_inputs_are_clear_errors(tmp_path):
    footprints, dsm, _ = _city(tmp_path)
    with pytest.raises(InputFileError, match="surface model not found"):
        footprint_surface_heights(footprints, tmp_path / "missing.tif")
    other = tmp_path / "coarse.tif"
    with rasterio.open(other, "w", driver="GTiff", width=50, height=50, count=1, dtype="float32", crs=CRS,
                       transform=from_origin(X0, Y0, 4.0, 4.0)) as dst:
        dst.write(np.zeros((1, 50, 50), np.float32))
    with pytest.raises(InputFileError, match="not on the surface model's grid"):
        footprint_surface_heights(footprints, dsm, other)


@pytest.mark.shared_data
def test_real_lidar_heights_of_old_town_alexandria():
    if not DATA.is_dir():
        pytest.skip(f"real sample opengeos_elevation not present under {DATA.parent}")
    footprints = gpd.read_file(DATA / "buildings.geojson")
    got = footprint_surface_heights(footprints, DATA / "dsm.tif", DATA / "dtm.tif")
    ok = np.isfinite(got.height_m) & footprints["HEIGHT"].notna().to_numpy()
    assert ok.sum() >= 75
    err = got.height_m[ok] - footprints["HEIGHT"].to_numpy(float)[ok]
    assert np.abs(err).mean() <= 1.0  # measured 0.55 m against the footprints' HEIGHT attribute
