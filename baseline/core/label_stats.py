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


def _grouped_median(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per group 1..n (the mean of the middle two for even counts); NaN where empty."""
    order = np.lexsort((values, groups))
    v, g = values[order], groups[order]
    counts = np.bincount(g, minlength=n + 1)[1 : n + 1]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (v[lo].astype(np.float64) + v[hi]) / 2.0
    return out


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
