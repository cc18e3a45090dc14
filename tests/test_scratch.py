"""Scratch arrays reused from one encode to the next (scratch.py): never handed out twice
in one encode, reused by later ones, private to a thread; and encodes that take over
another frame's memory give exactly the bytes of encodes that start from fresh memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from firmware_py.codec import encoder_v2, scratch
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop


def test_outside_a_block_every_array_is_new():
    first, second = scratch.empty((4, 5)), scratch.empty((4, 5))
    assert first.shape == (4, 5) and first.dtype == np.float64
    assert not np.shares_memory(first, second)


def test_a_block_reuses_the_previous_blocks_arrays_but_none_twice():
    with scratch.reusing_arrays():
        first = [scratch.empty((3, 7)), scratch.empty((3, 7)), scratch.empty(9, np.int16)]
    with scratch.reusing_arrays():
        second = [scratch.empty((3, 7)), scratch.empty((3, 7)), scratch.empty(9, np.int16), scratch.empty((3, 7))]
    assert {id(a) for a in second[:3]} == {id(a) for a in first}
    assert all(a.dtype == b.dtype and a.shape == b.shape for a, b in zip(first, second))
    assert not any(np.shares_memory(second[3], a) for a in first)  # a third (3, 7) array is new


def test_an_array_one_block_does_not_take_waits_for_the_next():
    """A fixed-quality encode retains no coefficients; the rate-controlled one after it
    still finds the previous one's."""
    with scratch.reusing_arrays():
        coefficients = scratch.empty((64, 12))
        plane = scratch.empty((6, 6))
    with scratch.reusing_arrays():
        assert scratch.empty((6, 6)) is plane
    with scratch.reusing_arrays():
        assert scratch.empty((64, 12)) is coefficients


def test_arrays_no_block_took_for_two_blocks_are_dropped():
    with scratch.reusing_arrays():
        old = scratch.empty((6, 6))
    for _ in range(2):
        with scratch.reusing_arrays():
            other = scratch.empty((6, 7))
            int_array = scratch.empty((6, 6), np.int64)
    with scratch.reusing_arrays():
        again = scratch.empty((6, 6))
    assert not np.shares_memory(other, old) and not np.shares_memory(int_array, old)
    assert not np.shares_memory(again, old)  # no build-up when frame sizes change


def test_a_nested_block_shares_the_outer_blocks_arrays():
    with scratch.reusing_arrays():
        scratch.empty(8)
    with scratch.reusing_arrays():
        outer = scratch.empty(8)
        with scratch.reusing_arrays():
            inner = scratch.empty(8)
        after = scratch.empty(8)
    assert not np.shares_memory(inner, outer) and not np.shares_memory(after, inner)


def test_a_failed_block_still_hands_its_arrays_on():
    with pytest.raises(RuntimeError), scratch.reusing_arrays():
        taken = scratch.empty(11)
        raise RuntimeError("encode failed")
    with scratch.reusing_arrays():
        assert scratch.empty(11) is taken


def test_threads_encoding_at_once_never_share_an_array():
    barrier = threading.Barrier(2)
    taken: list[np.ndarray] = []

    def block() -> None:
        with scratch.reusing_arrays():
            array = scratch.empty((5, 5))
            barrier.wait()  # both blocks are open at the same time
            taken.append(array)
            barrier.wait()

    for _ in range(3):
        threads = [threading.Thread(target=block) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not np.shares_memory(taken[-1], taken[-2])


def fresh_memory_stream(image: np.ndarray, **budget) -> bytes:
    """The stream as encode codes it, without the scratch arrays of any earlier encode."""
    frame = encoder_v2.transform_frame(image, get_transform_profile("klt"))
    if budget:
        return encoder_v2.fit_budget(frame, budget["max_bytes"])
    return encoder_v2.code_frame(frame, 1.0)


@pytest.mark.parametrize("budget", [{}, {"max_bytes": 900}], ids=["fixed quality", "rate control"])
def test_encodes_on_another_frames_memory_give_the_same_bytes(kodim23, lena2, budget):
    colour, other = crop(kodim23, 96, 128), 255 - crop(kodim23, 96, 128)
    gray, other_gray = crop(lena2, 96, 128), crop(lena2, 96, 128)[::-1].copy()
    for image, previous in ((colour, other), (gray, other_gray), (colour, gray)):
        expected = fresh_memory_stream(image, **budget)
        encoder_v2.encode(previous, **budget, profile="klt", scale=1)  # leaves its arrays to the next
        assert encoder_v2.encode(image, **budget, profile="klt", scale=1) == expected
