"""Checksums for provenance: inputs, model weights and outputs are named by their sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from baseline.errors import InputFileError


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks (files may be large)."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise InputFileError(path, "file not found") from exc
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from exc
    return digest.hexdigest()


def code_digest(package_dir: str | Path | None = None) -> str:
    """Hex SHA-256 over the package's Python sources (relative path and bytes of each).

    Part of a run's digest, so a run folder made by other code is recomputed
    rather than reported up to date (the version number alone does not change
    with every fix).
    """
    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
