"""Privacy: zones with few vehicles publish no vehicle figures, and no total gives them away.

*Primary suppression*: a zone (H3 cell or district) with fewer detected
vehicles than ``min_vehicles`` publishes no vehicle figures. A city with fewer
than ``min_vehicles`` publishes none either.

*Complementary suppression*: a published total (the city, or a district) minus
the published zones inside it equals the sum of the withheld zones inside it.
If exactly one withheld zone with vehicles contributes to that total, the
subtraction would reveal its count. So, for every published total, the
withheld zones with vehicles that contribute to it must be none or at least
two: when exactly one small zone (fewer than ``min_vehicles``) is alone, the
published zone with the *smallest* positive count that contributes to the
same total is withheld too (ties: the first zone in table order), and the
check runs again until nothing changes. When no such zone exists, the total
itself is withheld. A zone "contributes" to a total when at least one of the
vehicles counted in the total lies in it; zones with no vehicles reveal nothing
about anyone and are not used as complements. Suppression only ever grows, so
the loop ends. Zones withheld for another reason (too little valid imagery)
also hide their counts and so count as withheld here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the rule in plain words, for the report
METHOD: str = (__doc__ or "").replace("``", "").replace("*", "").strip()


def primary(counts: np.ndarray, min_vehicles: int) -> np.ndarray:
    """True where a zone has fewer vehicles than ``min_vehicles``."""
    return np.asarray(counts) < min_vehicles


def complementary(
    counts: np.ndarray,
    withheld: np.ndarray,
    contributes: Sequence[np.ndarray],
    published: np.ndarray,
    min_vehicles: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Grow ``withheld`` (zones) and shrink ``published`` (totals) until no total reveals a zone.

    Args:
        counts: vehicles per zone.
        withheld: True where a zone's vehicle figures are already withheld.
        contributes: per total, a boolean mask over zones that contribute to it.
        published: per total, whether it is published.
        min_vehicles: the primary threshold (a zone below it is sensitive).

    Returns:
        The new ``withheld`` and ``published`` arrays (copies).
    """
    counts = np.asarray(counts)
    withheld = np.array(withheld, dtype=bool)
    published = np.array(published, dtype=bool)
    changed = True
    while changed:
        changed = False
        for t, members in enumerate(contributes):
            if not published[t]:
                continue
            hidden = np.flatnonzero(members & withheld & (counts > 0))
            if len(hidden) != 1 or counts[hidden[0]] >= min_vehicles:
                continue
            candidates = np.flatnonzero(members & ~withheld & (counts > 0))
            if len(candidates) == 0:
                published[t] = False
            else:
                withheld[candidates[np.argmin(counts[candidates])]] = True
            changed = True
    return withheld, published
