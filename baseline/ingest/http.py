"""HTTP for remote sources: bounded waits, capped jittered retries, typed failures.

Remote sources misbehave: they rate-limit (429 with ``Retry-After``), fail
for a moment (5xx), hang, or go away. Every request a source makes goes
through a :class:`requests.Session` from :func:`http_session`, which retries
429 and 5xx answers and dropped connections with exponential backoff plus
jitter, honours ``Retry-After`` up to ``backoff_max_s`` (a server asking for
longer is treated as a failure now rather than a hang), and times out every
request. Pixel reads go through GDAL, configured alike by :func:`gdal_env`.
A :class:`Deadline` bounds the whole conversation with a source.

Failures become :class:`baseline.errors.SourceError` naming the source, the
URL (without its query string, which may hold a signature) and what to do.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from baseline.errors import SourceError

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retries for one source (the config's ``scene.http``)."""

    timeout_s: float = 20.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 20.0
    deadline_s: float = 300.0

    @classmethod
    def from_spec(cls, spec: object) -> HttpPolicy:
        """From a :class:`baseline.config.schema.HttpSpec` (or anything with the same fields)."""
        return cls(**{f: getattr(spec, f) for f in cls.__dataclass_fields__})


class CappedRetry(Retry):
    """urllib3 ``Retry`` whose waits, ``Retry-After`` included, never exceed ``backoff_max``.

    A server that asks for a longer wait than the cap gets no retry: the
    request fails now, with the status, instead of sleeping for an hour.
    """

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = super().parse_retry_after(retry_after)
        if seconds > self.backoff_max:
            raise RetryAfterTooLong(seconds)
        return seconds


class RetryAfterTooLong(Exception):
    """The server asked to wait longer than the policy allows."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the server asked to wait {seconds:.0f} s before retrying")
        self.seconds = seconds


def retry_policy(policy: HttpPolicy) -> Retry:
    """The urllib3 retry rule for ``policy``: 429/5xx and connection errors, every method."""
    return CappedRetry(
        total=policy.max_retries,
        connect=policy.max_retries,
        read=policy.max_retries,
        status=policy.max_retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # STAC search and Sentinel Hub process are POSTs, and are safe to repeat
        backoff_factor=policy.backoff_s,
        backoff_max=policy.backoff_max_s,
        backoff_jitter=policy.backoff_s,
        respect_retry_after_header=True,
        raise_on_status=False,  # the caller turns the final status into a typed error
    )


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies the policy's timeout to requests that set none."""

    def __init__(self, policy: HttpPolicy) -> None:
        super().__init__(max_retries=retry_policy(policy))
        self._timeout = policy.timeout_s

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201 - the HTTPAdapter signature
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def http_session(policy: HttpPolicy, *, user_agent: str | None = None) -> requests.Session:
    """A session that retries, backs off and times out as ``policy`` says."""
    from baseline import __version__

    session = requests.Session()
    adapter = _TimeoutAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent or f"citybaseline/{__version__}"
    session.timeout_s = policy.timeout_s  # type: ignore[attr-defined] - read by request()
    return session


def gdal_env(policy: HttpPolicy) -> dict[str, str]:
    """GDAL configuration for reading COGs over HTTP with ``policy``'s timeouts and retries.

    GDAL retries the listed statuses itself, twice at most, doubling its
    delay with jitter; directory listings are never requested (a COG needs
    only its own ranges).
    """
    return {
        "GDAL_HTTP_TIMEOUT": str(max(1, round(policy.timeout_s))),
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, round(policy.timeout_s))),
        # GDAL's own retries cover blips; it neither reads Retry-After nor caps its doubling waits,
        # so longer trouble goes back to the source, which does (see StacSource._wait_for_storage)
        "GDAL_HTTP_MAX_RETRY": str(min(2, policy.max_retries)),
        "GDAL_HTTP_RETRY_DELAY": str(max(policy.backoff_s, 0.1)),
        "GDAL_HTTP_RETRY_CODES": ",".join(str(s) for s in RETRY_STATUSES),
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "VSI_CACHE": "TRUE",
    }


def public_url(url: str) -> str:
    """``url`` without query string or credentials: safe to show in messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Deadline:
    """A wall-clock budget for one source; :meth:`check` raises once it is spent."""

    def __init__(self, seconds: float, source: str) -> None:
        self.seconds = seconds
        self.source = source
        self._end = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def check(self, doing: str) -> None:
        """Raise :class:`SourceError` when the budget is spent (``doing`` says what was under way)."""
        if self.remaining <= 0:
            raise SourceError(
                f"{self.source}: gave up after {self.seconds:g} s while {doing}",
                hint="the source is slow or unreachable; retry later or raise scene.http.deadline_s",
            )


def backoff_delays(policy: HttpPolicy, rng: random.Random | None = None) -> list[float]:
    """The waits before each retry that :func:`retry_policy` uses, for loops that retry by hand."""
    rng = rng or random.Random()
    return [
        min(policy.backoff_max_s, policy.backoff_s * 2**i + rng.uniform(0, policy.backoff_s))
        for i in range(policy.max_retries)
    ]


def raise_for_status(response: requests.Response, source: str, doing: str) -> None:
    """Turn a final non-2xx answer into a :class:`SourceError` that says what to do."""
    status = response.status_code
    if status < 400:
        return
    url = public_url(response.url)
    if status in (401, 403):
        hint = "check the credentials (or the URL signing) for this source"
    elif status == 404:
        hint = "check the endpoint URL and the collection or item names"
    elif status == 429:
        hint = "the source is rate-limiting: wait, lower the request rate, or raise scene.http.max_retries"
    elif status >= 500:
        hint = "the source is failing on its side: retry later"
    else:
        hint = "check the request settings in the config's scene section"
    raise SourceError(f"{source}: HTTP {status} from {url} while {doing}", hint=hint)


def request(
    session: requests.Session, method: str, url: str, *, source: str, doing: str, deadline: Deadline | None = None,
    **kwargs: object,
) -> requests.Response:
    """``session.request`` with every failure made a :class:`SourceError` naming ``source`` and ``url``."""
    if deadline is not None:
        deadline.check(doing)
        kwargs.setdefault("timeout", max(0.5, min(deadline.remaining, getattr(session, "timeout_s", 20.0))))
    try:
        response = session.request(method, url, **kwargs)
    except RetryAfterTooLong as exc:
        raise SourceError(f"{source}: {public_url(url)}: {exc} while {doing}",
                          hint="the source is rate-limiting: try again later, or raise scene.http.backoff_max_s") from None
    except requests.exceptions.RetryError as exc:
        raise SourceError(f"{source}: {public_url(url)} kept failing while {doing} ({_reason(exc)})",
                          hint="the source is failing or rate-limiting: retry later") from None
    except requests.exceptions.Timeout:
        raise SourceError(f"{source}: no answer from {public_url(url)} while {doing}",
                          hint="the endpoint is slow or unreachable; check the URL and your network") from None
    except requests.exceptions.ConnectionError as exc:
        raise SourceError(f"{source}: cannot reach {public_url(url)} while {doing} ({_reason(exc)})",
                          hint="check the endpoint URL and your network connection") from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(f"{source}: request to {public_url(url)} failed while {doing} ({_reason(exc)})") from None
    raise_for_status(response, source, doing)
    return response


def _root(exc: BaseException) -> BaseException:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return exc


def _reason(exc: BaseException) -> str:
    """A short cause without URLs that could carry signatures."""
    return type(_root(exc)).__name__
