"""Signing asset URLs for Microsoft Planetary Computer (SAS tokens), re-signed before expiry.

Planetary Computer serves its blobs only with a shared-access token appended
to the URL. A token is asked per collection from the token service
(``GET <sas_endpoint>/<collection>`` answering ``{"token": ..., "msft:expiry": ...}``),
kept until ``margin_s`` before it expires, then asked again, so a long
staging never reads with a stale signature. :meth:`refresh` drops a token
early (storage answered 403). A token that lives less than twice the margin
is renewed half-way through its life. Tokens are registered as secrets: they never
reach a log, a message or an output.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from baseline.core.secrets import register_secret
from baseline.errors import SourceError
from baseline.ingest.http import Deadline, HttpPolicy, http_session, public_url, request

log = logging.getLogger(__name__)


class PlanetaryComputerSigner:
    """Appends a valid SAS token to asset URLs; thread-safe (odc-stac signs from reading threads)."""

    def __init__(self, sas_endpoint: str, policy: HttpPolicy, deadline: Deadline, *, margin_s: float = 300.0) -> None:
        self.sas_endpoint = sas_endpoint.rstrip("/")
        self.deadline = deadline
        self.margin_s = margin_s
        self.session = http_session(policy)
        self._tokens: dict[str, tuple[str, float]] = {}  # collection -> (token, when to re-sign)
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def sign(self, href: str, collection: str) -> str:
        """``href`` with a token for ``collection`` that is valid for at least ``margin_s`` more."""
        if not href.startswith(("http://", "https://")) or "sig=" in (urlsplit(href).query or ""):
            return href
        token = self._token(collection)
        return f"{href}{'&' if urlsplit(href).query else '?'}{token}"

    def refresh(self, collection: str) -> None:
        """Forget the token of ``collection``; the next :meth:`sign` asks for a new one."""
        with self._lock:
            self._tokens.pop(collection, None)

    def _token(self, collection: str) -> str:
        with self._lock:
            cached = self._tokens.get(collection)
            if cached is not None and time.time() < cached[1]:
                return cached[0]
            token, expiry = self._fetch(collection)
            # re-sign margin_s before expiry, or half-way through a token that lives less than twice that
            lifetime = expiry - time.time()
            self._tokens[collection] = (token, expiry - min(self.margin_s, lifetime / 2))
            return token

    def _fetch(self, collection: str) -> tuple[str, float]:
        url = f"{self.sas_endpoint}/{collection}"
        response = request(self.session, "GET", url, source=f"URL signing service {public_url(url)}",
                           doing=f"asking for a token for {collection}", deadline=self.deadline)
        try:
            body = response.json()
            token = str(body["token"]).lstrip("?")
            expiry = datetime.fromisoformat(str(body["msft:expiry"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"URL signing service {public_url(url)}: answer has no token and msft:expiry",
                              hint="check scene.stac.sas_endpoint") from None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        register_secret(token)
        self.tokens_fetched += 1
        log.info("signed %s for %.0f s", collection, expiry.timestamp() - time.time())
        return token, expiry.timestamp()
