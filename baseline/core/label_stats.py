"""Per-label statistics of a raster in one sort, for labels 1..n of an instance image.

``scipy.ndimage.median`` selects each label's median over the whole image
label by label, and a median absolute deviation needs a Python call per
label; on a tile's building mosaic both took longer than finding the
buildings. Sorting the labelled pixels once by (label, value) gives every
label's median at once; the deviations are sorted the same way.
"""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation


def group_order(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The order that sorts pixels by group, then by value within a group (as ``np.lexsort((values, groups))``).

    Sorting one float64 key (the group plus the value scaled into [0, 0.5))
    takes about a third of the time of a two-key lexsort on a tile's roof
    pixels. Values closer than about 1e-12 of their range (1e-9 with a
    million groups) may swap places, which no median or quantile can tell.
    With a NaN or infinite value, or more groups than that, it falls back to
    the lexsort.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    v = values.astype(np.float64, copy=False)
    lo, hi = float(np.min(v)), float(np.max(v))
    if not (np.isfinite(lo) and np.isfinite(hi)) or int(np.max(groups)) >= 1 << 20:
        return np.lexsort((values, groups))
    key = (v - lo) * (0.5 / (hi - lo) if hi > lo else 0.0) + groups
    return np.argsort(key)


def label_quantile(values: np.ndarray, labels: np.ndarray, n: int, quantile: float) -> np.ndarray:
    """For labels 1..n: the pixel at ``quantile`` of each label's sorted values (no interpolation); NaN where empty.

    Index ``i`` holds label ``i + 1``. Label 0 (background) and labels above ``n`` are ignored.
    """
    inside = (labels > 0) & (labels <= n)
    v, g = values[inside], labels[inside].astype(np.int64)
    order = group_order(v, g)
    v = v[order]
    counts = np.bincount(g, minlength=n + 1)[1 : n + 1]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n, np.nan)
    has = counts > 0
    out[has] = v[starts[has] + np.floor((counts[has] - 1) * quantile).astype(np.int64)]
    return out


def _grouped_median(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per group 1..n (the mean of the middle two for even counts); NaN where empty."""
    order = group_order(values, groups)
    v, g = values[order], groups[order]
    counts = np.bincount(g, minlength=n + 1)[1 : n + 1]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (v[lo].astype(np.float64) + v[hi]) / 2.0
    return out


def label_median(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """For labels 1..n: the median of ``values`` (NaN for a label with no pixels); one sort, no spread."""
    inside = (labels > 0) & (labels <= n)
    return _grouped_median(values[inside].astype(np.float64), labels[inside].astype(np.int64), n)


def label_median_and_spread(values: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For labels 1..n: the median of ``values`` and the median absolute deviation scaled to a sigma.

    NaN for a label with no pixels. Label 0 (background) and labels above
    ``n`` are ignored.
    """
    inside = (labels > 0) & (labels <= n)
    v = values[inside].astype(np.float64)
    g = labels[inside].astype(np.int64)
    median = _grouped_median(v, g, n)
    spread = _grouped_median(np.abs(v - median[g - 1]), g, n) * MAD_TO_SIGMA
    return median, spread
