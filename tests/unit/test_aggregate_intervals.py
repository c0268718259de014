"""The 95% intervals: contain the estimate, widen with a smaller evaluation set, collapse when certain."""

from __future__ import annotations

import numpy as np
import pytest

from baseline.aggregate.intervals import RateSampler, simulate
from baseline.aggregate.types import DetectorRates, MeasuredRate


def count_summary(n, rate, n_draws=2000, seed=11):
    counts = np.asarray(n, dtype=np.int64)[:, None]
    out = simulate(counts, [rate], {"x": np.array([True])}, {}, sampler=RateSampler(seed, n_draws), stream=1)
    return out["x"]


def test_estimate_is_n_times_precision_over_recall():
    rate = MeasuredRate.from_counts(tp=80, fp=20, fn=20)  # p = 0.8, r = 0.8
    s = count_summary([0, 10, 100], rate)
    np.testing.assert_allclose(s.est, [0.0, 10.0, 100.0])
    rate = MeasuredRate.from_precision_recall(0.9, 0.6, n_truth=500)
    assert count_summary([60], rate).est[0] == pytest.approx(60 * 0.9 / 0.6)


@pytest.mark.parametrize("n", [0, 1, 3, 25, 400])
def test_interval_contains_the_estimate(n):
    rate = MeasuredRate.from_counts(tp=170, fp=30, fn=60)
    s = count_summary([n], rate)
    assert s.lo[0] <= s.est[0] <= s.hi[0]
    if n >= 25:
        assert s.lo[0] < s.est[0] < s.hi[0]


def test_interval_widens_when_recall_was_measured_on_fewer_objects():
    small = MeasuredRate.from_precision_recall(0.9, 0.8, n_truth=40)
    large = MeasuredRate.from_precision_recall(0.9, 0.8, n_truth=40000)
    s_small, s_large = count_summary([200], small), count_summary([200], large)
    assert s_small.est[0] == pytest.approx(s_large.est[0])
    assert (s_small.hi[0] - s_small.lo[0]) > 1.5 * (s_large.hi[0] - s_large.lo[0])


def test_perfect_detector_measured_on_a_huge_set_collapses_to_the_count():
    rate = MeasuredRate.from_counts(tp=10**9, fp=0, fn=0)
    s = count_summary([0, 7, 123], rate)
    np.testing.assert_array_equal(s.lo, [0, 7, 123])
    np.testing.assert_array_equal(s.hi, [0, 7, 123])
    np.testing.assert_array_equal(s.est, [0, 7, 123])


def test_draws_are_deterministic_for_a_seed():
    rate = MeasuredRate.from_counts(tp=50, fp=10, fn=15)
    a, b = count_summary([30, 60], rate), count_summary([30, 60], rate)
    np.testing.assert_array_equal(a.lo, b.lo)
    np.testing.assert_array_equal(a.hi, b.hi)


def test_unknown_rate_gives_no_estimate_or_interval():
    s = count_summary([5], None)
    assert np.isnan(s.est[0]) and np.isnan(s.lo[0]) and np.isnan(s.hi[0])


def test_groups_and_ratios_share_the_draws_of_their_strata():
    on = MeasuredRate.from_counts(tp=90, fp=10, fn=30)
    parked = MeasuredRate.from_counts(tp=60, fp=40, fn=20)
    counts = np.array([[50, 50]])
    out = simulate(
        counts, [on, parked],
        {"total": np.array([True, True]), "on_road": np.array([True, False])},
        {"share": ("on_road", "total"), "per_km": ("on_road", np.array([2.0]))},
        sampler=RateSampler(3, 2000), stream=1,
    )
    on_est = 50 * 0.9 / 0.75
    total_est = on_est + 50 * 0.6 / 0.75
    assert out["on_road"].est[0] == pytest.approx(on_est)
    assert out["total"].est[0] == pytest.approx(total_est)
    assert out["share"].est[0] == pytest.approx(on_est / total_est)
    assert out["per_km"].est[0] == pytest.approx(on_est / 2.0)
    for name in ("share", "per_km", "total"):
        assert out[name].lo[0] <= out[name].est[0] <= out[name].hi[0]
    assert 0.0 <= out["share"].lo[0] < out["share"].hi[0] <= 1.0


def test_vehicle_rates_are_looked_up_most_specific_first():
    overall = MeasuredRate.from_counts(10, 1, 1)
    car = MeasuredRate.from_counts(20, 2, 2)
    parked = MeasuredRate.from_counts(30, 3, 3)
    large_moving = MeasuredRate.from_counts(40, 4, 4)
    rates = DetectorRates(vehicles=overall, vehicle_classes={"car": car}, vehicle_contexts={"parked": parked},
                          vehicle_class_contexts={("large", "moving"): large_moving})
    assert rates.vehicle_rate("large", ("moving", "on_road")) is large_moving
    assert rates.vehicle_rate("car", ("parked",)) is car
    assert rates.vehicle_rate("large", ("parked",)) is parked
    assert rates.vehicle_rate("large", ("on_road",)) is overall
    assert DetectorRates().vehicle_rate("car", ("on_road",)) is None
