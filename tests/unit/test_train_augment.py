"""Augmentation moves labels with the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from baseline.train.augment import Dihedral


@pytest.mark.parametrize("t", [False, True])
@pytest.mark.parametrize("fr", [False, True])
@pytest.mark.parametrize("fc", [False, True])
def test_dihedral_moves_points_and_vectors_with_the_raster(t: bool, fr: bool, fc: bool) -> None:
    size = 16
    image = np.zeros((1, size, size))
    image[0, 3, 10] = 1.0  # pixel (3, 10): centre at (3.5, 10.5)
    image[0, 5, 11] = 2.0  # one step of (drow, dcol) = (2, 1) further on
    d = Dihedral(t, fr, fc)
    out = d.raster(image)
    p = d.points(np.array([[3.5, 10.5]]), size)[0]
    v = d.vectors(np.array([[2.0, 1.0]]))[0]
    assert out[0, int(p[0]), int(p[1])] == 1.0
    q = p + v
    assert out[0, int(q[0]), int(q[1])] == 2.0
