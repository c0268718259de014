"""Independent, named random streams derived from the scene seed.

Each part of the renderer draws from its own stream, so switching one part off
(vehicles, say) or rendering a crop never changes what the other parts draw:
the same seed gives the same buildings, trees and traffic whatever else is asked.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for part ``name`` of the scene with ``seed``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
