"""The run manifest: what was run, on what, with which code and models, and what came out.

``manifest.json`` is the provenance of a run folder: the validated config and its
hash, the code and model versions, each input scene with its checksum, stage
timings and the checksum of every output. It is written atomically, and secrets
never reach it: values under keys that look like credentials are masked, and so
are passwords and signature-like query parameters inside URLs.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from baseline.core.atomic import write_text_atomic
from baseline.errors import InputFileError, OutputError

MANIFEST_VERSION = "1.0"
MASK = "***"

# keys whose values are credentials: anything with secret/token/password, or ending in "key"
SECRET_KEY = re.compile(r"secret|token|passw(or)?d|key$", re.IGNORECASE)
# URL query parameters that carry credentials (signed URLs, SAS tokens, API keys)
SECRET_QUERY = re.compile(r"secret|token|passw(or)?d|key$|signature|^sig$|credential", re.IGNORECASE)

# libraries whose versions change numbers; read from metadata, never imported here
LIBRARIES = (
    "numpy", "scipy", "torch", "geopandas", "shapely", "pyproj", "rasterio", "pyarrow",
    "xarray", "dask", "h3", "pyrosm",
)


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` with credentials masked as ``"***"``.

    Dict values under keys matching :data:`SECRET_KEY` are masked (whole subtree);
    strings that are URLs lose their password and credential-like query values.
    Lists, tuples and nested dicts are walked.
    """
    if isinstance(value, Mapping):
        return {
            str(k): (MASK if SECRET_KEY.search(str(k)) and v is not None else redact_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_secrets(v) for v in value]
    if isinstance(value, str):
        return _redact_url(value)
    return value


def _redact_url(text: str) -> str:
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_QUERY.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def write_manifest(
    out_dir: str | Path,
    *,
    config: dict[str, Any],
    config_hash: str,
    code_version: str,
    models: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    stage_timings_s: dict[str, float],
    outputs: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/manifest.json`` atomically and return its path.

    Args:
        config: the run config as plain data (secrets are masked here).
        config_hash: hash of the config that identifies the run.
        code_version: package version (and git commit when known).
        models: one dict per model used (``name``, ``version``, ``sha256``, ...).
        inputs: one dict per input scene: ``scene_id``, ``href``, ``sha256``.
        stage_timings_s: stage name -> wall seconds.
        outputs: output file name -> SHA-256 (see :func:`sha256_file`).
        extra: anything else worth keeping (secrets masked as well).

    Raises:
        OutputError: an input lacks ``scene_id``/``href``/``sha256``, a value is not
            JSON-serialisable, or the file cannot be written.
    """
    for index, item in enumerate(inputs):
        missing = [k for k in ("scene_id", "href", "sha256") if k not in item]
        if missing:
            raise OutputError(f"manifest input #{index} lacks {', '.join(missing)}")
    document = {
        "manifest_version": MANIFEST_VERSION,
        "created_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": config_hash,
        "code_version": code_version,
        "config": redact_secrets(config),
        "models": redact_secrets(models),
        "inputs": redact_secrets(inputs),
        "stage_timings_s": {str(k): round(float(v), 3) for k, v in stage_timings_s.items()},
        "outputs": dict(sorted(outputs.items())),
        "environment": _environment(),
        "extra": redact_secrets(extra or {}),
    }
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise OutputError(f"manifest: a value cannot be written as JSON ({exc})") from exc
    path = Path(out_dir) / "manifest.json"
    write_text_atomic(path, text + "\n")
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read a ``manifest.json`` (a run folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputFileError(path, "file not found") from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from exc


def _json_default(value: Any) -> Any:
    """JSON for the few non-JSON types a config holds: paths, datetimes, sets, numpy scalars."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _environment() -> dict[str, Any]:
    libraries: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(), "libraries": libraries}
