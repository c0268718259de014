"""95% intervals for counts and ratios, from the detectors' measured precision and recall.

In plain words. A detector that found ``n`` objects, with precision ``p`` (the
share of its detections that are real) and recall ``r`` (the share of real
objects it finds), implies about ``n * p / r`` real objects: ``n * p`` of the
detections are real, and those are a fraction ``r`` of all real objects. That is
the estimate published as ``X_est`` beside the raw detection count ``X``.

The interval says how far the real count could be from that estimate, from three
sources of doubt, combined by simulation (Monte Carlo, 4000 draws, fixed seed,
so a rerun gives identical figures):

1. ``p`` and ``r`` were measured on a finite evaluation set (``n_pred``
   detections, ``n_truth`` objects, from the model card). Each draw takes a
   plausible ``p`` and ``r`` from their Beta posteriors (Jeffreys prior:
   ``Beta(tp + 1/2, fp + 1/2)`` and ``Beta(tp + 1/2, fn + 1/2)``). A small
   evaluation set gives wide posteriors and so a wide interval. The same drawn
   ``p`` and ``r`` are used for every zone and level in a draw, because one
   detector made all the detections: its error does not average out across cells.
2. Which of the ``n`` detections are real: ``Binomial(n, p)``.
3. How many real objects were missed, given ``t`` found at recall ``r``:
   ``NegativeBinomial(t, r)`` failures before ``t`` successes (mean ``t (1-r)/r``).

The real count in a draw is found + missed; the interval is the 2.5% and 97.5%
quantiles of the draws (widened to include ``X_est`` in the rare case that the
draws' skew leaves it just outside). Vehicles are split into strata (class x
on-road/parked x moving) and each stratum uses its own rate when the card has
one; a group such as ``vehicles_on_road`` sums its strata within each draw, and
a ratio such as ``on_road_share`` divides the group draws, so its interval
carries the same doubt. A count whose rate is unknown gets NaN, not a guess.

Limits: a zone with no detections has estimate 0 and interval [0, 0] (the model
only scales what was seen); rates measured on one kind of scene are assumed to
hold on this one.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from baseline.aggregate.types import MeasuredRate

# the method in plain words, for the report
METHOD: str = (__doc__ or "").replace("``", "").strip()

N_DRAWS = 4000
SEED = 1729
ZONE_CHUNK = 256  # zones simulated at once: bounds memory to about ZONE_CHUNK x N_DRAWS x 8 bytes per array


@dataclass(frozen=True)
class RateDraws:
    """Draws of a detector's precision ``p`` and recall ``r``, and their point values."""

    p: np.ndarray
    r: np.ndarray
    p_hat: float
    r_hat: float


class RateSampler:
    """Draws each measured rate once, deterministically, and reuses the draws everywhere."""

    def __init__(self, seed: int = SEED, n_draws: int = N_DRAWS) -> None:
        self.seed = seed
        self.n_draws = n_draws
        self._cache: dict[MeasuredRate, RateDraws] = {}

    def draws(self, rate: MeasuredRate) -> RateDraws:
        """Posterior draws of ``rate``'s precision and recall."""
        if rate not in self._cache:
            key = zlib.crc32(repr(rate).encode())
            rng = np.random.default_rng([self.seed, key])
            tp_p = rate.tp_for_precision
            tp_r = rate.tp_for_recall
            p = rng.beta(tp_p + 0.5, rate.n_pred - tp_p + 0.5, self.n_draws)
            r = rng.beta(tp_r + 0.5, rate.n_truth - tp_r + 0.5, self.n_draws)
            self._cache[rate] = RateDraws(p, np.maximum(r, 1e-12), rate.precision, rate.recall)
        return self._cache[rate]


def true_count_draws(n: np.ndarray, rate: RateDraws, rng: np.random.Generator) -> np.ndarray:
    """Draws (zones x draws) of the real count behind ``n`` detections per zone."""
    n = np.asarray(n, dtype=np.int64)
    found = rng.binomial(n[:, None], rate.p[None, :])
    missed = rng.negative_binomial(np.maximum(found, 1), rate.r[None, :])
    missed[found == 0] = 0
    return (found + missed).astype(np.float64)


@dataclass(frozen=True)
class Summary:
    """Point estimate and 95% interval per zone."""

    est: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def _quantiles(draws: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5% and 97.5% quantiles per row, ignoring undefined draws (0/0); NaN if none defined."""
    lo = np.full(len(draws), np.nan)
    hi = np.full(len(draws), np.nan)
    finite = np.isfinite(draws)
    full = finite.all(axis=1)
    if full.any():
        q = np.quantile(draws[full], [0.025, 0.975], axis=1)
        lo[full], hi[full] = q[0], q[1]
    for i in np.flatnonzero(~full & finite.any(axis=1) & np.isfinite(est)):
        lo[i], hi[i] = np.quantile(draws[i, finite[i]], [0.025, 0.975])
    ok = np.isfinite(est) & np.isfinite(lo)
    lo[ok] = np.minimum(lo[ok], est[ok])
    hi[ok] = np.maximum(hi[ok], est[ok])
    lo[~np.isfinite(est)] = np.nan
    hi[~np.isfinite(est)] = np.nan
    return lo, hi


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def simulate(
    counts: np.ndarray,
    rates: Sequence[MeasuredRate | None],
    groups: Mapping[str, np.ndarray],
    ratios: Mapping[str, tuple[str, str | np.ndarray]],
    *,
    sampler: RateSampler,
    stream: int,
) -> dict[str, Summary]:
    """Estimates and intervals for count groups and ratios over zones.

    Args:
        counts: detections per zone and stratum, shape (zones, strata).
        rates: the measured rate of each stratum (None: unknown).
        groups: name -> boolean mask over strata; the group's count is the sum of those strata.
        ratios: name -> (numerator group, denominator group name or a fixed array per zone).
        sampler: shared rate draws (one detector, the same draws for every level).
        stream: a number that separates this level's random stream from the others'.
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(len(counts), len(rates))
    n_zones, n_draws = len(counts), sampler.n_draws
    rate_draws = [None if rate is None else sampler.draws(rate) for rate in rates]
    factor = np.array([np.nan if d is None else d.p_hat / d.r_hat for d in rate_draws])

    group_est: dict[str, np.ndarray] = {}
    for name, mask in groups.items():
        contrib = counts[:, mask] * factor[mask]
        # a stratum with an unknown rate makes the group unknown, detections or not
        group_est[name] = np.where(np.isnan(factor[mask]).any(), np.nan, contrib.sum(axis=1))

    out = {name: Summary(est, np.full(n_zones, np.nan), np.full(n_zones, np.nan)) for name, est in group_est.items()}
    ratio_est = {}
    for name, (num, den) in ratios.items():
        den_est = group_est[den] if isinstance(den, str) else np.broadcast_to(np.asarray(den, float), (n_zones,))
        ratio_est[name] = _safe_divide(group_est[num], den_est)
        out[name] = Summary(ratio_est[name], np.full(n_zones, np.nan), np.full(n_zones, np.nan))

    rng = np.random.default_rng([sampler.seed, stream])
    for start in range(0, n_zones, ZONE_CHUNK):
        sl = slice(start, min(start + ZONE_CHUNK, n_zones))
        size = sl.stop - sl.start
        strata = []
        for s, draws in enumerate(rate_draws):
            if draws is None:
                strata.append(np.full((size, n_draws), np.nan))
            else:
                strata.append(true_count_draws(counts[sl, s], draws, rng))
        sums = {name: sum((strata[s] for s in np.flatnonzero(mask)), np.zeros((size, n_draws)))
                for name, mask in groups.items()}
        for name, draws in sums.items():
            out[name].lo[sl], out[name].hi[sl] = _quantiles(draws, group_est[name][sl])
        for name, (num, den) in ratios.items():
            if isinstance(den, str):
                den_draws = sums[den]
            else:
                den_draws = np.broadcast_to(np.asarray(den, float), (n_zones,))[sl][:, None]
            draws = _safe_divide(sums[num], np.broadcast_to(den_draws, sums[num].shape))
            out[name].lo[sl], out[name].hi[sl] = _quantiles(draws, ratio_est[name][sl])
    return out
