"""The spool: captured frames, their packets and how many were sent, on disk.

A reboot (or a crash, or a power cut) must lose no captured frame and resend no
packet already sent. Layout under the spool directory::

    next_frame_id              the next frame id to allocate (text), written before use
    frames/<id>/image.<ext>    the captured frame (moved in from the inbox, or .npy)
    frames/<id>/frame.json     {"frame_id", "captured_at", "origin"}: the frame is spooled
    frames/<id>/packets.bin    its framed packets (u32 length + bytes each), once encoded
    frames/<id>/sent           packets already written to the link (text), after each one
    rejected/<id>/             frames that cannot be coded (unreadable image, budget too small),
                               the newest MAX_REJECTED of them

Every file is written atomically (fsutil.write_atomically), so a reader after a
crash sees each file whole or not at all. ``sent`` is written after its packet
has been handed to the link: a crash between the two resends at most that one
packet (the ground drops the duplicate); writing it before would risk losing it.
Frame ids are allocated by persisting ``next_frame_id`` before the frame is
spooled, so an id is never reused after a crash.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import imageio
from ..fsutil import write_atomically

FRAME_META = "frame.json"
PACKETS = "packets.bin"
SENT = "sent"
IMAGE_STEM = "image"
NEXT_ID = "next_frame_id"
# Rejected frames kept for the operator; older ones are deleted, so that a budget too
# small for every frame cannot fill the disk.
MAX_REJECTED = 16
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class SpooledFrame:
    frame_id: int
    captured_at: float
    origin: str  # where the frame came from (inbox file name, "synthetic", "camera")
    directory: Path

    @property
    def image_path(self) -> Path:
        matches = sorted(self.directory.glob(f"{IMAGE_STEM}.*"))
        if not matches:
            raise FileNotFoundError(f"{self.directory}: no captured image")
        return matches[0]


def pack_records(records: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(r)) + r for r in records)


def unpack_records(data: bytes) -> list[bytes]:
    records, offset = [], 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise ValueError("packet file ends inside a length field")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise ValueError("packet file ends inside a packet")
        records.append(data[offset : offset + length])
        offset += length
    return records


class Spool:
    """Frames waiting for the link, kept so that a restart resumes where it stopped."""

    def __init__(self, root: Path, *, frame_id_limit: int) -> None:
        self.root = Path(root)
        self.frames_dir = self.root / "frames"
        self.rejected_dir = self.root / "rejected"
        self.frame_id_limit = frame_id_limit
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        self.rejected_dir.mkdir(exist_ok=True)

    # -- ids and capture -------------------------------------------------------

    def allocate_frame_id(self) -> int:
        """The next frame id (wrapping at the packet format's limit), persisted before use."""
        path = self.root / NEXT_ID
        try:
            frame_id = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            frame_id = self._first_free_id()
        write_atomically(path, f"{(frame_id + 1) % self.frame_id_limit}\n".encode())
        return frame_id % self.frame_id_limit

    def _first_free_id(self) -> int:
        """After a lost counter file: one past the highest id still spooled."""
        ids = [int(p.name) for p in self.frames_dir.iterdir() if p.name.isdigit()]
        return max(ids) + 1 if ids else 0

    def _new_entry(self, captured_at: float, origin: str, image_name: str, store_image) -> SpooledFrame:
        frame_id = self.allocate_frame_id()
        directory = self.frames_dir / f"{frame_id:010d}"
        directory.mkdir()
        store_image(directory / image_name)
        meta = {"frame_id": frame_id, "captured_at": captured_at, "origin": origin}
        write_atomically(directory / FRAME_META, json.dumps(meta).encode())
        return SpooledFrame(frame_id, captured_at, origin, directory)

    def add_array(self, image: np.ndarray, *, captured_at: float, origin: str) -> SpooledFrame:
        """Spool a captured frame held in memory (synthetic pattern, camera)."""
        buffer = io.BytesIO()
        np.save(buffer, image, allow_pickle=False)
        return self._new_entry(
            captured_at, origin, f"{IMAGE_STEM}.npy", lambda path: write_atomically(path, buffer.getvalue())
        )

    def add_file(self, source: Path, *, captured_at: float) -> SpooledFrame:
        """Move a finished image file out of the inbox into the spool (rename, or copy + delete)."""
        return self._new_entry(
            captured_at, source.name, f"{IMAGE_STEM}{source.suffix.lower()}", lambda path: _move(source, path)
        )

    # -- reading back ----------------------------------------------------------

    def recover(self) -> list[int]:
        """Make the spool consistent after a crash; returns the frame ids recovered.

        An entry whose image arrived but whose frame.json did not gets one (the
        capture time is the image's mtime); an entry without image is removed;
        temporary files of interrupted atomic writes are deleted.
        """
        recovered = []
        for directory in sorted(self.frames_dir.iterdir()):
            for leftover in directory.glob(".*.tmp"):
                leftover.unlink()
            if (directory / FRAME_META).exists():
                continue
            images = sorted(directory.glob(f"{IMAGE_STEM}.*"))
            if not images or not directory.name.isdigit():
                shutil.rmtree(directory)
                continue
            meta = {"frame_id": int(directory.name), "captured_at": images[0].stat().st_mtime, "origin": "recovered"}
            write_atomically(directory / FRAME_META, json.dumps(meta).encode())
            recovered.append(int(directory.name))
        return recovered

    def frames(self) -> list[SpooledFrame]:
        """Every spooled frame, in frame-id order."""
        entries = []
        for directory in sorted(self.frames_dir.iterdir()):
            meta_path = directory / FRAME_META
            if not meta_path.exists():
                continue
            meta = json.loads(meta_path.read_text())
            entries.append(SpooledFrame(int(meta["frame_id"]), float(meta["captured_at"]), meta["origin"], directory))
        return entries

    def get(self, frame_id: int) -> SpooledFrame:
        return next(f for f in self.frames() if f.frame_id == frame_id)

    def load_image(self, frame: SpooledFrame, *, gray: bool) -> np.ndarray:
        path = frame.image_path
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        return imageio.load_image(path, gray=gray)

    # -- packets and progress ----------------------------------------------------

    def store_packets(self, frame: SpooledFrame, framed_packets: list[bytes]) -> None:
        write_atomically(frame.directory / PACKETS, pack_records(framed_packets))

    def packets(self, frame: SpooledFrame) -> list[bytes] | None:
        """The frame's framed packets, or None when it has not been encoded yet."""
        try:
            return unpack_records((frame.directory / PACKETS).read_bytes())
        except FileNotFoundError:
            return None

    def sent_count(self, frame: SpooledFrame) -> int:
        try:
            return int((frame.directory / SENT).read_text().strip())
        except FileNotFoundError:
            return 0

    def mark_sent(self, frame: SpooledFrame, count: int) -> None:
        write_atomically(frame.directory / SENT, f"{count}\n".encode())

    # -- leaving the spool -------------------------------------------------------

    def remove(self, frame: SpooledFrame) -> None:
        """A frame fully sent (or dropped by policy) leaves the spool."""
        shutil.rmtree(frame.directory)

    def reject(self, frame: SpooledFrame, reason: str) -> Path:
        """Keep a frame that cannot be coded aside for the operator, with the reason."""
        target = self.rejected_dir / frame.directory.name
        if target.exists():
            shutil.rmtree(target)
        os.replace(frame.directory, target)
        write_atomically(target / "reason.txt", (reason + "\n").encode())
        kept = sorted(self.rejected_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[: max(0, len(kept) - MAX_REJECTED)]:
            shutil.rmtree(old)
        return target


def _move(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; across file systems copy atomically, then delete."""
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # inbox and spool on different file systems
            raise
        write_atomically(target, source.read_bytes())
        source.unlink()
