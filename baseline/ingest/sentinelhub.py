"""Sentinel Hub through sentinelhub-py: Sentinel-2 L2A, Landsat 8/9 L2, and very-high-resolution BYOC/BATCH data.

What a run asks for (``scene.sentinelhub``, ``scene.selection``,
``scene.masks``, ``scene.http``) becomes, in order:

1. Credentials: ``SH_CLIENT_ID``/``SH_CLIENT_SECRET`` from the environment,
   else the sentinelhub-py config profile ``scene.sentinelhub.profile``. They
   are registered with :mod:`baseline.core.secrets` before any request, and
   so is every access token received, so no log line, message or output shows
   them. Provenance names the deployment and the collection, never a secret.
2. Catalog API search of the city's box over the date range (local dates).
   Features seconds apart are one overpass; overpasses outside the local
   weekdays or hours are dropped (local time is recorded).
3. Cloud over the city, not over the tile: one coarse Process request per
   overpass returns the class band (Sentinel-2 SCL, or s2cloudless CLP;
   Landsat QA_PIXEL) and ``dataMask`` on the city's grid; the unusable
   fraction and the imaged fraction are measured inside the box. Very-high-
   resolution collections have no class band: coverage is measured the same
   way and the cloud figure is the catalog's. Overpasses above
   ``max_cloud_fraction`` or below ``min_coverage`` are dropped; the least
   cloudy is taken (then the most complete, then the most recent).
4. Pixels: an evalscript returning UINT16 (reflectance x 10000, the class
   band, ``dataMask``) on the city's UTM grid at ``gsd_m``, in pieces of at
   most 2500 x 2500 px (the Process API's limit), staged with
   :func:`baseline.ingest.staging.stage_scene`. The stage key digests what
   was asked for, so a rerun of the same request reuses the staged scene
   without contacting the service.

HTTP follows ``scene.http``: every request (token, catalog, process) has a
timeout, 429 and 5xx answers and dropped connections are retried with capped,
jittered exponential backoff that honours ``Retry-After`` (milliseconds, the
Sentinel Hub convention; a longer wait than ``backoff_max_s`` is not waited
for), a token the service refuses is renewed once, and the whole conversation
is bounded by ``deadline_s``. Every failure becomes a
:class:`baseline.errors.SourceError` (bad credentials, unreachable endpoint,
rate limits) or :class:`baseline.errors.ConfigError` (missing credentials,
unsupported settings) that names Sentinel Hub, the URL and what to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import requests
from affine import Affine
from pyproj import CRS, Transformer

from baseline.core.scene import SENSOR_LANDSAT, SENSOR_S2, SENSOR_VHR, Scene
from baseline.core.secrets import redact, register_secret
from baseline.errors import BaselineError, ConfigError, SourceError
from baseline.ingest.http import RETRY_STATUSES, Deadline, HttpPolicy, backoff_delays, public_url
from baseline.ingest.selection import in_local_window
from baseline.ingest.staging import StagedMetadata, find_staged, stage_scene
from baseline.preprocess.masks import class_band_unusable

log = logging.getLogger(__name__)

SOURCE = "Sentinel Hub"
MAIN_DEPLOYMENT = "https://services.sentinel-hub.com"
USWEST_DEPLOYMENT = "https://services-uswest2.sentinel-hub.com"
MAX_PIECE_PX = 2500  # the Process API's largest output side
EVALSCRIPT_VERSION = "citybaseline-sh-1"  # change when the evalscripts change: staged scenes are then refetched
PASS_GAP = timedelta(minutes=30)  # catalog features closer in time than this are one overpass
PASS_MARGIN = timedelta(minutes=5)  # time range around an overpass asked of the Process API
COARSE_PX = 100  # longest side of the request that measures cloud over the city
MAX_MEASURED = 30  # overpasses measured at most (lowest tile cloud first)
DEFAULT_WINDOW_DAYS = 90  # search window when scene.selection.start is not given
TOKEN_REFRESH_S = 120.0  # renew a token this long before it expires (sentinelhub-py's default)
CREDENTIALS_HINT = (
    "set SH_CLIENT_ID and SH_CLIENT_SECRET to an OAuth client of this deployment "
    "(or name a sentinelhub-py profile holding them in scene.sentinelhub.profile)"
)
COMMON_BANDS = ("blue", "green", "red", "nir")


@dataclass(frozen=True)
class CollectionKind:
    """What the run needs to know of a collection: its ids, sensor, bands and default pixel size.

    ``reflectance`` pairs common names with Sentinel Hub band names; ``factor``
    turns the service's sample values into counts of 1e-4 (10000 for bands in
    reflectance units; 1 for BYOC bands, stored as such counts).
    """

    api_id: str
    sensor: str
    reflectance: tuple[tuple[str, str], ...]
    class_band: tuple[str, str] | None
    factor: float
    default_gsd_m: float

    @property
    def is_vhr(self) -> bool:
        return self.sensor == SENSOR_VHR


def collection_kind(name: str) -> CollectionKind:
    """The :class:`CollectionKind` of ``scene.sentinelhub.collection``; BYOC/BATCH bands are resolved later."""
    if name == "sentinel-2-l2a":
        return CollectionKind(name, SENSOR_S2, (("blue", "B02"), ("green", "B03"), ("red", "B04"), ("nir", "B08")),
                              ("scl", "SCL"), 10000.0, 10.0)
    if name == "landsat-ot-l2":
        return CollectionKind(name, SENSOR_LANDSAT,
                              (("blue", "B02"), ("green", "B03"), ("red", "B04"), ("nir", "B05")),
                              ("qa_pixel", "BQA"), 10000.0, 30.0)
    prefix, _, ident = name.partition("-")
    if prefix in ("byoc", "batch"):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", ident):
            raise ConfigError(f"scene.sentinelhub.collection {name!r} does not name a collection",
                              hint=f"use {prefix}-<collection id> with the id from the Sentinel Hub dashboard")
        return CollectionKind(name, SENSOR_VHR, (), None, 1.0, 0.3)
    raise ConfigError(
        f"scene.sentinelhub.collection {name!r} is not supported",
        hint="use sentinel-2-l2a, landsat-ot-l2, or byoc-<collection id> / batch-<collection id>",
    )


def vhr_bands(description: dict, collection: str) -> tuple[tuple[str, str], ...]:
    """Blue, green, red and NIR of a BYOC/BATCH collection, from its catalog description's ``eo:bands``.

    A band counts when its ``common_name`` or its name (any case) is blue,
    green, red or nir (nir08 and nir1 too, as WorldView names it). Bands named
    only B0 to B3 follow Sentinel Hub's Airbus Pleiades/SPOT convention (B0
    blue, B1 green, B2 red, B3 NIR).
    """
    found: dict[str, str] = {}
    listed = description.get("summaries", {}).get("eo:bands") or []
    for band in listed:
        name = str(band.get("name", ""))
        for label in (band.get("common_name"), name):
            key = str(label or "").lower()
            key = "nir" if key in ("nir08", "nir1") else key
            if key in COMMON_BANDS and key not in found:
                found[key] = name
    names_listed = {str(b.get("name")) for b in listed}
    if not found and {"B0", "B1", "B2", "B3"} <= names_listed:
        found = dict(zip(COMMON_BANDS, ("B0", "B1", "B2", "B3"), strict=True))
    missing = [b for b in COMMON_BANDS if b not in found]
    if missing:
        names = ", ".join(str(b.get("name")) for b in listed) or "(none listed)"
        raise ConfigError(
            f"Sentinel Hub collection {collection!r} has no band for {', '.join(missing)}",
            hint=f"its bands: {names}; name them blue/green/red/nir or give them eo:common_name in the collection",
        )
    return tuple((b, found[b]) for b in COMMON_BANDS)


# --- the city's grid ---


@dataclass(frozen=True)
class CityGrid:
    """The pixel grid a scene is fetched on: the city's box in its UTM CRS, snapped to ``gsd``."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    @property
    def epsg(self) -> int:
        return int(self.crs.to_epsg())

    def window_bbox(self, r0: int, r1: int, c0: int, c1: int) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of rows ``r0:r1`` and columns ``c0:c1``."""
        t = self.transform
        return t.c + c0 * t.a, t.f + r1 * t.e, t.c + c1 * t.a, t.f + r0 * t.e


def city_grid(aoi: object, gsd: float) -> CityGrid:
    """The grid covering ``aoi`` (an :class:`~baseline.ingest.sources.AreaOfInterest`) at ``gsd`` metres."""
    crs = CRS.from_user_input(aoi.crs)  # type: ignore[attr-defined]
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    west, south, east, north = aoi.bbox()  # type: ignore[attr-defined]
    if west > east:  # across the antimeridian: project the box as one span of longitudes
        east += 360.0
    xs, ys = to_xy.transform(*np.meshgrid(np.linspace(west, east, 21), np.linspace(south, north, 21)))
    x0, x1 = np.floor(np.min(xs) / gsd) * gsd, np.ceil(np.max(xs) / gsd) * gsd
    y0, y1 = np.floor(np.min(ys) / gsd) * gsd, np.ceil(np.max(ys) / gsd) * gsd
    shape = (round((y1 - y0) / gsd), round((x1 - x0) / gsd))
    return CityGrid(crs, Affine(gsd, 0.0, float(x0), 0.0, -gsd, float(y1)), shape)


def coarse_grid(grid: CityGrid) -> CityGrid:
    """The same box at a pixel size giving at most :data:`COARSE_PX` pixels a side (never finer than ``grid``)."""
    rows, cols = grid.shape
    scale = max(1.0, max(rows, cols) / COARSE_PX)
    shape = (max(1, int(np.ceil(rows / scale))), max(1, int(np.ceil(cols / scale))))
    t = grid.transform
    return CityGrid(grid.crs, Affine(t.a * cols / shape[1], 0.0, t.c, 0.0, t.e * rows / shape[0], t.f), shape)


def inside_aoi(aoi: object, grid: CityGrid) -> np.ndarray:
    """True for the pixels of ``grid`` whose centre lies in the AOI's lon/lat box."""
    rows, cols = grid.shape
    t = grid.transform
    xs, ys = np.meshgrid(t.c + t.a * (np.arange(cols) + 0.5), t.f + t.e * (np.arange(rows) + 0.5))
    lon, lat = Transformer.from_crs(grid.crs, 4326, always_xy=True).transform(xs, ys)
    west, south, east, north = aoi.bbox()  # type: ignore[attr-defined]
    in_lon = ((lon >= west) | (lon <= east)) if west > east else ((lon >= west) & (lon <= east))
    return in_lon & (lat >= south) & (lat <= north)


# --- evalscripts ---


def evalscript(inputs: list[tuple[str, float]], sample_type: str = "UINT16") -> str:
    """A version-3 evalscript returning each ``(band, factor)`` as ``sample.band * factor``, then dataMask.

    The service rounds and clamps to ``sample_type``; reflectance x 10000 as
    UINT16 is the staging convention (counts of 1e-4).
    """
    names = [b for b, _ in inputs] + ["dataMask"]
    terms = [f"sample.{b} * {f:g}" if f != 1 else f"sample.{b}" for b, f in inputs] + ["sample.dataMask"]
    return (
        "//VERSION=3\n"
        f"// {EVALSCRIPT_VERSION}: {', '.join(names)} as {sample_type}\n"
        "function setup() {\n"
        f"  return {{ input: [{{ bands: {json.dumps(names)} }}], output: {{ bands: {len(names)}, "
        f'sampleType: "{sample_type}" }} }};\n'
        "}\n"
        "function evaluatePixel(sample) {\n"
        f"  return [{', '.join(terms)}];\n"
        "}\n"
    )


# --- overpasses and how one is chosen ---


@dataclass
class Overpass:
    """Catalog features sensed within minutes of each other: one acquisition of the city."""

    features: list[dict]
    start: datetime
    end: datetime
    cloud_fraction: float | None = None
    coverage: float | None = None
    cloud_basis: str = ""

    @property
    def when(self) -> datetime:
        return self.start + (self.end - self.start) / 2

    @property
    def ids(self) -> list[str]:
        return [str(f.get("id")) for f in self.features]

    def mean_property(self, key: str) -> float | None:
        values = [float(v) for f in self.features if (v := f.get("properties", {}).get(key)) is not None]
        return float(np.mean(values)) if values else None

    @property
    def tile_cloud(self) -> float | None:
        """The catalog's cloud cover of the whole tiles (0 to 1), not of the city."""
        pct = self.mean_property("eo:cloud_cover")
        return None if pct is None else pct / 100.0


def group_overpasses(features: list[dict]) -> list[Overpass]:
    """Features in time order, split where consecutive datetimes are more than :data:`PASS_GAP` apart."""
    dated = sorted(((_parse_datetime(f), f) for f in features), key=lambda p: p[0])
    passes: list[Overpass] = []
    for when, feature in dated:
        if passes and when - passes[-1].end <= PASS_GAP:
            passes[-1].features.append(feature)
            passes[-1].end = when
        else:
            passes.append(Overpass([feature], when, when))
    return passes


def _parse_datetime(feature: dict) -> datetime:
    text = str(feature.get("properties", {}).get("datetime", ""))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(f"{SOURCE}: catalog feature {feature.get('id')!r} has no valid datetime ({text!r})",
                          hint="the catalog answered something unexpected; retry later") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def rank_key(p: Overpass) -> tuple[float, float, float]:
    """Least cloudy over the city first, then most complete, then most recent."""
    return (p.cloud_fraction or 0.0, -(p.coverage or 0.0), -p.when.timestamp())


# --- sentinelhub-py with the run's HTTP policy ---


def _pause(seconds: float, deadline: Deadline) -> bool:
    """Sleep ``seconds`` unless that would overrun ``deadline``; say whether it slept."""
    if seconds >= deadline.remaining:
        return False
    time.sleep(seconds)
    return True


def _retry_wait(response: requests.Response, fallback: float, policy: HttpPolicy) -> float | None:
    """How long to wait before retrying ``response``: its Retry-After (ms) plus jitter, else ``fallback``.

    None when the service asks for longer than ``backoff_max_s``: the request
    fails now instead of sleeping for as long as the service likes.
    """
    header = response.headers.get("Retry-After")
    if header is None:
        return fallback
    try:
        seconds = float(header) / 1000.0  # Sentinel Hub counts Retry-After in milliseconds
    except ValueError:
        return fallback
    if seconds > policy.backoff_max_s:
        return None
    return min(policy.backoff_max_s, seconds + random.uniform(0.0, policy.backoff_s))


def _client_classes() -> tuple[type, type]:
    """The session and download client, subclassed from sentinelhub-py (imported only when used)."""
    from oauthlib.oauth2 import BackendApplicationClient
    from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
    from requests_oauthlib import OAuth2Session
    from sentinelhub import SentinelHubDownloadClient, SentinelHubSession
    from sentinelhub.constants import SHConstants

    class PolicySession(SentinelHubSession):
        """sentinelhub-py's OAuth2 session, with a timeout and the run's retries on the token request.

        sentinelhub-py renews a token :data:`TOKEN_REFRESH_S` before it
        expires; :meth:`renew` also renews one the service refused early.
        Every token received is registered as a secret.
        """

        def __init__(self, config: object, *, policy: HttpPolicy, deadline: Deadline) -> None:
            self._policy, self._deadline = policy, deadline
            super().__init__(config=config, refresh_before_expiry=TOKEN_REFRESH_S)

        def renew(self, refused_token: str | None) -> None:
            """Fetch a new token unless another thread already replaced ``refused_token``."""
            if refused_token is None or self._token.get("access_token") == refused_token:
                self._token = self._collect_new_token()

        def _collect_new_token(self) -> dict:
            url = self.config.sh_token_url
            delays = backoff_delays(self._policy)
            attempt = 0
            while True:
                self._deadline.check("fetching an access token")
                try:
                    token = self._request_token(url)
                except InsecureTransportError:
                    raise ConfigError(
                        f"{SOURCE}: the token URL {public_url(url)} is not https, and credentials are never sent "
                        "in clear", hint="use an https:// scene.sentinelhub.token_url / base_url") from None
                except OAuth2Error as exc:
                    raise SourceError(
                        f"{SOURCE}: the token service at {public_url(url)} refused the client credentials "
                        f"({exc.error})", hint=CREDENTIALS_HINT) from None
                except requests.HTTPError as exc:
                    status = exc.response.status_code
                    if status in (400, 401, 403):
                        raise SourceError(
                            f"{SOURCE}: the token service at {public_url(url)} refused the client credentials "
                            f"(HTTP {status})", hint=CREDENTIALS_HINT) from None
                    wait = _retry_wait(exc.response, delays[attempt], self._policy) if (
                        status in RETRY_STATUSES and attempt < len(delays)) else None
                    if wait is None or not _pause(wait, self._deadline):
                        raise status_error(status, url, "fetching an access token", "") from None
                except (requests.ConnectionError, requests.Timeout) as exc:
                    if attempt >= len(delays) or not _pause(delays[attempt], self._deadline):
                        raise connection_error(exc, url, "fetching an access token", self._policy) from None
                else:
                    register_secret(token.get("access_token"))
                    register_secret(token.get("refresh_token"))
                    return token
                attempt += 1

        def _request_token(self, url: str) -> dict:
            """One OAuth2 client-credentials request, as sentinelhub-py makes it, with a timeout."""
            timeout = max(0.5, min(self._policy.timeout_s, self._deadline.remaining))
            with OAuth2Session(client=BackendApplicationClient(client_id=self.config.sh_client_id)) as oauth:
                oauth.register_compliance_hook("access_token_response", _raise_retryable)
                oauth.register_compliance_hook("access_token_response", self._compliance_hook)
                return oauth.fetch_token(
                    token_url=url, client_id=self.config.sh_client_id, client_secret=self.config.sh_client_secret,
                    headers={**self.DEFAULT_HEADERS, **SHConstants.HEADERS}, include_client_id=True,
                    timeout=timeout,
                )

    class PolicyClient(SentinelHubDownloadClient):
        """sentinelhub-py's download client, retrying as ``scene.http`` says.

        sentinelhub-py's own retries (fixed factor 3, no jitter, no cap, an
        unbounded wait on 429) are switched off in the config
        (``max_download_attempts=1``, ``max_retries=1``); each request is
        repeated here instead, inside the library's own request call.
        """

        def __init__(self, *, policy: HttpPolicy, deadline: Deadline, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self._policy, self._deadline = policy, deadline

        def _do_download(self, request: object) -> requests.Response:
            delays = backoff_delays(self._policy)
            attempt, renewed = 0, False
            url = public_url(str(request.url))  # type: ignore[attr-defined]
            while True:
                self._deadline.check(f"requesting {url}")
                try:
                    response = super()._do_download(request)
                except (requests.ConnectionError, requests.Timeout):
                    if attempt >= len(delays) or not _pause(delays[attempt], self._deadline):
                        raise
                    attempt += 1
                    continue
                status = response.status_code
                if status == 401 and request.use_session and not renewed:  # type: ignore[attr-defined]
                    renewed = True
                    log.info("%s refused the access token; fetching a new one", url)
                    self._execute_thread_safe(self.session.renew, _bearer(response))
                    continue
                if status in RETRY_STATUSES and attempt < len(delays):
                    wait = _retry_wait(response, delays[attempt], self._policy)
                    if wait is not None and _pause(wait, self._deadline):
                        log.info("%s answered HTTP %d; retrying in %.2f s", url, status, wait)
                        attempt += 1
                        continue
                return response

    return PolicySession, PolicyClient


def _raise_retryable(response: requests.Response) -> requests.Response:
    """Token answers 429/5xx become HTTPError (retried), whatever their body says."""
    if response.status_code in RETRY_STATUSES:
        response.raise_for_status()
    return response


def _bearer(response: requests.Response) -> str | None:
    header = str(response.request.headers.get("Authorization", "")) if response.request is not None else ""
    return header[7:] if header.startswith("Bearer ") else None


# --- errors ---


def status_error(status: int, url: str, doing: str, server_message: str) -> SourceError:
    """A final HTTP status as a :class:`SourceError` that says what to do."""
    said = f": {server_message}" if server_message else ""
    where = public_url(url)
    if status in (401, 403):
        return SourceError(f"{SOURCE}: {where} refused access (HTTP {status}{said}) while {doing}",
                           hint=CREDENTIALS_HINT + "; check also that the client may use this collection and "
                           "has processing units left")
    if status == 404:
        return SourceError(f"{SOURCE}: {where} not found (HTTP 404{said}) while {doing}",
                           hint="check scene.sentinelhub.base_url and scene.sentinelhub.collection")
    if status == 429:
        return SourceError(f"{SOURCE}: {where} kept rate-limiting (HTTP 429) while {doing}",
                           hint="wait and rerun, or raise scene.http.max_retries / backoff_max_s")
    if status >= 500:
        return SourceError(f"{SOURCE}: {where} kept failing (HTTP {status}) while {doing}",
                           hint="the service is failing on its side: retry later")
    return SourceError(f"{SOURCE}: {where} rejected the request (HTTP {status}{said}) while {doing}",
                       hint="check scene.sentinelhub (collection, gsd_m) and scene.aoi")


def connection_error(exc: BaseException, url: str, doing: str, policy: HttpPolicy) -> SourceError:
    """A timeout or a refused connection as a :class:`SourceError`."""
    if isinstance(exc, requests.Timeout):
        return SourceError(
            f"{SOURCE}: no answer from {public_url(url)} within {policy.timeout_s:g} s while {doing}",
            hint="the endpoint is slow or unreachable; check scene.sentinelhub.base_url, your network, "
            "or raise scene.http.timeout_s")
    return SourceError(f"{SOURCE}: cannot reach {public_url(url)} while {doing}",
                       hint="check scene.sentinelhub.base_url / token_url and your network connection")


def _server_message(response: requests.Response | None) -> str:
    """The service's own error text, short and redacted."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error", body) if isinstance(body, dict) else {}
    text = error.get("message") or error.get("description") or "" if isinstance(error, dict) else str(error)
    return redact(str(text))[:200]


@contextmanager
def translated_errors(doing: str, base_url: str, policy: HttpPolicy) -> Iterator[None]:
    """Turn what sentinelhub-py and requests raise into a :class:`SourceError` naming Sentinel Hub."""
    from sentinelhub.exceptions import (
        DownloadFailedException,
        ImageDecodingError,
        MissingDataInRequestException,
        OutOfRequestsException,
        SHRateLimitWarning,
    )

    try:
        with warnings.catch_warnings():  # a 429 given up on is reported below, once, with what to do
            warnings.simplefilter("ignore", SHRateLimitWarning)
            yield
    except BaselineError:
        raise
    except OutOfRequestsException:
        raise SourceError(
            f"{SOURCE}: {public_url(base_url)} kept rate-limiting (HTTP 429) after {policy.max_retries} retries "
            f"while {doing}",
            hint="wait and rerun, or raise scene.http.max_retries / backoff_max_s (a Retry-After longer than "
            "backoff_max_s is not waited for)") from None
    except DownloadFailedException as exc:
        cause = exc.request_exception
        url = str(getattr(getattr(cause, "request", None), "url", None) or base_url)
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            raise status_error(cause.response.status_code, url, doing, _server_message(cause.response)) from None
        if isinstance(cause, requests.RequestException):
            raise connection_error(cause, url, doing, policy) from None
        raise SourceError(f"{SOURCE}: download failed while {doing}", hint="retry later") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        url = str(getattr(exc.request, "url", None) or base_url)
        raise connection_error(exc, url, doing, policy) from None
    except (ImageDecodingError, MissingDataInRequestException) as exc:
        raise SourceError(f"{SOURCE}: {public_url(base_url)} answered something unexpected while {doing} "
                          f"({type(exc).__name__})", hint="retry later; report it if it persists") from None


class _StripFailed(Exception):
    """Carries a failure out of :func:`stage_scene` unchanged (it would make any OSError an OutputError)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


# --- credentials ---


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    origin: str  # "environment" or "profile <name>": where they came from, safe to show


def read_credentials(profile: str | None) -> Credentials:
    """``SH_CLIENT_ID``/``SH_CLIENT_SECRET``, else the sentinelhub-py profile; both registered as secrets.

    Raises:
        ConfigError: neither holds both values.
    """
    cid, secret = os.environ.get("SH_CLIENT_ID", ""), os.environ.get("SH_CLIENT_SECRET", "")
    register_secret(cid)
    register_secret(secret)
    if cid and secret:
        return Credentials(cid, secret, "environment")
    if cid or secret:
        raise ConfigError(f"{SOURCE}: only one of SH_CLIENT_ID and SH_CLIENT_SECRET is set",
                          hint="set both, or neither and use scene.sentinelhub.profile")
    from sentinelhub import SHConfig

    location = Path(SHConfig.get_config_location())
    name = profile or os.environ.get("SH_PROFILE") or "default-profile"
    if location.is_file():  # SHConfig.load would write a default file where there is none
        try:
            loaded = SHConfig.load(profile=name)
        except KeyError:
            if profile is not None:
                raise ConfigError(f"{SOURCE}: profile {profile!r} is not in {location}",
                                  hint="scene.sentinelhub.profile must name a profile of the sentinelhub-py config"
                                  ) from None
        else:
            register_secret(loaded.sh_client_id)
            register_secret(loaded.sh_client_secret)
            if loaded.sh_client_id and loaded.sh_client_secret:
                return Credentials(loaded.sh_client_id, loaded.sh_client_secret, f"profile {name}")
    raise ConfigError(f"{SOURCE} needs credentials: SH_CLIENT_ID and SH_CLIENT_SECRET are not set",
                      hint=f"{CREDENTIALS_HINT}; no profile {name!r} with credentials in {location}")


def default_token_url(base_url: str) -> str:
    """The OAuth token URL of a deployment.

    Copernicus Data Space has its own identity service; every
    ``*.sentinel-hub.com`` deployment authenticates at services.sentinel-hub.com;
    any other deployment at ``<base_url>/auth/realms/main/...``.
    """
    host = urlsplit(base_url).hostname or ""
    if host.endswith("dataspace.copernicus.eu"):
        return "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
    if host.endswith(".sentinel-hub.com"):
        return MAIN_DEPLOYMENT + "/auth/realms/main/protocol/openid-connect/token"
    return base_url.rstrip("/") + "/auth/realms/main/protocol/openid-connect/token"


def deployment_for(base_url: str, collection: str) -> str:
    """The deployment that serves ``collection``: Landsat lives on US-West-2, not on the main deployment."""
    base_url = base_url.rstrip("/")
    if collection == "landsat-ot-l2" and base_url == MAIN_DEPLOYMENT:
        return USWEST_DEPLOYMENT
    return base_url


# --- the source ---


@dataclass
class _Connection:
    """One authenticated conversation with the service."""

    config: object
    client: object
    catalog: object
    collection: object
    deadline: Deadline


class SentinelHubSource:
    """Scenes from the Sentinel Hub Process API, chosen and staged as the module docstring says."""

    name = "sentinelhub"

    def __init__(self, spec: object, *, folder: Path, aoi: object, show_progress: bool = True) -> None:
        self.spec = spec
        self.sh = spec.sentinelhub  # type: ignore[attr-defined]
        self.selection = spec.selection  # type: ignore[attr-defined]
        self.masks = spec.masks  # type: ignore[attr-defined]
        self.folder = Path(folder)
        self.aoi = aoi
        self.show_progress = show_progress
        self.policy = HttpPolicy.from_spec(spec.http)  # type: ignore[attr-defined]
        self.kind = collection_kind(self.sh.collection)
        self.base_url = deployment_for(self.sh.base_url, self.sh.collection)
        self.token_url = self.sh.token_url or default_token_url(self.base_url)
        self.tz = ZoneInfo(aoi.timezone)  # type: ignore[attr-defined]
        self.gsd = float(self.sh.gsd_m or self.kind.default_gsd_m)
        if self.selection.strategy == "median":
            raise ConfigError(
                "scene.selection.strategy 'median' is not supported for scene.source sentinelhub",
                hint="use strategy: least-cloudy (the clearest acquisition over the city), or scene.source: stac")
        if self.masks.cloud == "s2cloudless" and self.kind.sensor != SENSOR_S2:
            raise ConfigError(f"scene.masks.cloud 's2cloudless' needs Sentinel-2, not {self.sh.collection!r}",
                              hint="use cloud: auto")
        self.start, self.end = self._dates()
        for var in ("SH_CLIENT_ID", "SH_CLIENT_SECRET"):  # hide them from every log line from now on
            register_secret(os.environ.get(var))

    def _dates(self) -> tuple[date, date]:
        """The local date range searched: the selection's, or the last :data:`DEFAULT_WINDOW_DAYS` days."""
        end = self.selection.end or datetime.now(self.tz).date()
        start = self.selection.start or end - timedelta(days=DEFAULT_WINDOW_DAYS)
        if start > end:
            raise ConfigError(f"scene.selection: start {start} is after end {end}")
        return start, end

    def request_key(self) -> str:
        """Digest of everything that decides the staged pixels (no credentials)."""
        s = self.selection
        parts = {
            "deployment": public_url(self.base_url), "collection": self.sh.collection, "aoi": list(self.aoi.bbox()),
            "crs": CRS.from_user_input(self.aoi.crs).to_epsg(), "gsd_m": self.gsd, "start": str(self.start),
            "end": str(self.end), "weekdays": s.weekdays, "local_hours": s.local_hours, "timezone": str(self.tz),
            "max_cloud_fraction": s.max_cloud_fraction, "min_coverage": s.min_coverage, "strategy": s.strategy,
            "max_items": s.max_items, "cloud": self.masks.cloud, "threshold": self.masks.s2cloudless_threshold,
            "evalscript": EVALSCRIPT_VERSION,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def scenes(self) -> list[Scene]:
        """The one scene this request selects: staged earlier for the same request, or fetched now."""
        key = self.request_key()
        staged = self._staged(key)
        if staged is not None:
            log.info("%s: reusing %s staged in %s (same request)", SOURCE, staged.scene_id, self.folder)
            return [staged]
        credentials = read_credentials(self.sh.profile)
        deadline = Deadline(self.policy.deadline_s, SOURCE)
        with translated_errors("authenticating", self.token_url, self.policy):
            conn = self._connect(credentials, deadline)
        with translated_errors("searching the catalog", self.base_url, self.policy):
            bands = self._reflectance_bands(conn)
            passes, notes = self._search(conn)
        with translated_errors("measuring cloud over the city", self.base_url, self.policy):
            chosen = self._choose(conn, passes, notes)
        with translated_errors("fetching the scene", self.base_url, self.policy):
            return [self._stage(conn, chosen, bands, key, notes)]

    def _staged(self, key: str) -> Scene | None:
        for sidecar in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                item = json.loads(sidecar.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(item, dict) and item.get("properties", {}).get("citybaseline:stage_key") == key:
                scene = find_staged(self.folder, str(item.get("id")), key)
                if scene is not None:
                    return scene
        return None

    def _connect(self, credentials: Credentials, deadline: Deadline) -> _Connection:
        """Authenticate (one token request) and set up the catalog and download client."""
        from sentinelhub import DataCollection, SentinelHubCatalog, SHConfig

        config = SHConfig(
            use_defaults=True, sh_client_id=credentials.client_id, sh_client_secret=credentials.client_secret,
            sh_base_url=self.base_url, sh_token_url=self.token_url, max_download_attempts=1,
            download_sleep_time=self.policy.backoff_s, download_timeout_seconds=self.policy.timeout_s,
            max_retries=1,
        )
        session_class, client_class = _client_classes()
        log.info("%s: authenticating at %s with credentials from the %s", SOURCE, public_url(self.token_url),
                 credentials.origin)
        session = session_class(config, policy=self.policy, deadline=deadline)
        client = client_class(policy=self.policy, deadline=deadline, session=session, config=config)
        catalog = SentinelHubCatalog(config=config)
        catalog.client = client
        tag = hashlib.sha256(f"{self.base_url} {self.sh.collection}".encode()).hexdigest()[:10]
        name = f"CITYBASELINE_{self.sh.collection.replace('-', '_').upper()}_{tag}"
        if self.kind.is_vhr:
            prefix, _, ident = self.sh.collection.partition("-")
            define = DataCollection.define_byoc if prefix == "byoc" else DataCollection.define_batch
            collection = define(ident, name=name, service_url=self.base_url)
        else:
            base = DataCollection.SENTINEL2_L2A if self.kind.sensor == SENSOR_S2 else DataCollection.LANDSAT_OT_L2
            collection = base.define_from(name, service_url=self.base_url)
        return _Connection(config, client, catalog, collection, deadline)

    def _reflectance_bands(self, conn: _Connection) -> tuple[tuple[str, str], ...]:
        if not self.kind.is_vhr:
            return self.kind.reflectance
        description = conn.catalog.get_collection(self.sh.collection)  # type: ignore[attr-defined]
        return vhr_bands(description, self.sh.collection)

    def _search(self, conn: _Connection) -> tuple[list[Overpass], dict]:
        """Overpasses in the date range, then those in the weekday and hour windows."""
        from sentinelhub import CRS as ShCRS
        from sentinelhub import BBox

        utc_start = datetime.combine(self.start, clock.min, self.tz).astimezone(UTC)
        utc_end = datetime.combine(self.end + timedelta(days=1), clock.min, self.tz).astimezone(UTC)
        west, south, east, north = self.aoi.bbox()
        boxes = [(west, south, 180.0, north), (-180.0, south, east, north)] if west > east else [
            (west, south, east, north)]
        features: dict[str, dict] = {}
        for box in boxes:
            search = conn.catalog.search(  # type: ignore[attr-defined]
                conn.collection, bbox=BBox(box, crs=ShCRS.WGS84), time=(utc_start, utc_end),
                limit=min(100, self.selection.max_items),
                fields={"include": ["id", "properties.datetime", "properties.eo:cloud_cover",
                                    "properties.view:sun_elevation", "properties.view:sun_azimuth",
                                    "properties.view:off_nadir"], "exclude": []},
            )
            for i, feature in enumerate(search):
                if i >= self.selection.max_items:
                    break
                features.setdefault(str(feature.get("id")), feature)
        passes = group_overpasses(list(features.values()))
        notes = {"features_found": len(features), "overpasses_found": len(passes), "outside_dates": 0,
                 "outside_weekdays": 0, "outside_hours": 0}
        kept = []
        for p in passes:
            local_day = p.when.astimezone(self.tz).date()
            day_ok, hour_ok = in_local_window(p.when, self.tz, self.selection.weekdays, self.selection.local_hours)
            if not (self.start <= local_day <= self.end):
                notes["outside_dates"] += 1
            elif not day_ok:
                notes["outside_weekdays"] += 1
            elif not hour_ok:
                notes["outside_hours"] += 1
            else:
                kept.append(p)
        log.info("%s: %d catalog features, %d overpasses, %d in the weekday/hour window", SOURCE, len(features),
                 len(passes), len(kept))
        return kept, notes

    def _choose(self, conn: _Connection, passes: list[Overpass], notes: dict) -> Overpass:
        """Measure cloud and coverage over the city for each overpass; keep those within limits; take the best."""
        passes = sorted(passes, key=lambda p: (p.tile_cloud is None, p.tile_cloud or 0.0))[:MAX_MEASURED]
        notes["measured"] = len(passes)
        if passes:
            self._measure(conn, passes)
        kept = [p for p in passes if (p.coverage or 0.0) >= self.selection.min_coverage
                and (p.cloud_fraction or 0.0) <= self.selection.max_cloud_fraction]
        notes["too_cloudy"] = sum(1 for p in passes if (p.cloud_fraction or 0.0) > self.selection.max_cloud_fraction)
        notes["too_little_coverage"] = sum(1 for p in passes if (p.coverage or 0.0) < self.selection.min_coverage)
        notes["kept"] = len(kept)
        if not kept:
            raise SourceError(
                f"{SOURCE}: no acquisition of {self.sh.collection} over the city between {self.start} and {self.end} "
                f"(local dates) passed the selection ({self._why(notes)})",
                hint="widen scene.selection (start/end, weekdays, local_hours) or relax max_cloud_fraction / "
                "min_coverage")
        best = min(kept, key=rank_key)
        log.info("%s: chose the overpass of %s (cloud over the city %.3f, coverage %.3f) from %d kept", SOURCE,
                 best.when.isoformat(), best.cloud_fraction or 0.0, best.coverage or 0.0, len(kept))
        return best

    @staticmethod
    def _why(notes: dict) -> str:
        parts = [f"{notes['overpasses_found']} overpass(es) found"]
        for key, label in (("outside_dates", "outside the dates"), ("outside_weekdays", "on other weekdays"),
                           ("outside_hours", "outside the local hours"), ("too_cloudy", "too cloudy over the city"),
                           ("too_little_coverage", "covering too little of the city")):
            if notes.get(key):
                parts.append(f"{notes[key]} {label}")
        return ", ".join(parts)

    def _measure_inputs(self) -> list[tuple[str, float]]:
        if self.kind.is_vhr or self.masks.cloud == "none":
            return []
        if self.masks.cloud == "s2cloudless":
            return [("CLP", 1.0)]
        return [(self.kind.class_band[1], 1.0)]  # type: ignore[index]

    def _measure(self, conn: _Connection, passes: list[Overpass]) -> None:
        """One coarse Process request per overpass: unusable and imaged fractions inside the city's box."""
        grid = coarse_grid(city_grid(self.aoi, self.gsd))
        inside = inside_aoi(self.aoi, grid)
        inputs = self._measure_inputs()
        script = evalscript(inputs)
        requests_ = [self._process_request(conn, script, grid, (0, grid.shape[0], 0, grid.shape[1]), p)
                     for p in passes]
        arrays = conn.client.download(requests_, max_threads=min(4, len(requests_)), decode_data=True)  # type: ignore[attr-defined]
        for p, array in zip(passes, arrays, strict=True):
            array = _bands_last(array, grid.shape, len(inputs) + 1)
            imaged = (array[..., -1] > 0) & inside
            p.coverage = float(imaged.sum() / max(1, inside.sum()))
            if not inputs:
                tile = p.tile_cloud
                p.cloud_fraction = 0.0 if self.masks.cloud == "none" or tile is None else tile
                p.cloud_basis = ("not measured (scene.masks.cloud: none)" if self.masks.cloud == "none" else
                                 "the catalog's eo:cloud_cover (the collection has no cloud class band)"
                                 if tile is not None else "unknown (no class band, no eo:cloud_cover)")
                continue
            cls = array[..., 0]
            if self.masks.cloud == "s2cloudless":
                unusable, basis = cls / 255.0 > self.masks.s2cloudless_threshold, "s2cloudless CLP over the city"
            else:
                unusable = class_band_unusable(self.kind.class_band[0], cls)  # type: ignore[index]
                basis = ("SCL cloud and shadow classes over the city" if self.kind.sensor == SENSOR_S2 else
                         "QA_PIXEL cloud and shadow bits over the city")
            p.cloud_fraction = float((unusable & imaged).sum() / imaged.sum()) if imaged.any() else 1.0
            p.cloud_basis = basis

    def _process_request(self, conn: _Connection, script: str, grid: CityGrid,
                         window: tuple[int, int, int, int], p: Overpass) -> object:
        """The download request of one Process API call for rows/cols ``window`` of ``grid`` during ``p``."""
        from sentinelhub import CRS as ShCRS
        from sentinelhub import BBox, MimeType, SentinelHubRequest

        r0, r1, c0, c1 = window
        request = SentinelHubRequest(
            evalscript=script,
            input_data=[SentinelHubRequest.input_data(
                conn.collection, time_interval=(p.start - PASS_MARGIN, p.end + PASS_MARGIN),
                mosaicking_order="mostRecent")],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=BBox(grid.window_bbox(r0, r1, c0, c1), crs=ShCRS(grid.epsg)),
            size=(c1 - c0, r1 - r0),
            config=conn.config,
        )
        return request.download_list[0]

    def _stage(self, conn: _Connection, p: Overpass, bands: tuple[tuple[str, str], ...], key: str,
               notes: dict) -> Scene:
        """Fetch the chosen overpass at full resolution, piece by piece, and stage it."""
        grid = city_grid(self.aoi, self.gsd)
        inputs = [(sh, self.kind.factor) for _, sh in bands]
        names = [common for common, _ in bands]
        if self.kind.class_band is not None:
            inputs.append((self.kind.class_band[1], 1.0))
            names.append(self.kind.class_band[0])
        script = evalscript(inputs)
        n_refl = len(bands)
        pieces = {"count": 0}

        def read_rows(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
            try:
                return self._read_rows(conn, script, grid, p, (r0, r1), len(inputs) + 1, n_refl, pieces)
            except BaseException as exc:
                raise _StripFailed(exc) from exc

        meta = self._metadata(p, names, key, grid, notes)
        log.info("%s: fetching %d x %d px at %g m of %s", SOURCE, grid.shape[1], grid.shape[0], self.gsd,
                 p.when.isoformat())
        try:
            scene = stage_scene(self.folder, meta, read_rows, crs=grid.crs, transform=grid.transform,
                                shape=grid.shape)
        except _StripFailed as failed:
            raise failed.error from None
        log.info("%s: staged %s from %d Process API pieces", SOURCE, scene.scene_id, pieces["count"])
        return scene

    def _read_rows(self, conn: _Connection, script: str, grid: CityGrid, p: Overpass, rows: tuple[int, int],
                   n_out: int, n_refl: int, pieces: dict) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``r0:r1`` of the grid, in pieces of at most :data:`MAX_PIECE_PX` a side, as staged counts."""
        r0, r1 = rows
        windows = [(a, min(r1, a + MAX_PIECE_PX), c, min(grid.shape[1], c + MAX_PIECE_PX))
                   for a in range(r0, r1, MAX_PIECE_PX) for c in range(0, grid.shape[1], MAX_PIECE_PX)]
        requests_ = [self._process_request(conn, script, grid, w, p) for w in windows]
        arrays = conn.client.download(requests_, max_threads=min(4, len(requests_)), decode_data=True,  # type: ignore[attr-defined]
                                      show_progress=self.show_progress and len(requests_) >= 4)
        pieces["count"] += len(windows)
        out = np.zeros((n_out, r1 - r0, grid.shape[1]), dtype=np.uint16)
        for (a, b, c, d), array in zip(windows, arrays, strict=True):
            out[:, a - r0 : b - r0, c:d] = np.moveaxis(_bands_last(array, (b - a, d - c), n_out), -1, 0)
        valid = out[-1] > 0
        data = out[:-1]
        data[:n_refl] = np.where(valid, np.maximum(data[:n_refl], 1), 0)  # 0 means no data in staged counts
        data[n_refl:] = np.where(valid, data[n_refl:], 0)
        return data, valid

    def _metadata(self, p: Overpass, names: list[str], key: str, grid: CityGrid, notes: dict) -> StagedMetadata:
        """The staged scene's metadata: sun, time, and provenance without any credential."""
        from baseline.synth.solar import solar_position

        when = p.when.astimezone(UTC)
        lon, lat = self.aoi.centre
        elevation, azimuth = p.mean_property("view:sun_elevation"), p.mean_property("view:sun_azimuth")
        sun_basis = "catalog"
        if elevation is None or azimuth is None:
            sun = solar_position(when, lon, lat)
            elevation, azimuth, sun_basis = sun.elevation_deg, sun.azimuth_deg, "computed from time and place"
        local = when.astimezone(self.tz)
        slug = self.sh.collection
        provenance = {
            "source": "sentinelhub",
            "deployment": public_url(self.base_url),
            "collection": self.sh.collection,
            "catalog_ids": p.ids,
            "acquired_at_utc": when.isoformat().replace("+00:00", "Z"),
            "acquired_at_local": local.isoformat(),
            "local_weekday": local.strftime("%a").lower(),
            "timezone": str(self.tz),
            "cloud_fraction_city": None if p.cloud_fraction is None else round(p.cloud_fraction, 4),
            "cloud_basis": p.cloud_basis,
            "coverage_city": None if p.coverage is None else round(p.coverage, 4),
            "tile_cloud_cover": p.tile_cloud,
            "selection": "least cloudy over the city, then most complete, then most recent",
            "date_range_local": [str(self.start), str(self.end)],
            "weekdays": self.selection.weekdays,
            "local_hours": list(self.selection.local_hours) if self.selection.local_hours else None,
            "candidates": notes,
            "sun_angles": sun_basis,
            "gsd_m": self.gsd,
            "grid_epsg": grid.epsg,
            "evalscript": EVALSCRIPT_VERSION,
            "max_piece_px": MAX_PIECE_PX,
        }
        return StagedMetadata(
            scene_id=f"sentinelhub-{slug}-{when:%Y%m%dT%H%M%SZ}-{key[:8]}",
            sensor=self.kind.sensor,
            bands=tuple(names),
            acquired_at=when,
            sun_elevation_deg=float(elevation),
            sun_azimuth_deg=float(azimuth),
            stage_key=key,
            off_nadir_deg=float(p.mean_property("view:off_nadir") or 0.0),
            provenance=provenance,
        )


def _bands_last(array: np.ndarray, shape: tuple[int, int], bands: int) -> np.ndarray:
    """A decoded answer as (rows, cols, bands), checked against what was asked."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape != (*shape, bands):
        raise SourceError(f"{SOURCE}: the Process API answered an image of shape {array.shape}, "
                          f"not {(*shape, bands)}", hint="retry later; report it if it persists")
    return array


__all__ = ["SentinelHubSource", "collection_kind", "evalscript", "read_credentials"]

