"""Scores from matches: precision, recall, F1, count and share errors, attribute errors.

An undefined score (no predictions, so no precision; no truth, so no recall)
is None, which JSON writes as ``null``; it is never silently 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np


def ratio(num: float, den: float) -> float | None:
    """``num / den``, or None when ``den`` is 0."""
    return None if den == 0 else float(num) / float(den)


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """Precision tp/(tp+fp), recall tp/(tp+fn) and their harmonic mean F1.

    F1 is 2 tp / (2 tp + fp + fn), which equals 2PR/(P+R) where both exist and is
    0 when there are objects or predictions but no match.
    """
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    return precision, recall, f1


def relative_count_error(n_pred: int, n_truth: int) -> float | None:
    """(predicted - true) / true: +0.1 means 10% too many; None without truth objects."""
    return ratio(n_pred - n_truth, n_truth)


def share_error(pred_flags: np.ndarray, truth_flags: np.ndarray) -> float | None:
    """|share of True among predictions - share among truth|, None when either is empty."""
    p = ratio(int(np.count_nonzero(pred_flags)), len(pred_flags))
    t = ratio(int(np.count_nonzero(truth_flags)), len(truth_flags))
    return None if p is None or t is None else abs(p - t)


def mae(errors: np.ndarray) -> float | None:
    """Mean absolute error, None when there is nothing to average."""
    errors = np.asarray(errors, dtype=float)
    errors = errors[np.isfinite(errors)]
    return float(np.mean(np.abs(errors))) if errors.size else None


def rmse(errors: np.ndarray) -> float | None:
    """Root mean square error, None when there is nothing to average."""
    errors = np.asarray(errors, dtype=float)
    errors = errors[np.isfinite(errors)]
    return float(np.sqrt(np.mean(errors**2))) if errors.size else None


def bias(errors: np.ndarray) -> float | None:
    """Mean signed error (prediction minus truth), None when there is nothing to average."""
    errors = np.asarray(errors, dtype=float)
    errors = errors[np.isfinite(errors)]
    return float(np.mean(errors)) if errors.size else None


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Share of pairs where the two labels agree, None without pairs."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    return ratio(int(np.count_nonzero(pred == truth)), len(pred))


def angle_difference_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest difference between two compass directions, in [0, 180] degrees."""
    d = np.mod(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), 360.0)
    return np.minimum(d, 360.0 - d)


def json_ready(value: object) -> object:
    """Plain JSON types: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if not math.isfinite(float(value)) else float(value)
    return value
