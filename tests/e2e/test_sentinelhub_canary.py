"""A whole run from Sentinel Hub with canary credentials: the canary is in no log, report, manifest or table.

The loopback Sentinel Hub (tests/servers/sentinelhub_server.py) serves a BYOC
collection cut from a small rendered scene of central Helsinki; ``baseline
-vv --debug run`` fetches it through sentinelhub-py with SH_CLIENT_ID and
SH_CLIENT_SECRET set to canary strings, then detects, aggregates and
publishes as always. Every byte the run wrote (tables, manifest, report,
``.work``, the staged scene) and everything it printed at DEBUG is searched
for the canaries and for the access tokens the server issued.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import geopandas as gpd
import pytest
from pyproj import Transformer

from tests.e2e.conftest import REPO, write_config
from tests.factories import render_crop
from tests.servers.sentinelhub_server import SentinelHubServer, utc, vhr_acquisition

pytestmark = pytest.mark.slow

CROP = (385850.0, 6672000.0, 386150.0, 6672300.0)  # 300 x 300 m of central Helsinki, EPSG:32635


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return render_crop(tmp_path_factory.mktemp("scene") / "crop", CROP)


def _aoi(inset_m: float = 20.0) -> list[float]:
    """The crop, less ``inset_m`` on each side, as a lon/lat box (the grid fetched stays inside the render)."""
    x0, y0, x1, y1 = CROP
    to_ll = Transformer.from_crs(32635, 4326, always_xy=True)
    west, south, east, north = to_ll.transform_bounds(x0 + inset_m, y0 + inset_m, x1 - inset_m, y1 - inset_m)
    return [round(v, 6) for v in (west, south, east, north)]


def test_a_sentinelhub_run_leaks_no_credential_anywhere(rendered, tmp_path):
    client_id = f"canary-id-{uuid.uuid4().hex}"
    secret = f"canary-{uuid.uuid4().hex}"
    collection = f"byoc-{uuid.uuid4()}"
    out, staged = tmp_path / "run", tmp_path / "staged"
    with SentinelHubServer(client_id=client_id, client_secret=secret) as server:
        server.add(vhr_acquisition(collection, "pleiades-1", utc("2024-06-14T09:31:00"), rendered / "vhr.tif",
                                   properties={"view:sun_elevation": 45.0, "view:sun_azimuth": 200.0}))
        server.describe(collection, [{"name": n} for n in ("B0", "B1", "B2", "B3")])  # the Pleiades convention
        config = write_config(
            tmp_path / "c.yaml",
            scene={"source": "sentinelhub", "path": str(staged), "aoi": _aoi(), "render_if_missing": None,
                   "sentinelhub": {"base_url": server.url, "collection": collection, "gsd_m": 0.3},
                   "selection": {"start": "2024-06-01", "end": "2024-06-30"}, "masks": {"cloud": "none"},
                   "http": {"timeout_s": 10.0, "max_retries": 2, "backoff_s": 0.1, "deadline_s": 120.0}},
            cluster={"n_workers": 1},
            publish={"out": str(out), "report": True},
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SH_CLIENT_ID": client_id, "SH_CLIENT_SECRET": secret,
               "OAUTHLIB_INSECURE_TRANSPORT": "1",  # plain http on loopback; real deployments are https
               "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        done = subprocess.run(
            [sys.executable, "-m", "baseline.cli.main", "-vv", "--debug", "run", str(config), "--out", str(out)],
            capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
        tokens = server.issued_tokens()

    assert done.returncode == 0, done.stderr[-4000:]
    assert any(secret.encode() in body for body in server.bodies), "the canary secret was really sent to the server"
    assert tokens and server.count("process", 200) >= 2

    canaries = [client_id, secret, secret.removeprefix("canary-"), *tokens]
    logs = done.stdout + done.stderr
    assert "DEBUG" in logs and "requests_oauthlib" in logs, "the run logged at DEBUG, token exchange included"
    for canary in canaries:
        assert canary not in logs, f"{canary[:12]}... printed in the run's output"
    files = [p for root in (out, staged) for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"buildings.parquet", "vehicles.parquet", "manifest.json", "report.html"} <= names
    assert any(".work" in p.parts for p in files), "the tiles' work files are searched too"
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary.encode() not in data, f"{canary[:12]}... written into {path.relative_to(tmp_path)}"

    buildings = gpd.read_parquet(out / "buildings.parquet")
    assert len(buildings) > 0, "the pipeline truly ran on the fetched scene"
    manifest = json.loads((out / "manifest.json").read_text())
    assert "sentinelhub-byoc-" in json.dumps(manifest)
