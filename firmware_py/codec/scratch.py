"""Large working arrays that an encode takes over from earlier encodes.

Why: a frame's large arrays (a 640x480 frame's float64 planes are 3.6 MB; rate control
retains about as much in coefficients) would otherwise be fresh memory every frame.
glibc gives large freed blocks back to the system (a decode between two encodes is
enough), and then every page costs a fault and its zeroing on first write: measured at
0.6-1.3k faults, about a fifth of a 640x480 encode's CPU time, when encodes alternate
with other work. Process-wide allocator settings would avoid it too, but flight
software should not have to set them.

Inside :func:`reusing_arrays` (the transform profile encoder runs each encode in one),
:func:`empty` hands out arrays that earlier encodes took, of the same shapes and
dtypes, each at most once per encode, and allocates the others; outside, it is
``np.empty``.
An array from :func:`empty` must not outlive the ``with`` block: a later encode
overwrites it. Each thread (each context) encoding at the same time has its own arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

# Arrays of a shape and dtype that no encode took for this many encodes in a row are
# dropped: encodes of different kinds alternate (a fixed quality retains no coefficients,
# rate control does) without reallocating, and a frame size that is no longer coded
# frees its memory.
_IDLE_ENCODES = 2


class _Workspace:
    """The arrays taken by the running encode, and those earlier encodes left."""

    def __init__(self) -> None:
        self._spare: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = {}
        self._taken: list[np.ndarray] = []
        self._encodes = 0
        self._last_taken: dict[tuple[tuple[int, ...], np.dtype], int] = {}

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (shape, dtype)
        spare = self._spare.get(key)
        array = spare.pop() if spare else np.empty(shape, dtype)
        self._taken.append(array)
        self._last_taken[key] = self._encodes
        return array

    def recycle(self) -> None:
        """Offer what this encode took to the next ones, with what they may still take."""
        for array in self._taken:
            self._spare.setdefault((array.shape, array.dtype), []).append(array)
        self._taken = []
        for key in [key for key, last in self._last_taken.items() if self._encodes - last >= _IDLE_ENCODES]:
            del self._spare[key], self._last_taken[key]
        self._encodes += 1


_active: ContextVar[_Workspace | None] = ContextVar("qpv_scratch_workspace", default=None)
_idle: list[_Workspace] = []  # as many as encodes ever ran at the same time


@contextmanager
def reusing_arrays() -> Iterator[None]:
    """Let :func:`empty` reuse, within this block, the arrays of earlier blocks (in a
    nested block: those of the outer one, which owns them)."""
    if _active.get() is not None:
        yield
        return
    workspace = _idle.pop() if _idle else _Workspace()
    token = _active.set(workspace)
    try:
        yield
    finally:
        _active.reset(token)
        workspace.recycle()
        _idle.append(workspace)


def empty(shape: int | tuple[int, ...], dtype: type | np.dtype = np.float64) -> np.ndarray:
    """An uninitialized array, as ``np.empty``: reused memory inside :func:`reusing_arrays`."""
    workspace = _active.get()
    if workspace is None:
        return np.empty(shape, dtype)
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    return workspace.empty(tuple(int(n) for n in dims), np.dtype(dtype))
