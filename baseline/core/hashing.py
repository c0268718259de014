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
