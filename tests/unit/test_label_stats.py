"""Per-label median and spread in one sort agree with scipy's label-by-label answers."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from baseline.core.label_stats import MAD_TO_SIGMA, label_median_and_spread


def test_matches_scipy_label_by_label() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 40, (120, 90))
    labels[labels == 17] = 0  # a label with no pixels
    labels[5, 5] = 33  # odd and even counts both occur
    values = rng.gamma(2.0, 6.0, labels.shape).astype(np.float32)
    index = np.arange(1, 40)
    median, spread = label_median_and_spread(values, labels, 39)
    expected_median = ndimage.median(values, labels, index)
    expected_spread = ndimage.labeled_comprehension(
        values, labels, index, lambda v: np.median(np.abs(v - np.median(v))) * MAD_TO_SIGMA, float, np.nan
    )
    present = index != 17
    assert np.allclose(median[present], np.asarray(expected_median)[present], rtol=1e-6)
    assert np.allclose(spread[present], expected_spread[present], rtol=1e-6)
    assert np.isnan(median[16]) and np.isnan(spread[16])


def test_even_count_takes_the_mean_of_the_middle_two() -> None:
    labels = np.array([[1, 1, 1, 1, 2]])
    values = np.array([[4.0, 1.0, 3.0, 10.0, 7.0]])
    median, spread = label_median_and_spread(values, labels, 2)
    assert median.tolist() == [3.5, 7.0]
    assert spread[0] == np.median(np.abs(values[0, :4] - 3.5)) * MAD_TO_SIGMA and spread[1] == 0.0
