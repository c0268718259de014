"""Score the surface-model height path on real lidar: Old Town Alexandria (VA), 2 m DSM, DTM and HAG rasters.

The sample in ``../shared/data/opengeos_elevation`` (never copied into the
repository) has 84 building footprints with a ``HEIGHT`` attribute and three
2 m rasters of the same area: a DSM, a DTM and a height-above-ground (HAG)
raster. Each footprint's height is measured the way a run with
``detect.surface_model`` measures it (:mod:`baseline.detect.surface_heights`:
the median height above ground of the pixels whose centre is inside the
footprint), once from DSM minus DTM and once from the HAG raster as an nDSM,
and scored with ``baseline.evaluate`` against ``HEIGHT`` (same footprints, so
F1 is 1 by construction; what is scored is the height).

The reference is weak: the footprints' ``HEIGHT`` agrees only loosely with the
HAG raster (the data's manifest: median difference 1.6 m), and where it comes
from is not stated. Treat the figures as an agreement check, not an accuracy.

    .venv/bin/python scripts/score_alexandria_dsm.py [--data DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "opengeos_elevation"
KEYS = ("height_mae_m", "height_rmse_m", "height_bias_m", "height_mae_m_under_10m", "height_count_under_10m",
        "height_mae_m_10_30m", "height_count_10_30m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.data / "buildings.geojson").is_file():
        sys.exit(f"{args.data}: no buildings.geojson (the opengeos_elevation sample of ../shared/data)")

    import geopandas as gpd
    import numpy as np

    from baseline.detect.surface_heights import footprint_surface_heights
    from baseline.evaluate import building_metrics

    truth = gpd.read_file(args.data / "buildings.geojson")
    truth = truth[truth["HEIGHT"].notna()].to_crs(26918).reset_index(drop=True)
    truth["height_m"] = truth["HEIGHT"].astype(float)
    report = {}
    for name, surface, ground in (("DSM - DTM", "dsm.tif", "dtm.tif"), ("HAG as nDSM", "hag.tif", None)):
        got = footprint_surface_heights(truth, args.data / surface, None if ground is None else args.data / ground)
        pred = truth[["geometry"]].assign(height_m=got.height_m)
        pred = pred[np.isfinite(got.height_m)].reset_index(drop=True)
        scores = building_metrics(pred, truth, 0.5)
        row = {k: scores.get(k) for k in KEYS}
        row.update(buildings=len(truth), measured=len(pred), sigma_median_m=float(np.nanmedian(got.sigma_m)),
                   pixels_median=int(np.median(got.pixels)))
        report[name] = row
        print(f"{name:12s} measured {len(pred)} of {len(truth)}: height MAE {row['height_mae_m']:.2f} m, "
              f"RMSE {row['height_rmse_m']:.2f} m, bias {row['height_bias_m']:+.2f} m "
              f"(median sigma {row['sigma_median_m']:.2f} m over {row['pixels_median']} pixels of 2 m)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
