"""export.tune_trailing: the curves it compares are the codec's own, and the rule it tunes
trades a little PSNR for smaller streams."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from export import tune_trailing
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop


def test_weak_trailing_ones_dropped_shrink_streams_at_every_quality(lena2):
    image = crop(lena2, 96, 128)
    profile = get_transform_profile(tune_trailing.PROFILE)
    kept = tune_trailing.curve(image, replace(profile, trailing_one=0.0))
    dropped = tune_trailing.curve(image, replace(profile, trailing_one=0.8))
    assert len(kept["bpp"]) == len(tune_trailing.QUALITIES)
    assert np.all(np.diff(kept["bpp"]) < 0)  # quality scales the step: larger is coarser
    assert np.all(np.array(dropped["bpp"]) <= np.array(kept["bpp"]))
    assert np.sum(np.array(dropped["bpp"]) < np.array(kept["bpp"])) >= len(tune_trailing.QUALITIES) // 2
    assert np.all(np.abs(np.array(dropped["psnr"]) - np.array(kept["psnr"])) < 0.5)
