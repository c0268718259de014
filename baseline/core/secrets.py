"""Secrets that must never reach a log, an error message or an output file.

A source that holds a credential (a Sentinel Hub client secret, an access
token) registers it here before it makes any request. :func:`redact` then
replaces every registered value in a text with ``***``, together with the
forms the value takes on the wire (URL-encoded in a form body, as a JSON
string) and with bearer tokens and ``access_token``/``client_secret`` fields
in general, which libraries such as requests-oauthlib write into their debug
logs before a caller could register the token they just received.

:class:`RedactingFilter` applies :func:`redact` to every log record a
handler emits; the CLI installs it on the root logger's handlers, and redacts
the one-line error it prints.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# credentials by shape, whoever logged them: "Bearer <token>", access_token=..., "client_secret": "..."
_SHAPES = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:access|refresh|id)_token['\"]?\s*[:=]\s*['\"]?)[^'\"&,\s}]+"),
    re.compile(r"(?i)(client_secret['\"]?\s*[:=]\s*['\"]?)[^'\"&,\s}]+"),
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it; values under 6 characters are ignored.

    Short values are not secrets worth the name, and redacting them would
    mangle ordinary words and numbers in every log line.
    """
    global _pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote_plus(value), quote(value, safe=""), json.dumps(value)[1:-1]}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET_LENGTH)
        # longest first, so a secret that contains another is hidden whole
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def forget_secrets() -> None:
    """Drop every registered secret (tests use it to start clean)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def redact(text: str) -> str:
    """``text`` with every registered secret, bearer token and credential field replaced by ``***``."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape in _SHAPES:
        text = shape.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record's message, arguments and traceback before it is written.

    The message is merged with its arguments first (as the formatter would),
    so a secret passed as an argument is hidden too. The record always passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logger's problem, not a reason to leak
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction() -> None:
    """Put a :class:`RedactingFilter` on every handler of the root logger and of loggers that have their own.

    Handler filters see records that propagate from child loggers, which
    logger filters do not. Installing twice adds nothing.
    """
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
