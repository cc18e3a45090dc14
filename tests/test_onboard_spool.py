"""The spool on disk: ids never reused, frames survive restarts, crash leftovers repaired."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_py import imageio
from firmware_py.onboard.spool import FRAME_META, MAX_REJECTED, Spool, pack_records, unpack_records


def test_frame_ids_grow_across_restarts_and_wrap_at_the_limit(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=5)
    assert [spool.allocate_frame_id() for _ in range(3)] == [0, 1, 2]
    restarted = Spool(tmp_path, frame_id_limit=5)
    assert [restarted.allocate_frame_id() for _ in range(4)] == [3, 4, 0, 1]


def test_a_lost_counter_file_resumes_above_the_spooled_frames(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=1000)
    for _ in range(3):
        spool.add_array(np.zeros((8, 8), np.uint8), captured_at=1.0, origin="synthetic")
    (tmp_path / "next_frame_id").unlink()
    assert Spool(tmp_path, frame_id_limit=1000).allocate_frame_id() == 3


def test_arrays_and_files_are_spooled_and_read_back(tmp_path, gray_crop):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spool = Spool(tmp_path / "spool", frame_id_limit=1 << 16)
    first = spool.add_array(gray_crop, captured_at=10.0, origin="synthetic")
    png = inbox / "shot.PNG"
    imageio.save_image(png, gray_crop)
    second = spool.add_file(png, captured_at=11.0)
    assert not png.exists(), "the inbox file is moved into the spool, not copied"
    frames = Spool(tmp_path / "spool", frame_id_limit=1 << 16).frames()
    assert [(f.frame_id, f.origin, f.captured_at) for f in frames] == [(0, "synthetic", 10.0), (1, "shot.PNG", 11.0)]
    assert np.array_equal(spool.load_image(first, gray=False), gray_crop)
    assert np.array_equal(spool.load_image(second, gray=False), gray_crop)


def test_packets_and_sent_count_persist(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=100)
    frame = spool.add_array(np.zeros((8, 8), np.uint8), captured_at=1.0, origin="synthetic")
    assert spool.packets(frame) is None and spool.sent_count(frame) == 0
    packets = [b"\xc0\x00one\xc0", b"\xc0\x00two\xc0", b""]
    spool.store_packets(frame, packets)
    spool.mark_sent(frame, 2)
    again = Spool(tmp_path, frame_id_limit=100)
    reloaded = again.get(frame.frame_id)
    assert again.packets(reloaded) == packets
    assert again.sent_count(reloaded) == 2
    spool.remove(reloaded)
    assert again.frames() == []


def test_recover_repairs_what_a_crash_can_leave(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=100)
    kept = spool.add_array(np.zeros((8, 8), np.uint8), captured_at=1.0, origin="synthetic")
    # Crash after the image was moved in but before frame.json was written:
    half = spool.add_array(np.ones((8, 8), np.uint8), captured_at=2.0, origin="synthetic")
    (half.directory / FRAME_META).unlink()
    # Crash right after the directory was made: nothing captured yet.
    (spool.frames_dir / "0000000077").mkdir()
    # An interrupted atomic write leaves a hidden temporary file.
    (kept.directory / ".sent.abc.tmp").write_bytes(b"3")
    assert [f.frame_id for f in spool.frames()] == [kept.frame_id]
    assert spool.recover() == [half.frame_id]
    frames = spool.frames()
    assert [f.frame_id for f in frames] == [kept.frame_id, half.frame_id]
    assert np.array_equal(spool.load_image(frames[1], gray=False), np.ones((8, 8), np.uint8))
    assert not (spool.frames_dir / "0000000077").exists()
    assert not list(kept.directory.glob(".*.tmp"))


def test_rejected_frames_are_kept_aside_with_the_reason(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=100)
    frame = spool.add_array(np.zeros((8, 8), np.uint8), captured_at=1.0, origin="synthetic")
    target = spool.reject(frame, "budget too small")
    assert spool.frames() == []
    assert (target / "reason.txt").read_text() == "budget too small\n"
    assert json.loads((target / FRAME_META).read_text())["frame_id"] == frame.frame_id


def test_only_the_newest_rejected_frames_are_kept(tmp_path):
    spool = Spool(tmp_path, frame_id_limit=1000)
    for _ in range(MAX_REJECTED + 3):
        spool.reject(spool.add_array(np.zeros((8, 8), np.uint8), captured_at=1.0, origin="synthetic"), "too big")
    kept = sorted(int(p.name) for p in spool.rejected_dir.iterdir())
    assert kept == list(range(3, MAX_REJECTED + 3))


def test_packet_records_round_trip_and_truncation_is_detected():
    records = [b"", b"\x00" * 300, bytes(range(256))]
    data = pack_records(records)
    assert unpack_records(data) == records
    for cut in (1, 5, len(data) - 1):
        with pytest.raises(ValueError):
            unpack_records(data[:cut])
