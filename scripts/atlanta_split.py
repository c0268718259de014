"""A spatial two-fold split of the SpaceNet-4 Atlanta chip, for fine-tuning on one half and scoring the other.

The chip is one 450 m square with 43 footprints, so the only honest split is
in space: a vertical line through the chip's middle cuts it into a west and an
east half. Each fold trains on one half and is scored on the other; a strip
``buffer_m`` wide either side of the line is left out of training (its pixels
are no-data in the training image), so no training crop sees the pixels next
to a test building, and a building is assigned to the half that holds its
centroid. The same detections are scored for the shipped and the fine-tuned
model, on the same half, so the two figures compare like with like.

Used by ``scripts/score_spacenet_atlanta.py --finetune-minutes`` (module doc
there). Nothing here reads ``../shared``: the caller passes the chip in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine

HALVES = ("west", "east")


@dataclass(frozen=True)
class Fold:
    """Train on ``train`` (a half's name), score on ``test``; ``x_split`` is the dividing easting."""

    train: str
    test: str
    x_split: float
    buffer_m: float

    def in_half(self, half: str, x: np.ndarray) -> np.ndarray:
        """Which eastings lie in ``half``."""
        return x < self.x_split if half == "west" else x >= self.x_split

    def trainable(self, x: np.ndarray) -> np.ndarray:
        """Eastings in the training half and clear of the strip beside the line."""
        return self.in_half(self.train, x) & (np.abs(x - self.x_split) >= self.buffer_m)


def chip_folds(transform: Affine, width: int, buffer_m: float) -> list[Fold]:
    """The two folds (west -> east, east -> west) split at the chip's middle column."""
    x_split = float((transform * (width / 2.0, 0.0))[0])
    return [Fold("west", "east", x_split, buffer_m), Fold("east", "west", x_split, buffer_m)]


def centroid_x(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Centroid eastings of a frame's geometries (metres, its projected CRS)."""
    return frame.geometry.centroid.x.to_numpy() if len(frame) else np.zeros(0)


def half_of(frame: gpd.GeoDataFrame, fold: Fold, half: str) -> gpd.GeoDataFrame:
    """The rows of ``frame`` whose centroid lies in ``half``."""
    return frame[fold.in_half(half, centroid_x(frame))].reset_index(drop=True)


def write_training_folder(image: np.ndarray, valid: np.ndarray, transform: Affine, crs: Any,
                          labels: gpd.GeoDataFrame, fold: Fold, folder: Path) -> dict[str, int]:
    """A labelled-raster folder (``baseline.train.data`` layout 2) holding only the fold's training half.

    ``image`` is the model's input (4, h, w) reflectance 0..1; pixels outside
    the training half or inside the strip are written as no-data (0), so the
    training sampler masks them out of every loss. ``buildings.geojson`` holds
    the labels whose centroid lies in the training half. Returns counts for the
    report.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cols = np.arange(image.shape[2], dtype=np.float64) + 0.5
    x = transform.c + transform.a * cols
    keep = valid & fold.trainable(x)[None, :]
    dn = np.clip(np.round(image * 10000.0), 1, 65535).astype(np.uint16)  # 0 is reserved for no-data
    dn[:, ~keep] = 0
    profile = dict(driver="GTiff", width=dn.shape[2], height=dn.shape[1], count=dn.shape[0], dtype="uint16",
                   crs=crs, transform=transform, nodata=0, compress="deflate")
    with rasterio.open(folder / "image.tif", "w", **profile) as dst:
        dst.write(dn)
    train_labels = half_of(labels, fold, fold.train)
    train_labels[["geometry"]].to_file(folder / "buildings.geojson", driver="GeoJSON")
    counts = {"labels": len(train_labels), "pixels": int(keep.sum())}
    (folder / "split.json").write_text(json.dumps({"fold": fold.__dict__, **counts}, indent=2) + "\n")
    return counts
