"""Ingest: imagery sources that yield :class:`baseline.core.scene.Scene` objects."""

from baseline.ingest.archive import ArchiveSource
from baseline.ingest.base import ImagerySource
from baseline.ingest.local import LocalFilesSource, open_scene

__all__ = ["ArchiveSource", "ImagerySource", "LocalFilesSource", "open_scene"]
