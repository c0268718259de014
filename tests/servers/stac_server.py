"""A STAC API and a COG file server on loopback, with URL signing and fault injection.

Real HTTP for the real clients: pystac-client searches it, odc-stac and GDAL
read its Cloud-Optimized GeoTIFFs with range requests. It implements what
those clients use of the STAC API (landing page, conformance, collections,
item search by collection, bbox and datetime, with paging), a Planetary
Computer style token service (``/sas/<collection>``) whose tokens expire,
storage that refuses unsigned or expired URLs under ``/signed/``, and
injected faults (status codes with headers, or a hang) per path prefix.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import rasterio
from affine import Affine

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/conf/1.0/core",
    "http://www.opengis.net/spec/ogcapi-features-1/conf/1.0/geojson",
]


@dataclass
class Fault:
    """One injected answer: ``status`` with ``headers``, or a hang of ``delay_s`` first."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Hit:
    """A request the server saw."""

    at: float
    method: str
    path: str
    query: str
    status: int
    range: str | None = None


class StacServer:
    """Serve ``root`` (files) and a STAC API of the items added with :meth:`add_item`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.items: list[dict] = []
        self.collections: dict[str, dict] = {}
        self.faults: dict[str, deque[Fault]] = {}
        self.hits: list[Hit] = []
        self.token_lifetime_s = 3600.0
        self.tokens: dict[str, float] = {}
        self.page_size = 2
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StacServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add_item(self, item: dict) -> None:
        self.items.append(item)
        cid = item["collection"]
        self.collections.setdefault(cid, {
            "type": "Collection", "id": cid, "stac_version": "1.0.0", "description": cid, "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "links": [],
        })

    def fail(self, prefix: str, *faults: Fault) -> None:
        """Answer the next requests whose path starts with ``prefix`` with ``faults``, in order."""
        with self._lock:
            self.faults.setdefault(prefix, deque()).extend(faults)

    def hits_for(self, prefix: str) -> list[Hit]:
        return [h for h in self.hits if h.path.startswith(prefix)]

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for prefix, queue in self.faults.items():
                if path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    def _new_token(self) -> tuple[str, datetime]:
        token = f"se=x&sp=rl&sig={secrets.token_hex(12)}"
        expiry = datetime.now(UTC) + timedelta(seconds=self.token_lifetime_s)
        self.tokens[token.split("sig=")[1]] = expiry.timestamp()
        return token, expiry


def _search(server: StacServer, params: dict) -> tuple[list[dict], int]:
    """Items matching collections, bbox and datetime; and the offset of the next page."""
    collections = params.get("collections")
    if isinstance(collections, str):
        collections = collections.split(",")
    bbox = params.get("bbox")
    if isinstance(bbox, str):
        bbox = [float(v) for v in bbox.split(",")]
    start = end = None
    if params.get("datetime"):
        a, _, b = str(params["datetime"]).partition("/")
        start = None if a in ("", "..") else datetime.fromisoformat(a.replace("Z", "+00:00"))
        end = None if b in ("", "..") else datetime.fromisoformat(b.replace("Z", "+00:00"))
    out = []
    for item in server.items:
        if collections and item["collection"] not in collections:
            continue
        if bbox is not None:
            w, s, e, n = item["bbox"]
            if w > bbox[2] or e < bbox[0] or s > bbox[3] or n < bbox[1]:
                continue
        when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
        if (start and when < start) or (end and when > end):
            continue
        out.append(item)
    offset = int(params.get("token") or 0)
    return out, offset


def _handler(server: StacServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes = b"", ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            parts = urlsplit(self.path)
            server.hits.append(Hit(time.time(), self.command, parts.path, parts.query, status,
                                   self.headers.get("Range")))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj: object, status: int = 200) -> None:
            self._send(status, json.dumps(obj).encode())

        def _route(self, body: dict | None) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
            fault = server._next_fault(path)
            if fault is not None:
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                self._send(fault.status, json.dumps({"error": f"injected {fault.status}"}).encode(),
                           headers=fault.headers)
                return
            base = server.url
            if path in ("", "/"):
                self._json({
                    "type": "Catalog", "id": "loopback", "stac_version": "1.0.0", "description": "test API",
                    "conformsTo": CONFORMANCE,
                    "links": [
                        {"rel": "self", "href": f"{base}/", "type": "application/json"},
                        {"rel": "root", "href": f"{base}/", "type": "application/json"},
                        {"rel": "conformance", "href": f"{base}/conformance"},
                        {"rel": "data", "href": f"{base}/collections"},
                        {"rel": "search", "href": f"{base}/search", "method": "GET",
                         "type": "application/geo+json"},
                        {"rel": "search", "href": f"{base}/search", "method": "POST",
                         "type": "application/geo+json"},
                    ],
                })
            elif path == "/conformance":
                self._json({"conformsTo": CONFORMANCE})
            elif path == "/collections":
                self._json({"collections": list(server.collections.values()), "links": []})
            elif path.startswith("/collections/"):
                cid = path.split("/")[2]
                if cid in server.collections:
                    self._json(server.collections[cid])
                else:
                    self._json({"code": "NotFound"}, 404)
            elif path == "/search":
                params = dict(query)
                params.update(body or {})
                found, offset = _search(server, params)
                limit = min(int(params.get("limit") or server.page_size), server.page_size)
                page = found[offset : offset + limit]
                links = []
                if offset + limit < len(found):
                    if self.command == "POST":
                        links.append({"rel": "next", "href": f"{base}/search", "method": "POST",
                                      "body": {**(body or {}), "token": str(offset + limit)}, "merge": False})
                    else:
                        links.append({"rel": "next", "href": f"{base}/search?{parts.query}&token={offset + limit}"})
                self._send(200, json.dumps({"type": "FeatureCollection", "features": page, "links": links}).encode(),
                           "application/geo+json")
            elif path.startswith("/sas/"):
                token, expiry = server._new_token()
                self._json({"token": token, "msft:expiry": expiry.isoformat().replace("+00:00", "Z")})
            elif path.startswith(("/files/", "/signed/")):
                if path.startswith("/signed/"):
                    sig = query.get("sig")
                    if sig is None or server.tokens.get(sig, 0) < time.time():
                        self._send(403, b"<Error><Code>AuthenticationFailed</Code></Error>", "application/xml")
                        return
                self._file(server.root / path.split("/", 2)[2])
            else:
                self._json({"code": "NotFound", "path": path}, 404)

        def _file(self, file: Path) -> None:
            if not file.is_file():
                self._send(404, b"not found", "text/plain")
                return
            data = file.read_bytes()
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first = rng[6:].split(",")[0]
                a, _, b = first.partition("-")
                start = int(a) if a else max(0, len(data) - int(b))
                end = min(len(data) - 1, int(b)) if (a and b) else len(data) - 1
                if start >= len(data):
                    self._send(416, b"", "application/octet-stream", {"Content-Range": f"bytes */{len(data)}"})
                    return
                self._send(206, data[start : end + 1], "image/tiff",
                           {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})
            else:
                self._send(200, data, "image/tiff", {"Accept-Ranges": "bytes"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._route(None)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(None)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            self._route(json.loads(raw or b"{}"))

    return Handler


# -- making COGs and Items ------------------------------------------------------------------------


def write_cog(path: Path, data: np.ndarray, crs: str, transform: Affine, nodata: float | None = 0) -> Path:
    """A single-band or multi-band Cloud-Optimized GeoTIFF (tiled 256, with overviews)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = data if data.ndim == 3 else data[None]
    profile = {"driver": "COG", "width": arr.shape[2], "height": arr.shape[1], "count": arr.shape[0],
               "dtype": arr.dtype.name, "crs": crs, "transform": transform, "nodata": nodata, "blocksize": 256,
               "compress": "DEFLATE"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def item_dict(
    item_id: str, collection: str, when: datetime, bbox: list[float], assets: dict[str, dict],
    properties: dict | None = None,
) -> dict:
    """A STAC Item as a STAC API returns it."""
    w, s, e, n = bbox
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
        "bbox": bbox,
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": when.astimezone(UTC).isoformat().replace("+00:00", "Z"), **(properties or {})},
        "assets": assets, "links": [],
        "stac_extensions": ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
    }


def asset(href: str, epsg: int, shape: tuple[int, int], transform: Affine, *, scale: float | None = None,
          offset: float | None = None, nodata: float = 0, dtype: str = "uint16") -> dict:
    """An asset entry with projection and raster extension fields, as Earth Search writes them."""
    raster: dict = {"nodata": nodata, "data_type": dtype}
    if scale is not None:
        raster["scale"] = scale
    if offset is not None:
        raster["offset"] = offset
    return {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
            "proj:epsg": epsg, "proj:shape": list(shape), "proj:transform": list(transform)[:6],
            "raster:bands": [raster]}
