"""The one interface every imagery source implements."""

from __future__ import annotations

from typing import Protocol

from baseline.core.scene import Scene


class ImagerySource(Protocol):
    """Yields the scenes a run uses. STAC APIs, Sentinel Hub and local archives plug in here."""

    name: str

    def scenes(self) -> list[Scene]:
        """Every scene this source offers for the run, pixels still lazy."""
        ...
