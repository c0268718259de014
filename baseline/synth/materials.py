"""Surface reflectances (blue, green, red, NIR; 0 to 1) of everything the renderer draws.

Values are typical of spectral libraries (ECOSTRESS/ASTER, USGS splib07) and of
urban VHR imagery: asphalt dark and flat, concrete brighter, vegetation dark in
the visible with a strong NIR plateau, water dark and darker still in the NIR,
red tile bright in red and NIR, oxidised copper green. Shadows keep only the
diffuse skylight, which is bluer than direct sun, so blue keeps the most.
"""

from __future__ import annotations

import numpy as np

BANDS = ("blue", "green", "red", "nir")

# ground materials: the index is the value in the ground class raster
GROUND = {
    "paved": (0.100, 0.108, 0.116, 0.150),      # courtyards, squares: mixed paving
    "grass": (0.035, 0.085, 0.045, 0.42),
    "water": (0.045, 0.055, 0.035, 0.012),
    "ballast": (0.110, 0.112, 0.118, 0.150),    # railway track bed: grey-brown crushed stone
    "rail": (0.055, 0.055, 0.058, 0.065),       # rails and sleepers seen from above
    "sidewalk": (0.17, 0.185, 0.20, 0.235),      # concrete slabs
    "road": (0.065, 0.072, 0.078, 0.095),        # asphalt
    "kerb": (0.075, 0.082, 0.088, 0.105),        # parking lane asphalt, a little worn
    "car_park": (0.085, 0.092, 0.10, 0.12),
}
GROUND_INDEX = {name: i for i, name in enumerate(GROUND)}
GROUND_TABLE = np.array(list(GROUND.values()), dtype=np.float32)

PAINT = np.array((0.50, 0.52, 0.53, 0.55), dtype=np.float32)  # road markings
TRAM_RAIL = np.array((0.045, 0.047, 0.050, 0.060), dtype=np.float32)
TREE = np.array((0.028, 0.065, 0.035, 0.36), dtype=np.float32)

ROOFS = {
    "dark_bitumen": (0.050, 0.055, 0.060, 0.080),
    "grey_concrete": (0.150, 0.160, 0.170, 0.200),
    "red_tile": (0.060, 0.075, 0.190, 0.290),
    "copper_green": (0.105, 0.175, 0.125, 0.230),
    "light_membrane": (0.300, 0.315, 0.325, 0.350),
}
ROOF_NAMES = tuple(ROOFS)
ROOF_TABLE = np.array(list(ROOFS.values()), dtype=np.float32)
ROOF_WEIGHTS = np.array((0.38, 0.26, 0.16, 0.06, 0.14))
PITCHED_ROOFS = frozenset({"red_tile", "copper_green"})
FIXTURE = np.array((0.23, 0.24, 0.25, 0.27), dtype=np.float32)  # vents, AC units: galvanised steel

VEHICLE_COLOURS = {
    "white": (0.55, 0.57, 0.58, 0.60),
    "black": (0.030, 0.032, 0.035, 0.050),
    "grey": (0.110, 0.115, 0.120, 0.150),
    "silver": (0.300, 0.310, 0.320, 0.350),
    "blue": (0.100, 0.075, 0.045, 0.120),
    "red": (0.050, 0.050, 0.300, 0.320),
}
VEHICLE_COLOUR_TABLE = np.array(list(VEHICLE_COLOURS.values()), dtype=np.float32)
VEHICLE_COLOUR_WEIGHTS = np.array((0.26, 0.20, 0.19, 0.18, 0.09, 0.08))
GLASS = np.array((0.030, 0.034, 0.038, 0.045), dtype=np.float32)

CLOUD = np.array((0.62, 0.63, 0.64, 0.66), dtype=np.float32)
SHADOW_RATIO = np.array((0.42, 0.34, 0.30, 0.24), dtype=np.float32)
"""Fraction of reflected light left in full shadow, per band (diffuse skylight only)."""

VEHICLE_HEIGHT_M = {"car": 1.5, "large": 3.2}


def stands_out_from_asphalt(colour: np.ndarray, contrast: float = 0.1) -> np.ndarray:
    """True where a vehicle's paint (colour index) differs from asphalt by at least ``contrast`` in a visible band.

    White, silver and red vehicles do; black, grey and dark blue ones differ by
    0.02-0.04, which a 10 m Sentinel-2 pixel that a truck covers a quarter of
    cannot tell from asphalt. The Sentinel-2 truck detector is trained and
    scored with this split (dark trucks get no target, and recall is also
    reported over the trucks that stand out).
    """
    paint = 0.8 * VEHICLE_COLOUR_TABLE[np.asarray(colour, dtype=int)] + 0.2 * GLASS
    return np.abs(paint[:, :3] - np.asarray(GROUND["road"][:3])).max(axis=1) >= contrast
