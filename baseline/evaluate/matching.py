"""One-to-one matching of predictions to ground truth.

Both matchers work the same way:

1. find candidate pairs with an STRtree (footprints that intersect; vehicle
   centres within the radius), and score them vectorised (IoU; closeness);
2. keep pairs that pass the threshold;
3. choose the *optimal* one-to-one assignment on those pairs: the largest
   possible number of matches, and among assignments with that many matches
   the best total score (highest total IoU; smallest total distance). This is
   the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``), run on
   each connected group of competing pairs separately, so it stays fast on a
   whole city. Each prediction and each truth object is used at most once.

Greedy matching (best pair first) can lose matches: with truths at 0 m and 2 m
and predictions at 1.1 m and 3.2 m (radius 1.5 m), greedy pairs 1.1 with 2 and
leaves 3.2 unmatched; the optimal assignment matches both.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from baseline.errors import InvalidValueError

Geometries = gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray


@dataclass(frozen=True)
class Matches:
    """Matched pairs as positions into the prediction and truth tables.

    Attributes:
        pred: position of each matched prediction.
        truth: position of its truth object.
        score: IoU (buildings) or centre distance in metres (vehicles) of each pair.
        n_pred, n_truth: sizes of the two tables.
    """

    pred: np.ndarray
    truth: np.ndarray
    score: np.ndarray
    n_pred: int
    n_truth: int

    @property
    def tp(self) -> int:
        """Matched pairs."""
        return len(self.pred)

    @property
    def fp(self) -> int:
        """Predictions without a match."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """Truth objects without a match."""
        return self.n_truth - self.tp


def geometries(frame: Geometries) -> np.ndarray:
    """The shapes of a table, series or array as a numpy array of valid geometries."""
    if isinstance(frame, gpd.GeoDataFrame):
        values = frame.geometry.values
    elif isinstance(frame, gpd.GeoSeries):
        values = frame.values
    else:
        values = frame
    return shapely.make_valid(np.asarray(values, dtype=object))


def optimal_assignment(
    rows: np.ndarray, cols: np.ndarray, score: np.ndarray, n_rows: int, n_cols: int
) -> np.ndarray:
    """Indices into the candidate pairs of an optimal one-to-one assignment.

    Maximises the number of pairs first, then the total ``score`` (in [0, 1]).
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(rows)), (rows, n_rows + cols)), shape=(n_rows + n_cols,) * 2)
    _, label = connected_components(graph, directed=False)
    component = label[rows]
    chosen = []
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.diff(component[order])) + 1
    for pairs in np.split(order, bounds):
        if len(pairs) == 1:
            chosen.append(pairs)
            continue
        r_ids, r_pos = np.unique(rows[pairs], return_inverse=True)
        c_ids, c_pos = np.unique(cols[pairs], return_inverse=True)
        # a match is worth more than any total of scores, so the count comes first
        bonus = min(len(r_ids), len(c_ids)) + 1.0
        weight = np.zeros((len(r_ids), len(c_ids)))
        pair_at = np.full((len(r_ids), len(c_ids)), -1, dtype=np.int64)
        weight[r_pos, c_pos] = bonus + score[pairs]
        pair_at[r_pos, c_pos] = pairs
        r_sel, c_sel = linear_sum_assignment(weight, maximize=True)
        picked = pair_at[r_sel, c_sel]
        chosen.append(picked[picked >= 0])
    return np.sort(np.concatenate(chosen))


def pair_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Intersection over union of each (pred[i], truth[i]) pair, vectorised."""
    inter = shapely.area(shapely.intersection(pred, truth))
    union = shapely.area(pred) + shapely.area(truth) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_buildings(pred: Geometries, truth: Geometries, iou: float = 0.5) -> Matches:
    """Match footprints one-to-one where IoU >= ``iou`` (optimal assignment, see the module doc)."""
    if not 0.0 < iou <= 1.0:
        raise InvalidValueError("iou", iou, "a threshold in (0, 1]")
    p, t = geometries(pred), geometries(truth)
    if len(p) == 0 or len(t) == 0:
        return Matches(np.zeros(0, int), np.zeros(0, int), np.zeros(0), len(p), len(t))
    pi, ti = shapely.STRtree(t).query(p, predicate="intersects")
    scores = pair_iou(p[pi], t[ti])
    keep = scores >= iou - 1e-12
    pi, ti, scores = pi[keep], ti[keep], scores[keep]
    chosen = optimal_assignment(pi, ti, scores, len(p), len(t))
    return Matches(pi[chosen], ti[chosen], scores[chosen], len(p), len(t))


def centres(frame: Geometries) -> np.ndarray:
    """Centre point of each geometry (the box's centroid; a point stays itself)."""
    return shapely.centroid(geometries(frame))


def match_vehicles(pred: Geometries, truth: Geometries, radius: float = 1.5) -> Matches:
    """Match vehicles one-to-one by centre distance <= ``radius`` metres (optimal assignment)."""
    if not radius > 0:
        raise InvalidValueError("radius", radius, "a positive distance in metres")
    p, t = centres(pred), centres(truth)
    if len(p) == 0 or len(t) == 0:
        return Matches(np.zeros(0, int), np.zeros(0, int), np.zeros(0), len(p), len(t))
    pi, ti = shapely.STRtree(t).query(p, predicate="dwithin", distance=radius)
    dist = shapely.distance(p[pi], t[ti])
    keep = dist <= radius + 1e-9
    pi, ti, dist = pi[keep], ti[keep], dist[keep]
    chosen = optimal_assignment(pi, ti, 1.0 - dist / radius, len(p), len(t))
    return Matches(pi[chosen], ti[chosen], dist[chosen], len(p), len(t))
