"""A Sentinel Hub deployment on loopback: OAuth token service, Catalog API and Process API, with faults.

Real HTTP for the real client: sentinelhub-py (and requests-oauthlib under
it) authenticates, searches and requests pixels from it exactly as from
services.sentinel-hub.com. It implements what the client uses:

- ``POST /auth/realms/main/protocol/openid-connect/token``: OAuth2 client
  credentials; a wrong secret gets 401 ``invalid_client`` (Keycloak's answer);
  tokens live ``token_lifetime_s`` (what the answer says) and are refused once
  ``token_valid_s`` has passed (what the server enforces; shorter to mimic a
  token revoked or a clock that drifted).
- ``POST /api/v1/catalog/1.0.0/search``: STAC item search by collection,
  bbox and datetime, with ``context.next`` paging; features carry
  ``datetime`` and ``eo:cloud_cover`` of the whole tile.
- ``GET /api/v1/catalog/1.0.0/collections/<id>``: a collection's
  description, with ``summaries.eo:bands`` for BYOC collections.
- ``POST /api/v1/process``: checks the bearer token, reads the request's
  bbox, CRS, width and height, time range and evalscript, and answers a real
  GeoTIFF whose pixels are cut (nearest neighbour) from the acquisitions the
  test added. The evalscript is interpreted for the form the client writes:
  ``input`` band names, ``output.bands`` and ``sampleType``, and an
  ``evaluatePixel`` returning ``[sample.NAME * FACTOR, sample.NAME, ...]``;
  anything else is answered 400, as the real service answers a broken script.

Faults are queued per endpoint (``token``, ``catalog``, ``collection``,
``process``): a status with an optional ``Retry-After`` in milliseconds (the
Sentinel Hub convention), or a hang before answering.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject

TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0"
PROCESS_PATH = "/api/v1/process"
SAMPLE_TYPES = {"UINT8": "uint8", "UINT16": "uint16", "FLOAT32": "float32"}


@dataclass
class Acquisition:
    """One acquisition the server holds: pixels of named bands on a grid, and catalog metadata.

    ``bands`` maps Sentinel Hub band names to 2-D arrays on ``crs``/``transform``
    (reflectance 0..1 for Sentinel-2/Landsat, stored counts for BYOC); it must
    hold ``dataMask`` (1 where imaged). ``cloud_cover`` is the catalog's
    whole-tile percentage.
    """

    collection: str
    id: str
    datetime: datetime
    crs: str
    transform: Affine
    bands: dict[str, np.ndarray]
    cloud_cover: float | None = None
    properties: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.bands["dataMask"].shape

    def footprint(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        rows, cols = self.shape
        x0, y0 = self.transform.c, self.transform.f
        x1, y1 = x0 + self.transform.a * cols, y0 + self.transform.e * rows
        to_ll = Transformer.from_crs(self.crs, 4326, always_xy=True)
        return to_ll.transform_bounds(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@dataclass
class Fault:
    """One injected answer: ``status`` (with ``Retry-After: retry_after_ms``), after hanging ``hang_s``.

    ``status=None`` answers normally (to let requests through before the
    faults); ``expire_tokens`` first makes every token issued so far expired.
    """

    status: int | None = 503
    retry_after_ms: int | None = None
    hang_s: float = 0.0
    expire_tokens: bool = False


@dataclass
class Hit:
    """A request the server answered."""

    at: float
    endpoint: str
    status: int
    detail: dict = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class SentinelHubServer:
    """Serve the Sentinel Hub APIs for the acquisitions added with :meth:`add`; use as a context manager."""

    def __init__(
        self, *, client_id: str, client_secret: str, token_lifetime_s: float = 3600.0,
        token_valid_s: float | None = None,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_s = token_lifetime_s
        self.token_valid_s = token_valid_s
        self.acquisitions: list[Acquisition] = []
        self.collections: dict[str, dict] = {}
        self.hits: list[Hit] = []
        self.bodies: list[bytes] = []
        self._tokens: dict[str, float] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- the test's side ---

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def __enter__(self) -> SentinelHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; hanging answers return at once."""
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def add(self, *acquisitions: Acquisition) -> None:
        self.acquisitions.extend(acquisitions)

    def describe(self, collection: str, bands: list[dict]) -> None:
        """Give ``collection`` a catalog description listing ``bands`` (``{"name": ..., "common_name": ...}``)."""
        self.collections[collection] = {
            "stac_version": "1.0.0", "type": "Collection", "id": collection, "title": collection,
            "summaries": {"eo:bands": bands}, "links": [],
        }

    def fail(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next requests to ``endpoint`` with ``faults``, in order."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def count(self, endpoint: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.endpoint == endpoint and (status is None or h.status == status))

    def times(self, endpoint: str) -> list[float]:
        """Monotonic arrival times of the requests to ``endpoint``."""
        with self._lock:
            return [h.at for h in self.hits if h.endpoint == endpoint]

    def issued_tokens(self) -> list[str]:
        """Every access token handed out so far."""
        with self._lock:
            return list(self._tokens)

    def process_hits(self, status: int = 200) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.endpoint == "process" and h.status == status]

    # --- the service's side ---

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

            def do_GET(self) -> None:
                server._dispatch(self, "GET")

            def do_POST(self) -> None:
                server._dispatch(self, "POST")

        return Handler

    def _endpoint(self, method: str, path: str) -> str | None:
        if method == "POST" and path == TOKEN_PATH:
            return "token"
        if method == "POST" and path == f"{CATALOG_PATH}/search":
            return "catalog"
        if method == "GET" and path.startswith(f"{CATALOG_PATH}/collections/"):
            return "collection"
        if method == "POST" and path == PROCESS_PATH:
            return "process"
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        at = time.monotonic()
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.bodies.append(body)
        endpoint = self._endpoint(method, path)
        detail: dict = {}
        try:
            if endpoint is None:
                raise _Refused(404, {"error": {"status": 404, "reason": "Not Found", "message": f"no {path}"}})
            fault = self._next_fault(endpoint)
            if fault is not None and fault.expire_tokens:
                with self._lock:
                    self._tokens = {t: 0.0 for t in self._tokens}
            if fault is not None and fault.hang_s and self._stop.wait(fault.hang_s):
                return
            if fault is not None and fault.status is not None:
                headers = {"Retry-After": str(fault.retry_after_ms)} if fault.retry_after_ms is not None else {}
                self._record(at, endpoint, fault.status, {"fault": True})
                if endpoint == "token":  # what a gateway in front of the identity service answers
                    self._send(handler, fault.status, b"<html><body>unavailable</body></html>", "text/html", headers)
                else:
                    self._send(handler, fault.status, json.dumps(
                        {"error": {"status": fault.status, "reason": "injected", "message": "injected fault"}}
                    ).encode(), "application/json", headers)
                return
            if endpoint == "token":
                status, payload, ctype = 200, json.dumps(self._token(body)).encode(), "application/json"
            else:
                self._check_token(handler.headers.get("Authorization", ""))
                if endpoint == "catalog":
                    status, payload, ctype = 200, json.dumps(self._search(json.loads(body))).encode(), "application/json"
                elif endpoint == "collection":
                    status, payload, ctype = 200, json.dumps(self._collection(path)).encode(), "application/json"
                else:
                    payload, detail = self._process(json.loads(body))
                    status, ctype = 200, "image/tiff"
        except _Refused as refused:
            status, payload, ctype = refused.status, json.dumps(refused.body).encode(), "application/json"
        self._record(at, endpoint or path, status, detail)
        self._send(handler, status, payload, ctype, {})

    def _record(self, at: float, endpoint: str, status: int, detail: dict) -> None:
        with self._lock:
            self.hits.append(Hit(at, endpoint, status, detail))

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str, headers: dict) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            return queue.popleft() if queue else None

    def _token(self, body: bytes) -> dict:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            raise _Refused(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise _Refused(401, {"error": "invalid_client", "error_description": "Invalid client credentials"})
        token = "tok-" + secrets.token_hex(24)
        valid = self.token_valid_s if self.token_valid_s is not None else self.token_lifetime_s
        with self._lock:
            self._tokens[token] = time.monotonic() + valid
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s,
                "refresh_expires_in": 0, "not-before-policy": 0, "scope": "email profile"}

    def _check_token(self, header: str) -> None:
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            raise _Refused(401, {"error": {"status": 401, "reason": "Unauthorized",
                                           "message": "You are not authorized! Please provide a valid access token."}})
        if time.monotonic() > expiry:
            raise _Refused(401, {"error": {"status": 401, "reason": "Unauthorized", "message": "Token expired."}})

    def _search(self, query: dict) -> dict:
        collections = query.get("collections") or []
        start, end = _interval(query.get("datetime"))
        west, south, east, north = query.get("bbox") or (-180, -90, 180, 90)
        found = []
        for acq in sorted(self.acquisitions, key=lambda a: a.datetime):
            aw, as_, ae, an = acq.footprint()
            if acq.collection not in collections or not (start <= acq.datetime <= end):
                continue
            if aw > east or ae < west or as_ > north or an < south:
                continue
            found.append(acq)
        offset = int(query.get("next") or 0)
        limit = int(query.get("limit") or 10)
        page = found[offset : offset + limit]
        features = [_feature(a) for a in page]
        context = {"limit": limit, "returned": len(features)}
        if offset + limit < len(found):
            context["next"] = offset + limit
        return {"type": "FeatureCollection", "features": features, "links": [], "context": context}

    def _collection(self, path: str) -> dict:
        name = path.rsplit("/", 1)[1]
        if name not in self.collections:
            raise _Refused(404, {"code": 404, "description": f"Collection {name} not found."})
        return self.collections[name]

    def _process(self, request: dict) -> tuple[bytes, dict]:
        bounds = request["input"]["bounds"]
        bbox = bounds["bbox"]
        crs = CRS.from_epsg(int(bounds["properties"]["crs"].rstrip("/").rsplit("/", 1)[1]))
        out = request.get("output", {})
        width, height = int(out["width"]), int(out["height"])
        if width > 2500 or height > 2500:
            raise _Refused(400, {"error": {"status": 400, "reason": "Bad Request",
                                           "message": "Output size exceeds the 2500 x 2500 px limit."}})
        data = request["input"]["data"][0]
        time_range = data.get("dataFilter", {}).get("timeRange", {})
        start, end = _interval(f"{time_range.get('from', '..')}/{time_range.get('to', '..')}")
        script = _parse_evalscript(request["evalscript"])
        acqs = sorted((a for a in self.acquisitions if a.collection == data["type"] and start <= a.datetime <= end),
                      key=lambda a: a.datetime, reverse=True)
        transform = from_bounds(*bbox, width, height)
        inputs = _mosaic(acqs, script["inputs"], crs, transform, (height, width))
        dtype = SAMPLE_TYPES[script["sample_type"]]
        bands = []
        for name, factor in script["terms"]:
            value = inputs[name].astype("float64") * factor
            if dtype != "float32":
                info = np.iinfo(dtype)
                value = np.clip(np.rint(value), info.min, info.max)
            bands.append(value.astype(dtype))
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", width=width, height=height, count=len(bands), dtype=dtype, crs=crs,
                          transform=transform) as dst:
                dst.write(np.stack(bands))
            payload = mem.read()
        detail = {"width": width, "height": height, "bbox": bbox, "crs": crs.to_epsg(), "from": start, "to": end,
                  "inputs": script["inputs"], "acquisitions": [a.id for a in acqs]}
        return payload, detail


def _feature(acq: Acquisition) -> dict:
    west, south, east, north = acq.footprint()
    props = {"datetime": acq.datetime.astimezone(UTC).isoformat().replace("+00:00", "Z"), **acq.properties}
    if acq.cloud_cover is not None:
        props["eo:cloud_cover"] = acq.cloud_cover
    return {
        "stac_version": "1.0.0", "type": "Feature", "id": acq.id, "collection": acq.collection,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                         [west, north], [west, south]]]},
        "properties": props, "assets": {}, "links": [],
    }


def _interval(text: str | None) -> tuple[datetime, datetime]:
    """A STAC datetime interval ``a/b`` (either side ``..`` or empty for open) as UTC datetimes."""
    low, high = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    if not text:
        return low, high
    a, _, b = text.partition("/")

    def parse(v: str, default: datetime) -> datetime:
        if v in ("", ".."):
            return default
        when = datetime.fromisoformat(v.replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    return parse(a, low), parse(b or a, high)


_TERM = re.compile(r"^sample\.(\w+)(?:\s*\*\s*([0-9.eE+-]+))?$")


def _parse_evalscript(script: str) -> dict:
    """The inputs, output terms and sample type of an evalscript of the supported form (else 400)."""
    def refuse(why: str) -> _Refused:
        return _Refused(400, {"error": {"status": 400, "reason": "Bad Request",
                                        "message": f"Failed to evaluate script! {why}"}})

    if not script.lstrip().startswith("//VERSION=3"):
        raise refuse("only evalscript version 3 is served here")
    m_in = re.search(r"input\s*:\s*\[\s*\{\s*bands\s*:\s*(\[[^\]]*\])", script)
    m_out = re.search(r"output\s*:\s*\{\s*bands\s*:\s*(\d+)\s*,\s*sampleType\s*:\s*\"(\w+)\"", script)
    m_ret = re.search(r"return\s*\[([^\]]*)\]", script)
    if not (m_in and m_out and m_ret):
        raise refuse("setup() or evaluatePixel() not understood")
    inputs = json.loads(m_in.group(1))
    terms = []
    for term in (t.strip() for t in m_ret.group(1).split(",")):
        m = _TERM.match(term)
        if not m or m.group(1) not in inputs:
            raise refuse(f"term {term!r} not understood")
        terms.append((m.group(1), float(m.group(2) or 1.0)))
    if len(terms) != int(m_out.group(1)) or m_out.group(2) not in SAMPLE_TYPES:
        raise refuse("output bands or sampleType do not match evaluatePixel()")
    return {"inputs": inputs, "terms": terms, "sample_type": m_out.group(2)}


def _mosaic(acqs: list[Acquisition], names: list[str], crs: CRS, transform: Affine,
            shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each input band on the requested grid: the most recent acquisition first, older ones filling its gaps."""
    out = {n: np.zeros(shape, dtype="float64") for n in names}
    filled = np.zeros(shape, dtype=bool)
    for acq in acqs:
        missing = [n for n in names if n not in acq.bands]
        if missing:
            raise _Refused(400, {"error": {"status": 400, "reason": "Bad Request",
                                           "message": f"Failed to evaluate script! unknown band(s) {missing}"}})
        warped = {}
        for name in set(names) | {"dataMask"}:
            dst = np.zeros(shape, dtype="float64")
            reproject(acq.bands[name].astype("float64"), dst, src_transform=acq.transform, src_crs=acq.crs,
                      dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest, src_nodata=None,
                      dst_nodata=0)
            warped[name] = dst
        take = (warped["dataMask"] > 0) & ~filled
        for n in names:
            out[n][take] = warped[n][take]
        filled |= take
    if "dataMask" in out:
        out["dataMask"] = filled.astype("float64")
    return out


# --- acquisitions for tests ---


def grid_for(bbox_lonlat: tuple[float, float, float, float], crs: str, gsd: float,
             margin_m: float = 0.0) -> tuple[Affine, tuple[int, int]]:
    """A north-up grid at ``gsd`` covering a lon/lat box (plus ``margin_m``) in ``crs``."""
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    x0, y0, x1, y1 = to_xy.transform_bounds(*bbox_lonlat)
    x0, y0, x1, y1 = x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m
    cols, rows = int(np.ceil((x1 - x0) / gsd)), int(np.ceil((y1 - y0) / gsd))
    return Affine(gsd, 0, x0, 0, -gsd, y1), (rows, cols)


def reflectance_bands(names: tuple[str, ...], shape: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Smooth, distinct reflectance (0.02 to 0.5) for each band name, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    out = {}
    for i, name in enumerate(names):
        base = 0.05 + 0.05 * i + 0.2 * (xx / max(cols - 1, 1)) + 0.1 * (yy / max(rows - 1, 1))
        out[name] = np.clip(base + rng.normal(0, 0.01, shape), 0.02, 0.5).astype("float32")
    return out


def s2_acquisition(
    acq_id: str, when: datetime, crs: str, transform: Affine, shape: tuple[int, int], *,
    cloud: np.ndarray | None = None, imaged: np.ndarray | None = None, cloud_cover: float = 0.0, seed: int = 0,
) -> Acquisition:
    """A Sentinel-2 L2A acquisition: B02/B03/B04/B08 reflectance, SCL (9 where ``cloud``, else 4), dataMask."""
    bands = reflectance_bands(("B02", "B03", "B04", "B08"), shape, seed)
    scl = np.full(shape, 4, dtype="uint8")
    if cloud is not None:
        scl[cloud] = 9
    mask = np.ones(shape, dtype="uint8") if imaged is None else imaged.astype("uint8")
    scl[mask == 0] = 0
    bands.update(SCL=scl, dataMask=mask)
    return Acquisition("sentinel-2-l2a", acq_id, when, crs, transform, bands, cloud_cover=cloud_cover)


def landsat_acquisition(
    acq_id: str, when: datetime, crs: str, transform: Affine, shape: tuple[int, int], *,
    cloud: np.ndarray | None = None, cloud_cover: float = 0.0, seed: int = 0,
) -> Acquisition:
    """A Landsat 8/9 L2 acquisition: B02/B03/B04/B05 reflectance, BQA (QA_PIXEL bits), dataMask."""
    bands = reflectance_bands(("B02", "B03", "B04", "B05"), shape, seed)
    qa = np.full(shape, 21824, dtype="uint16")  # clear, low confidence of cloud, as USGS writes it
    if cloud is not None:
        qa[cloud] = 22280  # cloud bit 3, high confidence
    bands.update(BQA=qa, dataMask=np.ones(shape, dtype="uint8"))
    return Acquisition("landsat-ot-l2", acq_id, when, crs, transform, bands, cloud_cover=cloud_cover)


def vhr_acquisition(collection: str, acq_id: str, when: datetime, scene_tif: Path, *,
                    band_names: tuple[str, ...] = ("B0", "B1", "B2", "B3"), cloud_cover: float = 0.0,
                    properties: dict | None = None) -> Acquisition:
    """A BYOC acquisition cut from a rendered scene's GeoTIFF: its counts under ``band_names``, its mask as dataMask."""
    with rasterio.open(scene_tif) as src:
        data, mask = src.read(), src.dataset_mask()
        crs, transform = src.crs.to_string(), src.transform
    bands = {name: data[i] for i, name in enumerate(band_names)}
    bands["dataMask"] = (mask > 0).astype("uint8")
    return Acquisition(collection, acq_id, when, crs, transform, bands, cloud_cover=cloud_cover,
                       properties=dict(properties or {}))


def utc(text: str) -> datetime:
    """``2024-06-14T09:30:00`` (UTC) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


__all__ = [
    "Acquisition", "Fault", "Hit", "SentinelHubServer", "grid_for", "landsat_acquisition", "reflectance_bands",
    "s2_acquisition", "utc", "vhr_acquisition",
]
