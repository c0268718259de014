"""The project's typed errors.

Every error a user can cause or meet derives from :class:`BaselineError`. Messages
say what was wrong, where (file, field or value) and what to do next. The CLI
prints ``error: <message>`` and exits with :attr:`BaselineError.exit_code`,
without a traceback. Like rasterio, the specific errors also inherit the matching
built-in (``ValueError``, ``FileNotFoundError``, ``OSError``) so callers can catch
either.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class BaselineError(Exception):
    """Base of every error citybaseline raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")

    def __reduce__(self) -> tuple:
        # errors raised on a Dask worker cross a process boundary: keep their type and message intact
        return (_rebuild_error, (type(self), str(self), dict(self.__dict__)))


def _rebuild_error(cls: type[BaselineError], message: str, state: dict) -> BaselineError:
    """Unpickle a :class:`BaselineError` of any subclass without calling its own ``__init__``."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigError(BaselineError, ValueError):
    """A run config, CLI option or catalog entry is invalid."""

    exit_code = 2


class UnknownCityError(ConfigError):
    """A city name that the data catalog does not know."""

    def __init__(self, city: str, known: Iterable[str]) -> None:
        known_list = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown city {city!r}",
            hint=f"known cities: {known_list}; add one under data_catalog/cities/",
        )


class InvalidValueError(ConfigError):
    """A numeric or enumerated value outside what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"{name} = {value!r} is not allowed", hint=f"expected {allowed}")


class InputFileError(BaselineError, OSError):
    """An input file is missing, unreadable or not of the expected form."""

    exit_code = 3

    def __init__(self, path: str | Path, problem: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {problem}", hint=hint)


class MissingColumnError(InputFileError):
    """A vector file lacks a column the operation needs."""

    def __init__(self, path: str | Path, column: str, available: Iterable[str]) -> None:
        super().__init__(
            path,
            f"no column {column!r}",
            hint=f"columns present: {', '.join(map(str, available)) or '(none)'}",
        )


class CRSMismatchError(BaselineError, ValueError):
    """Two objects that must share a CRS do not; the message names both."""

    def __init__(self, what: str, left: object, right: object) -> None:
        super().__init__(
            f"{what}: CRS {left} does not match {right}",
            hint="reproject one of them first",
        )


class SceneError(BaselineError, ValueError):
    """A scene's metadata (STAC Item, tags) is missing or inconsistent."""

    exit_code = 3


class SourceError(BaselineError, OSError):
    """An imagery source failed (unreachable, bad credentials, missing asset)."""

    exit_code = 4


class ModelError(BaselineError, OSError):
    """A model is missing, not safetensors, or does not match its card."""

    exit_code = 5


class OutputError(BaselineError, OSError):
    """An output could not be written; nothing partial was left behind."""

    exit_code = 6


class RenderError(BaselineError, ValueError):
    """The scene renderer was asked for something it cannot draw."""

    exit_code = 2


class TileFailuresError(BaselineError, RuntimeError):
    """Tiles kept failing after their retries; the others are finished and kept for a rerun."""

    exit_code = 7


PARTIAL_EXIT_CODE = 8
"""``baseline run`` published, but some tiles failed and count as no coverage (see failed_tiles.json)."""
