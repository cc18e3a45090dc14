"""The ground decoder: raw link bytes in, a PNG preview and a JSON sidecar per frame out.

``GroundDecoder.feed`` takes whatever the link delivers. It deframes (KISS or COBS),
checks every packet's CRC-32C, and reassembles packets by (source, frame id), in any
order, interleaved with other frames, duplicated or missing. A packet that fails any
check is dropped and counted, never decoded: no pixel comes from bad data.

A frame is shown as soon as it can be (its descriptor and one slice have arrived) and
re-rendered as more packets arrive, at most every ``render_interval`` seconds (a
12-megapixel frame takes a while to render) and at once when it is complete. Lost
blocks are concealed by interpolation (``ground.conceal``) and listed in the sidecar.
A frame is finished when it is complete, when no packet of it has arrived for
``frame_timeout`` seconds, when more than ``max_open_frames`` frames are open (the
least recently fed goes), or on ``close()``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_py.codec import color, encoder
from firmware_py.codec.blocking import BLOCK_PIXELS, block_grid
from firmware_py.codec.errors import ModelError
from firmware_py.codec.levels import synthesise_blocks
from firmware_py.link import framing as framing_module
from firmware_py.link import packets as packet_format
from firmware_py.link.packets import CorruptPacketError, FrameDescriptor, Packet

from . import conceal
from .output import FrameRecord, frame_stem, lost_regions, write_frame

# Keys of finished frames remembered, so that late or repeated packets of a frame
# already written do not start a new, nearly empty frame over its files.
FINISHED_MEMORY = 4096


@dataclass
class GroundStats:
    """Counters over everything the decoder has been fed; they only grow."""

    bytes_in: int = 0
    packets: int = 0  # intact packets used (first copy of each)
    corrupt: int = 0  # dropped: framing, CRC, header or payload invalid
    duplicate: int = 0  # intact copies of packets already used
    late: int = 0  # intact packets of frames already finished
    undecodable: int = 0  # intact packets of frames whose models this station lacks
    frames: int = 0  # frames started
    writes: int = 0  # preview/sidecar writes

    def summary(self) -> str:
        return (
            f"{self.frames} frames, {self.packets} packets used, {self.corrupt} corrupt, "
            f"{self.duplicate} duplicate, {self.late} late, {self.undecodable} undecodable, "
            f"{self.writes} writes, {self.bytes_in} bytes in"
        )


class PlaneState:
    """Decoded levels of one plane's blocks (raster order) and which have arrived."""

    def __init__(self, blocks: int, max_latents: int) -> None:
        self.classes = np.zeros(blocks, dtype=np.uint8)
        self.symbols = np.zeros((blocks, max_latents), dtype=np.int32)
        self.received = np.zeros(blocks, dtype=bool)


class FrameAssembly:
    """One frame being put together from its packets."""

    def __init__(self, source: str, frame_id: int, now: float) -> None:
        self.record = FrameRecord(source, frame_id, now, now)
        self.descriptor: FrameDescriptor | None = None
        self.profile = None
        self.planes: list[PlaneState] = []
        self.pending: list[Packet] = []  # intact packets waiting for the descriptor
        self.error: str | None = None
        self.dirty = False
        self.last_render: float | None = None

    @property
    def stem(self) -> str:
        return frame_stem(self.record.source, self.record.frame_id)

    @property
    def complete(self) -> bool:
        return self.descriptor is not None and self.record.received == self.descriptor.packet_count

    def set_descriptor(self, descriptor: FrameDescriptor) -> None:
        self.descriptor = descriptor
        try:
            self.profile = packet_format.packet_profile(descriptor.profile_id, descriptor.fingerprint)
        except ModelError as exc:
            self.error = str(exc)
            return
        latents = max(m.latents for m in self.profile.models)
        self.planes = [PlaneState(n, latents) for n in descriptor.plane_blocks()]

    def decode(self, packet: Packet) -> None:
        """Put a packet's blocks in place (raises CorruptPacketError for a bad slice)."""
        decoded = packet_format.decode_slice(packet, self.descriptor)
        for index, plane in enumerate(self.planes):
            mine = decoded.planes == index
            blocks = decoded.blocks[mine]
            plane.classes[blocks] = decoded.classes[mine]
            plane.symbols[blocks] = decoded.symbols[mine]
            plane.received[blocks] = True
        self.dirty = True

    @property
    def showable(self) -> bool:
        """Whether there is anything to draw: models known and at least one slice decoded."""
        return self.error is None and any(plane.received.any() for plane in self.planes)

    def render(self) -> tuple[np.ndarray, list[dict], float]:
        """(image, lost regions, fraction of blocks concealed) from what has arrived."""
        descriptor, profile = self.descriptor, self.profile
        steps = encoder.stream_steps(profile, descriptor.quality)
        planes, missing = [], []
        for state, (height, width) in zip(self.planes, descriptor.plane_shapes()):
            rows, cols = block_grid(height, width)
            blocks = np.zeros((rows * cols, BLOCK_PIXELS))
            known = state.received
            blocks[known] = synthesise_blocks(state.classes[known], state.symbols[known], profile, steps)
            tiled = conceal.conceal(conceal.tile_blocks(blocks, rows, cols), known.reshape(rows, cols))
            planes.append(tiled[:height, :width])
            missing.append(~known.reshape(rows, cols))
        image = color.planes_to_image(planes, descriptor.height, descriptor.width)
        total = sum(m.size for m in missing)
        fraction = sum(int(m.sum()) for m in missing) / total
        return image, lost_regions(missing, descriptor.width, descriptor.height), fraction


class GroundDecoder:
    """Reassembles and writes frames from raw link bytes; see the module docstring."""

    def __init__(
        self,
        out_dir: Path,
        *,
        framing: str = "kiss",
        render_interval: float = 1.0,
        frame_timeout: float = 120.0,
        max_open_frames: int = 8,
        clock=time.time,
        log=None,
    ) -> None:
        self.out_dir = Path(out_dir)
        if not self.out_dir.is_dir():
            raise NotADirectoryError(f"{self.out_dir}: output directory does not exist")
        if max_open_frames < 1:
            raise ValueError("max_open_frames must be at least 1")
        self.deframer = framing_module.Deframer(framing)
        self.render_interval = render_interval
        self.frame_timeout = frame_timeout
        self.max_open_frames = max_open_frames
        self.clock = clock
        self.log = log
        self.stats = GroundStats()
        self.open: OrderedDict[tuple[str, int], FrameAssembly] = OrderedDict()
        self.finished: OrderedDict[tuple[str, int], None] = OrderedDict()

    def feed(self, data: bytes) -> None:
        """Take raw link bytes (any chunking); write previews that are due."""
        self.stats.bytes_in += len(data)
        for frame in self.deframer.feed(data):
            self.feed_packet(frame)
        self._write_due()

    def feed_packet(self, data: bytes) -> None:
        """Take one deframed packet; invalid ones are counted and dropped."""
        now = self.clock()
        try:
            packet = packet_format.parse_packet(data)
        except CorruptPacketError:
            self._count_corrupt(packet_format.peek_frame_key(data))
            return
        key = (packet.header.source, packet.header.frame_id)
        if key in self.finished:
            self.stats.late += 1
            return
        assembly = self.open.get(key)
        descriptor = packet.header.descriptor
        if assembly is not None and descriptor and assembly.descriptor and descriptor != assembly.descriptor:
            # The sender reused a frame id for another encoding: that is a new frame.
            self._finish(key, remember=False)
            assembly = None
        if assembly is None:
            assembly = self._start(key, now)
        self.open.move_to_end(key)
        self._add(assembly, packet, len(data), now)

    def flush(self) -> None:
        """Write every frame that has news now, whatever the render interval."""
        for assembly in list(self.open.values()):
            if assembly.dirty:
                self._write(assembly)

    def close(self) -> None:
        """Finish and write every open frame."""
        for key in list(self.open):
            self._finish(key)

    def _count_corrupt(self, claimed: tuple[str, int] | None) -> None:
        self.stats.corrupt += 1
        if claimed in self.open:
            self.open[claimed].record.corrupt += 1

    def _start(self, key: tuple[str, int], now: float) -> FrameAssembly:
        while len(self.open) >= self.max_open_frames:
            self._finish(next(iter(self.open)))
        assembly = FrameAssembly(*key, now)
        self.open[key] = assembly
        self.stats.frames += 1
        return assembly

    def _add(self, assembly: FrameAssembly, packet: Packet, size: int, now: float) -> None:
        index = packet.header.index
        if index in assembly.record.indices:
            assembly.record.duplicate += 1
            self.stats.duplicate += 1
            return
        record = assembly.record
        record.indices.add(index)
        record.bytes += size
        record.last_packet = now
        self.stats.packets += 1
        if assembly.descriptor is None and packet.header.descriptor is not None:
            assembly.set_descriptor(packet.header.descriptor)
            waiting, assembly.pending = assembly.pending, []
            for earlier in waiting:
                self._decode(assembly, earlier)
        if assembly.descriptor is None:
            assembly.pending.append(packet)
        else:
            self._decode(assembly, packet)

    def _decode(self, assembly: FrameAssembly, packet: Packet) -> None:
        if assembly.error is not None:
            self.stats.undecodable += 1
            return
        try:
            assembly.decode(packet)
        except CorruptPacketError:
            # Intact CRC, impossible content: drop it like a damaged packet.
            assembly.record.indices.discard(packet.header.index)
            self.stats.packets -= 1
            self._count_corrupt((assembly.record.source, assembly.record.frame_id))

    def _write_due(self) -> None:
        now = self.clock()
        for key, assembly in list(self.open.items()):
            if assembly.complete:
                self._finish(key)
            elif now - assembly.record.last_packet > self.frame_timeout:
                self._finish(key)
            elif assembly.dirty and (assembly.last_render is None or now - assembly.last_render >= self.render_interval):
                self._write(assembly)

    def _write(self, assembly: FrameAssembly) -> None:
        record = assembly.record
        if not assembly.showable:
            error = assembly.error or ("no frame descriptor received" if assembly.descriptor is None else "no slice decoded")
            profile = assembly.profile.name if assembly.profile else None
            write_frame(self.out_dir, assembly.stem, None, record.to_json(assembly.descriptor, profile, error=error))
            if error and self.log:
                self.log("frame_undecodable", level="warning", source=record.source, frame_id=record.frame_id, error=error)
            self.stats.writes += 1
            return
        image, regions, fraction = assembly.render()
        sidecar = write_frame(
            self.out_dir, assembly.stem, image, record.to_json(assembly.descriptor, assembly.profile.name, regions, fraction)
        )
        assembly.dirty = False
        assembly.last_render = self.clock()
        self.stats.writes += 1
        if self.log:
            self.log(
                "frame_written", path=str(sidecar.with_suffix(".png")), source=record.source, frame_id=record.frame_id,
                received=record.received, expected=assembly.descriptor.packet_count,
            )

    def _finish(self, key: tuple[str, int], *, remember: bool = True) -> None:
        assembly = self.open.pop(key)
        if assembly.dirty or assembly.last_render is None:
            self._write(assembly)
        if remember:
            self.finished[key] = None
            while len(self.finished) > FINISHED_MEMORY:
                self.finished.popitem(last=False)
