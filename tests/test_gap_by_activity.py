"""export.gap_by_activity: the JPEG 2000 stream it compares with is never larger than
klt's, and block activity is the blocks' pixel standard deviation."""

from __future__ import annotations

import numpy as np

from export import gap_by_activity

from codec_helpers import crop


def test_jpeg2000_stream_fits_the_budget_closely(lena2):
    image = crop(lena2, 64, 96)
    for budget in (300, 900):
        data = gap_by_activity.jpeg2000_within(image, budget)
        assert budget * 0.8 <= len(data) <= budget


def test_block_activity_is_each_whole_block_standard_deviation():
    image = np.zeros((17, 24), dtype=np.uint8)
    image[:8, 8:16] = np.arange(64, dtype=np.uint8).reshape(8, 8)
    image[8:16, 16:] = 200
    expected = [0.0, np.arange(64).std(), 0.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(gap_by_activity.block_activity(image), expected)
