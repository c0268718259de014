"""Per-label medians, spreads and quantiles in one sort agree with label-by-label answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from baseline.core.label_stats import (
    MAD_TO_SIGMA,
    group_order,
    label_median,
    label_median_and_spread,
    label_quantile,
)


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


def test_group_order_sorts_like_a_two_key_lexsort() -> None:
    rng = np.random.default_rng(5)
    groups = rng.integers(1, 300, 20_000)
    values = rng.normal(0.2, 0.05, groups.size).astype(np.float32)
    values[:50] = values[50]  # ties
    order = group_order(values, groups)
    reference = np.lexsort((values, groups))
    assert np.array_equal(groups[order], groups[reference])
    assert np.array_equal(values[order], values[reference])
    with_nan = values.copy()
    with_nan[7] = np.nan  # no finite key: the lexsort itself
    assert np.array_equal(group_order(with_nan, groups), np.lexsort((with_nan, groups)))
    constant = np.ones(10, dtype=np.float32)
    assert np.array_equal(np.sort(groups[:10]), groups[:10][group_order(constant, groups[:10])])


def test_label_quantile_and_median_match_numpy_label_by_label() -> None:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 25, (80, 70))
    labels[labels == 9] = 0  # a label with no pixels
    values = rng.gamma(2.0, 0.1, labels.shape).astype(np.float32)
    q90 = label_quantile(values, labels, 24, 0.9)
    med = label_median(values, labels, 24)
    for k in range(1, 25):
        v = np.sort(values[labels == k])
        if v.size == 0:
            assert np.isnan(q90[k - 1]) and np.isnan(med[k - 1])
            continue
        assert q90[k - 1] == v[int(np.floor((v.size - 1) * 0.9))]
        assert med[k - 1] == pytest.approx(float(np.median(v.astype(np.float64))), rel=1e-12)
