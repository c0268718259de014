"""Chips from a labelled scene, the way preprocess would cut them for a model.

Evaluation must run the same code path as a real run: resample the scene to
the model's GSD (area average), cut overlapping windows with
:func:`baseline.core.chips.plan_windows`, pad edge chips, and hand Chips to
``baseline.detect``.
"""

from __future__ import annotations

import numpy as np
from affine import Affine

from baseline.core.chips import Chip, ChipWindow, plan_windows
from baseline.train.data import LabelledScene
from baseline.train.targets import scene_on_model_grid


def scene_chips(scene: LabelledScene, gsd_m: float, chip_px: int, overlap_px: int) -> list[Chip]:
    """All chips of ``scene`` at the model's GSD ``gsd_m`` (from any scene GSD: :func:`scene_on_model_grid`)."""
    image, valid, transform = scene_on_model_grid(scene, gsd_m)
    pixels = image.astype(np.float32) * np.float32(1e-4)
    pixels[:, ~valid] = 0.0
    rows, cols = valid.shape
    chips = []
    for w in plan_windows(rows, cols, chip_px, overlap_px):
        v = valid[w.row : w.row + w.height, w.col : w.col + w.width]
        if not v.any():
            continue
        p = pixels[:, w.row : w.row + w.height, w.col : w.col + w.width]
        if w.height < chip_px or w.width < chip_px:
            pad = ((0, 0), (0, chip_px - w.height), (0, chip_px - w.width))
            p, v = np.pad(p, pad), np.pad(v, pad[1:])
        chips.append(
            Chip(
                scene_id=scene.scene_id,
                window=ChipWindow(w.row, w.col, w.height, w.width, w.core),
                pixels=np.ascontiguousarray(p),
                valid=v,
                transform=transform @ Affine.translation(w.col, w.row),
                gsd_m=float(abs(transform.a)),
            )
        )
    return chips
