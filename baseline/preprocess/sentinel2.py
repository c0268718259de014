"""A whole Sentinel-2 scene as reflectance and a valid mask, for the 10 m stages (trucks, area estimates).

The very-high-resolution path reads tiles (:mod:`baseline.preprocess.tiles`);
the Sentinel-2 stages read the scene whole, on its own grid. Unusable pixels
follow the same class-band rule as every tile (:func:`class_band_unusable`:
SCL cloud, cloud shadow and no data; a ``cloud_mask`` band where the scene
carries one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from baseline.preprocess.masks import CLASS_BANDS, class_band_unusable

if TYPE_CHECKING:
    from baseline.core.scene import Scene

REFLECTANCE_BANDS = ("blue", "green", "red", "nir")
"""Band order of the reflectance the Sentinel-2 networks read (B02, B03, B04, B08)."""


def scene_reflectance(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """``(4, y, x)`` float32 reflectance (blue, green, red, nir; 0-1) and the ``(y, x)`` valid mask."""
    data = scene.data
    idx = [scene.band_index(b) for b in REFLECTANCE_BANDS]
    refl = np.asarray(data[idx].values, dtype=np.float32) * np.float32(scene.scale)
    valid = np.asarray(scene.valid.values, dtype=bool) & np.isfinite(refl).all(axis=0)
    for band in CLASS_BANDS:
        if band in scene.bands:
            valid &= ~class_band_unusable(band, np.asarray(data[scene.band_index(band)].values))
    return refl, valid
