"""The two sensors the renderer imitates: band names, band timing, blur and noise.

Band timing follows the data contract: every band is sensed at
``datetime + offset``, red is the reference (0 s), and a vehicle moving at
``v`` appears in band ``b`` displaced by ``v * offset[b]``.

- VHR (WorldView-like pushbroom): blue -0.10 s, green -0.05 s, red 0, NIR +0.10 s.
- Sentinel-2 MSI: the detector lines see B02 first, then B08 (+0.263 s),
  B03 (+0.527 s), B04 (+1.005 s); shifted so B04 is 0 that is
  B02 -1.005 s, B03 -0.478 s, B08 -0.742 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from baseline.core.scene import SENSOR_S2, SENSOR_VHR


@dataclass(frozen=True)
class SensorSpec:
    """What a sensor records and how.

    Attributes:
        name: ``vhr`` or ``sentinel-2-l2a`` (the Scene sensor names).
        bands: band names in file order (reflectance bands).
        common_names: STAC ``eo`` common names in the same order.
        time_offsets_s: seconds after ``datetime`` each band is sensed.
        psf_sigma_px: Gaussian blur of the optics and detector, pixels.
        noise_floor, noise_gain: noise sd = sqrt(floor^2 + gain * reflectance).
    """

    name: str
    bands: tuple[str, ...]
    common_names: tuple[str, ...]
    time_offsets_s: dict[str, float]
    psf_sigma_px: float
    noise_floor: float
    noise_gain: float

    def offset(self, index: int) -> float:
        """Time offset of band ``index``."""
        return self.time_offsets_s[self.bands[index]]


VHR = SensorSpec(
    name=SENSOR_VHR,
    bands=("blue", "green", "red", "nir"),
    common_names=("blue", "green", "red", "nir"),
    time_offsets_s={"blue": -0.10, "green": -0.05, "red": 0.0, "nir": 0.10},
    psf_sigma_px=0.45,
    noise_floor=0.0015,
    noise_gain=0.00004,
)

SENTINEL2 = SensorSpec(
    name=SENSOR_S2,
    bands=("B02", "B03", "B04", "B08"),
    common_names=("blue", "green", "red", "nir"),
    time_offsets_s={"B02": -1.005, "B03": -0.478, "B04": 0.0, "B08": -0.742},
    psf_sigma_px=0.4,
    noise_floor=0.002,
    noise_gain=0.00002,
)

SCL_BAND = "SCL"
SCL_NODATA, SCL_CLOUD_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH = 8, 9
