"""Where the daemon's frames come from: a watched directory, a test pattern, a camera.

Watched directory (the usual set-up: the camera software writes files). Only
complete files are taken. Two conventions work, use either:

1. rename into place: write ``.name.png`` or ``name.png.tmp`` / ``name.png.part``
   (ignored), then rename it to ``name.png`` (rename is atomic on one file system);
2. write in place: the file is taken once its size and mtime have not changed for
   ``settle_seconds`` (set it above the longest pause of the writer).

Files are taken in mtime order and *moved* into the spool: the directory is an
inbox, and what is taken is gone from it (so a restart never takes a file twice).
Only image suffixes are considered (``IMAGE_SUFFIXES``); anything else stays.

The synthetic source draws a moving test pattern every ``interval`` seconds, for
bench runs and link tests without a camera. The camera source uses picamera2
(Raspberry Pi camera) or OpenCV (USB camera) when either is importable.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codec import color
from ..codec.errors import QpvError
from .config import SourceConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".webp")
PARTIAL_SUFFIXES = (".tmp", ".part", "~")


class SourceError(QpvError):
    """A frame source cannot start: missing directory, no camera library, no camera."""


@dataclass(frozen=True)
class Capture:
    """One captured frame: a finished file in the inbox, or pixels in memory."""

    captured_at: float  # wall-clock seconds
    origin: str
    path: Path | None = None
    image: np.ndarray | None = None


class Source(ABC):
    @abstractmethod
    def poll(self, now: float) -> list[Capture]:
        """Frames ready at monotonic time ``now`` (may be none); never blocks for long."""

    def close(self) -> None:
        """Release the device, if any."""


def is_candidate(name: str) -> bool:
    """Whether an inbox file name may be a finished image (not hidden, not partial)."""
    lower = name.lower()
    return not name.startswith(".") and not lower.endswith(PARTIAL_SUFFIXES) and lower.endswith(IMAGE_SUFFIXES)


class DirectorySource(Source):
    """Takes finished image files out of an inbox directory."""

    def __init__(self, path: Path, settle_seconds: float) -> None:
        if not Path(path).is_dir():
            raise SourceError(f"{path}: watched directory does not exist")
        self.path = Path(path)
        self.settle_seconds = settle_seconds
        self._first_seen: dict[str, tuple[tuple[int, int], float]] = {}

    def poll(self, now: float) -> list[Capture]:
        seen: dict[str, tuple[tuple[int, int], float]] = {}
        ready = []
        try:
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot list watched directory ({exc.strerror or exc})") from None
        for entry in entries:
            if not is_candidate(entry.name):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:
                continue  # renamed or deleted while we looked
            signature = (stat.st_size, stat.st_mtime_ns)
            previous = self._first_seen.get(entry.name)
            since = previous[1] if previous and previous[0] == signature else now
            seen[entry.name] = (signature, since)
            if stat.st_size > 0 and now - since >= self.settle_seconds:
                ready.append((stat.st_mtime_ns, entry.name, stat.st_mtime))
        self._first_seen = seen
        return [Capture(mtime, name, path=self.path / name) for _, name, mtime in sorted(ready)]


def moving_pattern(index: int, height: int, width: int, *, gray: bool = False) -> np.ndarray:
    """Frame ``index`` of a moving pattern: a drifting gradient, a disc and a checkerboard.

    Smooth areas, edges and fine detail in one frame, all moving, so a preview
    shows at a glance whether frames arrive, in order, and how the codec copes.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    shift = 6.0 * index
    gradient = 127.5 + 127.5 * np.sin(2 * np.pi * (x + y + shift) / (width + height))
    cx = width * (0.5 + 0.35 * np.sin(index / 7.0))
    cy = height * (0.5 + 0.35 * np.cos(index / 11.0))
    disc = (x - cx) ** 2 + (y - cy) ** 2 < (min(height, width) / 6) ** 2
    checker = ((x + shift) // 8 + y // 8) % 2 == 0
    patch = (x > width * 0.7) & (y > height * 0.7)
    red = np.where(disc, 240.0, gradient)
    green = np.where(patch, np.where(checker, 230.0, 25.0), 255.0 - gradient)
    blue = np.where(disc, 40.0, 0.5 * gradient + 60.0)
    rgb = np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)
    return luma(rgb) if gray else rgb


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB frame as uint8 (the Y the codec would code)."""
    return np.clip(np.rint(color.rgb_to_ycbcr(rgb)[..., 0]), 0, 255).astype(np.uint8)


class IntervalSource(Source):
    """Grabs a frame every ``interval`` seconds of the monotonic clock."""

    def __init__(self, interval: float, origin: str, grab: Callable[[int], np.ndarray], wall_clock=time.time) -> None:
        self.interval = interval
        self.origin = origin
        self._grab = grab
        self._wall_clock = wall_clock
        self._next_due: float | None = None
        self._count = 0

    def poll(self, now: float) -> list[Capture]:
        if self._next_due is not None and now < self._next_due:
            return []
        image = self._grab(self._count)
        self._count += 1
        # Skip missed slots rather than catching up with a burst of stale frames.
        due = now if self._next_due is None else self._next_due
        while due <= now:
            due += self.interval
        self._next_due = due
        return [Capture(self._wall_clock(), self.origin, image=image)]


def synthetic_source(config: SourceConfig, interval: float) -> IntervalSource:
    return IntervalSource(
        interval, "synthetic", lambda index: moving_pattern(index, config.height, config.width, gray=config.gray)
    )


def _to_rgb_or_gray(bgr: np.ndarray, gray: bool) -> np.ndarray:
    rgb = np.ascontiguousarray(bgr[..., 2::-1]).astype(np.uint8)
    return luma(rgb) if gray else rgb


def _picamera2_grabber(config: SourceConfig) -> Callable[[int], np.ndarray] | None:
    try:
        from picamera2 import Picamera2
    except ImportError:
        return None
    try:
        camera = Picamera2()
        # "RGB888" arrays are in B, G, R byte order (libcamera naming).
        size = (config.width, config.height)
        camera.configure(camera.create_still_configuration(main={"size": size, "format": "RGB888"}))
        camera.start()
    except Exception as exc:  # noqa: BLE001 - libcamera raises many types; all mean "no camera"
        raise SourceError(f"picamera2: cannot start the camera ({exc})") from None
    return lambda _index: _to_rgb_or_gray(camera.capture_array(), config.gray)


def _opencv_grabber(config: SourceConfig) -> Callable[[int], np.ndarray] | None:
    try:
        import cv2
    except ImportError:
        return None
    capture = cv2.VideoCapture(config.camera_index)
    if not capture.isOpened():
        raise SourceError(f"OpenCV: cannot open camera {config.camera_index}")
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)

    def grab(_index: int) -> np.ndarray:
        ok, frame = capture.read()
        if not ok:
            raise SourceError(f"OpenCV: camera {config.camera_index} returned no frame")
        return _to_rgb_or_gray(frame, config.gray)

    return grab


def camera_source(config: SourceConfig, interval: float) -> IntervalSource:
    grab = _picamera2_grabber(config) or _opencv_grabber(config)
    if grab is None:
        raise SourceError(
            "source kind 'camera' needs picamera2 (Raspberry Pi OS: apt install python3-picamera2) "
            "or OpenCV (pip install opencv-python-headless); neither is importable"
        )
    return IntervalSource(interval, "camera", grab)


def make_source(config: SourceConfig, interval: float) -> Source:
    """The source the configuration names; SourceError when it cannot start."""
    if config.kind == "directory":
        return DirectorySource(config.path, config.settle_seconds)
    if config.kind == "synthetic":
        return synthetic_source(config, interval)
    return camera_source(config, interval)
