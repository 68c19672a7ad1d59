"""Image inputs: what `as_rgb` accepts and what it makes of it (tiny arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.errors import PosekitError
from posekit.io import as_rgb


def test_rgb_uint8_passes_through_uncopied():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert as_rgb(image) is image


def test_other_layouts_become_contiguous_rgb_uint8():
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(as_rgb(rgba), rgba[..., :3])
    gray = np.array([[0, 7], [9, 255]], np.uint8)
    assert as_rgb(gray).shape == (2, 2, 3) and (as_rgb(gray)[..., 2] == gray).all()
    flipped = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)[:, ::-1]
    out = as_rgb(flipped)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, flipped)
    unit = np.full((1, 1, 3), 0.5)  # floats in [0, 1] are scaled to 0..255
    assert as_rgb(unit).dtype == np.uint8 and as_rgb(unit)[0, 0, 0] == 127


@pytest.mark.parametrize("shape", [(4, 4, 2), (4, 4, 3, 1), (0, 4, 3)])
def test_wrong_shapes_are_one_clear_error(shape):
    with pytest.raises(PosekitError, match="RGB image"):
        as_rgb(np.zeros(shape, np.uint8))
