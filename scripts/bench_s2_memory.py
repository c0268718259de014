"""Peak memory of the Sentinel-2 stages (built-up maps, moving trucks) against the scene's size.

Builds in-memory Sentinel-2 scenes of a given side by repeating a real-looking
10 m scene (the embedded demo's ``s2.tif``, rendered if missing) and runs, each
in a fresh process, the built-up maps and the trucks stage as the pipeline does
(window by window), and the same two in one pass over the whole scene (the
code path before windows, kept for comparison). Peak resident memory is the
child's ``ru_maxrss``; the time of each is printed too.

    .venv/bin/python scripts/bench_s2_memory.py                 # sides 1024 and 2048 px
    .venv/bin/python scripts/bench_s2_memory.py --sides 2048 4096 --json s2mem.json

At the default window (2048 px) a scene of 2048 px is one window; use
``--window`` to see several windows at small sides.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_S2 = REPO / ".cache" / "scenes" / "demo-helsinki" / "s2.json"


def _scene(side: int):
    """A ``side`` x ``side`` Sentinel-2 Scene in memory: the demo scene repeated (mirrored so edges meet)."""
    import numpy as np
    import xarray as xr

    from baseline.ingest import open_scene

    base = open_scene(DEMO_S2)
    counts = np.asarray(base.data.values)
    valid = np.asarray(base.valid.values)
    flip = np.concatenate([counts, counts[:, ::-1]], axis=1)
    flip = np.concatenate([flip, flip[:, :, ::-1]], axis=2)
    vflip = np.concatenate([valid, valid[::-1]], axis=0)
    vflip = np.concatenate([vflip, vflip[:, ::-1]], axis=1)
    reps = (-(-side // flip.shape[1]), -(-side // flip.shape[2]))
    data = np.tile(flip, (1, *reps))[:, :side, :side]
    ok = np.tile(vflip, reps)[:side, :side]
    return base.__class__(**{**base.__dict__, "data": xr.DataArray(data, dims=("band", "y", "x")),
                             "valid": xr.DataArray(ok, dims=("y", "x"))})


def _child(side: int, mode: str, window: int, out: str) -> None:
    from baseline.detect.s2_builtup import builtup_maps, builtup_scene_maps
    from baseline.detect.s2_trucks import trucks_table
    from baseline.preprocess.sentinel2 import scene_reflectance

    scene = _scene(side)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "windows":
        builtup_scene_maps(scene, window_px=window)
        trucks = trucks_table(scene, None, window_px=window)
    else:
        refl, valid = scene_reflectance(scene)
        builtup_maps(refl, valid, scene.sun_elevation_deg, scene.sun_azimuth_deg)
        trucks = trucks_table(scene, None, pixels=(refl, valid))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out).write_text(json.dumps({"side": side, "mode": mode, "km2": side * side / 1e4, "seconds": seconds,
                                     "peak_rss_mb": peak / 1024, "scene_and_imports_mb": before / 1024,
                                     "trucks": len(trucks)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--window", type=int, default=None, help="window core in px (default: the pipeline's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from baseline.preprocess.sentinel2 import WINDOW_PX

    if not DEMO_S2.exists():
        sys.exit(f"{DEMO_S2} is missing: run `baseline run configs/demo-helsinki.yaml` once to render the demo")
    window = args.window or WINDOW_PX
    rows = []
    ctx = mp.get_context("spawn")
    for side in args.sides:
        for mode in ("windows", "one pass"):
            out = Path(f"/tmp/bench_s2_{side}_{mode.replace(' ', '_')}.json")
            p = ctx.Process(target=_child, args=(side, mode if mode == "windows" else "whole", window, str(out)))
            p.start()
            p.join()
            if p.exitcode != 0:
                sys.exit(f"{mode} at {side} px failed (exit {p.exitcode})")
            rows.append({**json.loads(out.read_text()), "mode": mode})
            r = rows[-1]
            print(f"{side:6d} px ({r['km2']:7.1f} km2)  {mode:9s}  peak {r['peak_rss_mb']:8.0f} MB "
                  f"(scene + imports {r['scene_and_imports_mb']:6.0f} MB)  {r['seconds']:6.1f} s  trucks {r['trucks']}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({"window_px": window, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
