"""Why buildings were missed or predicted in excess: each unmatched footprint given one kind.

F1 says how many footprints failed to match; a researcher improving the
model needs to know *why*. Each footprint left unmatched after one-to-one
matching gets exactly one kind, decided by area overlaps alone (shares of a
footprint's area, summed over the footprints of the other side, which within
one table do not overlap):

Truth buildings without a match (false negatives), first kind that applies:

- ``missed``: predictions cover less than half of it: the model did not see it;
- ``merged``: the prediction that covers most of it also covers at least half
  of another truth building: touching buildings came out as one;
- ``split``: two or more predictions each cover at least a fifth of it: one
  building came out as pieces;
- ``outline``: found, but the outline is too far off to reach the matching IoU.

Predictions without a match (false positives):

- ``merged``: covers at least half of each of two or more truth buildings;
- ``phantom``: less than half of its area lies on truth buildings: nothing is
  there (or a building the truth lacks);
- ``extra``: mostly on a truth building that another prediction matched: a
  duplicate, or a second piece of a building that was found;
- ``partial``: mostly on a truth building nothing matched: a piece of a split
  building, or an outline too far off.
"""

from __future__ import annotations

import numpy as np
import shapely

from baseline.evaluate.matching import Matches

COVERED = 0.5
"""Share of a footprint's area that counts as covered (missed, merged, phantom)."""
PIECE = 0.2
"""Share of a truth footprint one prediction must cover to count as a piece of it (split)."""

FN_KINDS = ("missed", "merged", "split", "outline")
FP_KINDS = ("merged", "phantom", "extra", "partial")


def building_error_kinds(pred: np.ndarray, truth: np.ndarray, matches: Matches) -> dict[str, int]:
    """Counts of unmatched truth buildings and predictions by kind (see the module doc).

    ``pred`` and ``truth`` are arrays of valid polygons in one metric CRS;
    ``matches`` their one-to-one matches. Keys are ``building_fn_<kind>`` and
    ``building_fp_<kind>``; the FN counts sum to ``matches.fn`` and the FP
    counts to ``matches.fp``.
    """
    counts = {f"building_fn_{k}": 0 for k in FN_KINDS} | {f"building_fp_{k}": 0 for k in FP_KINDS}
    n_pred, n_truth = len(pred), len(truth)
    if n_pred == 0 or n_truth == 0:
        counts["building_fn_missed"] = matches.fn
        counts["building_fp_phantom"] = matches.fp
        return counts
    pi, ti = shapely.STRtree(truth).query(pred, predicate="intersects")
    inter = shapely.area(shapely.intersection(pred[pi], truth[ti]))
    keep = inter > 0
    pi, ti, inter = pi[keep], ti[keep], inter[keep]
    pred_area, truth_area = shapely.area(pred), shapely.area(truth)
    with np.errstate(divide="ignore", invalid="ignore"):
        of_truth = np.where(truth_area[ti] > 0, inter / truth_area[ti], 0.0)  # share of the truth footprint
        of_pred = np.where(pred_area[pi] > 0, inter / pred_area[pi], 0.0)  # share of the prediction
    truth_cover = np.minimum(np.bincount(ti, weights=of_truth, minlength=n_truth), 1.0)
    pred_on_truth = np.minimum(np.bincount(pi, weights=of_pred, minlength=n_pred), 1.0)
    buildings_covered = np.bincount(pi[of_truth >= COVERED], minlength=n_pred)  # truths each pred covers half of
    pieces = np.bincount(ti[of_truth >= PIECE], minlength=n_truth)

    # the prediction covering most of each truth footprint, and its share of it
    main_pred, main_share = np.full(n_truth, -1), np.zeros(n_truth)
    order = np.lexsort((of_truth, ti))  # by truth, then share ascending: the last per truth is the largest
    main_pred[ti[order]], main_share[ti[order]] = pi[order], of_truth[order]
    has_main = main_pred >= 0
    others_covered = np.zeros(n_truth, np.int64)  # truths besides this one that its main prediction covers half of
    others_covered[has_main] = buildings_covered[main_pred[has_main]] - (main_share[has_main] >= COVERED)

    unmatched_truth = np.ones(n_truth, bool)
    unmatched_truth[matches.truth] = False
    fn_kind = np.select(
        [truth_cover < COVERED, others_covered >= 1, pieces >= 2], ["missed", "merged", "split"], "outline"
    )[unmatched_truth]
    # the truth footprint each prediction lies on most, and whether something matched it
    main_truth = np.full(n_pred, -1)
    order = np.lexsort((of_pred, pi))
    main_truth[pi[order]] = ti[order]
    on_found = np.zeros(n_pred, bool)
    on_found[main_truth >= 0] = ~unmatched_truth[main_truth[main_truth >= 0]]
    unmatched_pred = np.ones(n_pred, bool)
    unmatched_pred[matches.pred] = False
    fp_kind = np.select(
        [buildings_covered >= 2, pred_on_truth < COVERED, on_found], ["merged", "phantom", "extra"], "partial"
    )[unmatched_pred]
    for kind in FN_KINDS:
        counts[f"building_fn_{kind}"] = int(np.count_nonzero(fn_kind == kind))
    for kind in FP_KINDS:
        counts[f"building_fp_{kind}"] = int(np.count_nonzero(fp_kind == kind))
    return counts
