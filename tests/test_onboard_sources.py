"""Frame sources: only finished files are taken from the inbox; the test pattern moves."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from firmware_py.onboard.config import SourceConfig
from firmware_py.onboard.sources import (
    DirectorySource,
    IntervalSource,
    SourceError,
    camera_source,
    is_candidate,
    make_source,
    moving_pattern,
)


def names(captures) -> list[str]:
    return [c.origin for c in captures]


def test_a_file_is_taken_only_after_it_has_stopped_changing(tmp_path):
    source = DirectorySource(tmp_path, settle_seconds=1.0)
    shot = tmp_path / "a.png"
    shot.write_bytes(b"first half")
    assert source.poll(0.0) == []
    assert source.poll(0.6) == []
    with shot.open("ab") as handle:  # the camera is still writing
        handle.write(b" second half")
    assert source.poll(1.2) == [], "a changed size restarts the settle time"
    assert source.poll(2.0) == []
    captures = source.poll(2.3)
    assert names(captures) == ["a.png"]
    assert captures[0].path == shot
    assert captures[0].captured_at == pytest.approx(shot.stat().st_mtime)


def test_rename_into_place_is_taken_at_once_and_partial_names_never(tmp_path):
    source = DirectorySource(tmp_path, settle_seconds=0.0)
    for partial in (".b.png", "b.png.tmp", "b.png.part", "b.png~", "notes.txt", "empty.png"):
        (tmp_path / partial).write_bytes(b"" if partial == "empty.png" else b"x")
    (tmp_path / "sub.png").mkdir()
    assert source.poll(0.0) == []
    os.replace(tmp_path / "b.png.tmp", tmp_path / "b.png")
    assert names(source.poll(0.1)) == ["b.png"]


def test_files_come_in_mtime_order(tmp_path):
    for index, name in enumerate(["z.png", "a.jpg", "m.PNG"]):
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (1000 + index, 1000 + index))
    assert names(DirectorySource(tmp_path, settle_seconds=0).poll(5.0)) == ["z.png", "a.jpg", "m.PNG"]


def test_candidate_names():
    assert is_candidate("frame_0001.jpg") and is_candidate("IMG.JPEG") and is_candidate("x.npy") is False
    assert not is_candidate(".hidden.png") and not is_candidate("x.png.part")


def test_missing_watch_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        make_source(SourceConfig(kind="directory", path=tmp_path / "absent"), interval=1.0)


def test_interval_source_captures_on_schedule_and_skips_missed_slots():
    grabbed = []
    source = IntervalSource(1.0, "synthetic", lambda i: grabbed.append(i) or np.zeros((8, 8), np.uint8))
    assert len(source.poll(10.0)) == 1
    assert source.poll(10.5) == []
    assert len(source.poll(11.0)) == 1
    assert len(source.poll(14.7)) == 1, "a late poll yields one frame, not a burst of stale ones"
    assert source.poll(14.9) == []
    assert len(source.poll(15.0)) == 1
    assert grabbed == [0, 1, 2, 3]


def test_synthetic_source_draws_a_moving_pattern():
    source = make_source(SourceConfig(kind="synthetic", width=96, height=64), interval=1.0)
    first, second = source.poll(0.0)[0].image, source.poll(1.0)[0].image
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    assert not np.array_equal(first, second)
    assert np.array_equal(first, moving_pattern(0, 64, 96))
    gray = moving_pattern(3, 64, 96, gray=True)
    assert gray.shape == (64, 96) and gray.dtype == np.uint8
    assert 20 < gray.std(), "the pattern has contrast to code"


def test_camera_without_picamera2_or_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import of either now fails
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(SourceError, match="picamera2.*OpenCV"):
        camera_source(SourceConfig(kind="camera"), interval=1.0)
