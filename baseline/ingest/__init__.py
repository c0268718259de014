"""Ingest: imagery sources that yield :class:`baseline.core.scene.Scene` objects."""

from baseline.ingest.base import ImagerySource
from baseline.ingest.local import LocalFilesSource, open_scene

__all__ = ["ImagerySource", "LocalFilesSource", "open_scene"]
