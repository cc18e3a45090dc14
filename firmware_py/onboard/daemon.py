"""The onboard daemon: capture, spool, pick a frame, encode it to its budget, pace it out.

One loop, one unit of work per :meth:`Daemon.step`: poll the source (new frames
go to the spool at once), let the queue policy drop stale frames and pick the
next one, encode it if it has no packets yet, then write one packet and record
it as sent. Working a packet at a time keeps the source polled while a long
frame goes out, and makes every stop point a packet boundary:

- SIGTERM / SIGINT set a flag; the packet on the wire is finished, the spool is
  already up to date, the link is drained and closed, exit status 0.
- A failed link (unplugged, stalled radio) is closed and reopened with backoff;
  capture continues meanwhile and the interrupted packet is sent again whole.
- A crash or power cut resumes from the spool (see spool.py for the guarantees).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from ..codec import packet_tables
from ..codec.errors import ImageError, RateControlError
from ..link.framing import frame as frame_packet
from ..link.packets import FRAME_ID_LIMIT, PACKET_PROFILE, encode_frame_packets
from ..link.transport import Backoff, Link, LinkError, bytes_per_second, open_link
from ..eventlog import EventLog
from .config import OnboardConfig
from .policy import Pending, decide
from .sources import Capture, Source, SourceError, make_source
from .spool import Spool, SpooledFrame

IDLE_SECONDS = 0.2  # pause when there is nothing to send: how fast a new frame or a stop is noticed


def frame_budget(config: OnboardConfig) -> int | None:
    """Wire bytes one frame may take: the link's bytes per frame interval times the
    utilization share (or the fixed ``max_bytes``; None when a fixed quality is set)."""
    frames = config.frames
    if frames.quality is not None:
        return None
    if frames.max_bytes is not None:
        return frames.max_bytes
    return int(bytes_per_second(config.link.line_baud) * frames.interval * frames.utilization)


class Daemon:
    def __init__(
        self,
        config: OnboardConfig,
        *,
        log: EventLog,
        source: Source | None = None,
        open_link_fn: Callable[..., Link] = open_link,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.log = log
        # Missing or mismatched packet models fail here, at start, not at the first frame.
        packet_tables.load_statistics(config.frames.profile or PACKET_PROFILE)
        self.budget = frame_budget(config)
        self.spool = Spool(config.spool, frame_id_limit=FRAME_ID_LIMIT)
        recovered = self.spool.recover()
        if recovered:
            log("spool_recovered", frame_ids=recovered)
        self.source = source if source is not None else make_source(config.source, config.frames.interval)
        self.stop_requested = False
        self._open_link = open_link_fn
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._link: Link | None = None
        self._link_retry_at = 0.0
        self._backoff = Backoff()

    # -- the loop ------------------------------------------------------------------

    def request_stop(self, *_signal_args: object) -> None:
        self.stop_requested = True

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit status."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        link = self.config.link
        self.log(
            "started",
            station=self.config.station,
            link=link.url,
            baud=link.baud,
            pace_baud=link.line_baud,
            packet_size=link.packet_size,
            framing=link.framing,
            budget_bytes=self.budget,
            policy=self.config.queue.policy,
            spool=str(self.config.spool),
            pending=len(self.spool.frames()),
        )
        try:
            while not self.stop_requested:
                if not self.step():
                    self._sleep(IDLE_SECONDS)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def step(self) -> bool:
        """One unit of work; True when a packet went out (the caller may go on at once)."""
        now = self._clock()
        self._capture(now)
        frame = self._next_frame()
        if frame is None:
            return False
        packets = self._packets_for(frame)
        if packets is None:
            return False
        sent = self.spool.sent_count(frame)
        if sent >= len(packets):  # crashed between the last packet and the removal
            self._finish(frame, packets)
            return False
        link = self._ensure_link(now)
        if link is None:
            return False
        try:
            link.write(packets[sent])
        except LinkError as exc:
            self._link_failed(exc, now)
            return False
        self._backoff.reset()
        self.spool.mark_sent(frame, sent + 1)
        if sent + 1 == len(packets):
            self._finish(frame, packets)
        return True

    def shutdown(self) -> None:
        """Drain and close the link and the source; the spool is already up to date."""
        if self._link is not None:
            try:
                self._link.drain()
            except LinkError as exc:
                self.log("link_down", level="warning", link=self.config.link.url, error=str(exc))
            self._link.close()
            self._link = None
        self.source.close()
        self.log("stopped", pending=len(self.spool.frames()))

    # -- capture and choice ------------------------------------------------------

    def _capture(self, now: float) -> None:
        try:
            captures = self.source.poll(now)
        except SourceError as exc:
            self.log("source_error", level="error", error=str(exc))
            return
        for capture in captures:
            self._spool_capture(capture)

    def _spool_capture(self, capture: Capture) -> None:
        try:
            if capture.path is not None:
                frame = self.spool.add_file(capture.path, captured_at=capture.captured_at)
            else:
                frame = self.spool.add_array(capture.image, captured_at=capture.captured_at, origin=capture.origin)
        except FileNotFoundError:
            return  # the file went away between poll and move: nothing was captured
        self.log("frame_captured", frame_id=frame.frame_id, origin=frame.origin)

    def _next_frame(self) -> SpooledFrame | None:
        frames = {f.frame_id: f for f in self.spool.frames()}
        pending = [Pending(f.frame_id, f.captured_at, self.spool.sent_count(f) > 0) for f in frames.values()]
        decision = decide(pending, self.config.queue, self._wall_clock())
        for frame_id, reason in decision.drop:
            self.spool.remove(frames[frame_id])
            self.log("frame_dropped", frame_id=frame_id, reason=reason)
        return None if decision.send is None else frames[decision.send]

    # -- encoding ------------------------------------------------------------------

    def _packets_for(self, frame: SpooledFrame) -> list[bytes] | None:
        """The frame's framed packets, encoding them on first use; None if it was rejected."""
        packets = self.spool.packets(frame)
        if packets is not None:
            return packets
        link, frames = self.config.link, self.config.frames
        started = self._clock()
        try:
            image = self.spool.load_image(frame, gray=self.config.source.gray)
            raw = encode_frame_packets(
                image,
                source=self.config.station,
                frame_id=frame.frame_id,
                packet_size=link.packet_size,
                max_wire_bytes=self.budget,
                quality=frames.quality,
                profile=frames.profile,
                framing=link.framing,
            )
        except (ImageError, RateControlError, ValueError) as exc:
            target = self.spool.reject(frame, str(exc))
            self.log("frame_rejected", level="error", frame_id=frame.frame_id, reason=str(exc), kept=str(target))
            return None
        packets = [frame_packet(p, link.framing) for p in raw]
        self.spool.store_packets(frame, packets)
        wire = sum(map(len, packets))
        self.log(
            "frame_encoded",
            frame_id=frame.frame_id,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            packets=len(packets),
            wire_bytes=wire,
            budget_bytes=self.budget,
            bpp=round(wire * 8 / (image.shape[0] * image.shape[1]), 4),
            encode_seconds=round(self._clock() - started, 3),
        )
        return packets

    def _finish(self, frame: SpooledFrame, packets: list[bytes]) -> None:
        self.spool.remove(frame)
        self.log("frame_sent", frame_id=frame.frame_id, packets=len(packets), wire_bytes=sum(map(len, packets)))

    # -- the link ------------------------------------------------------------------

    def _ensure_link(self, now: float) -> Link | None:
        if self._link is not None:
            return self._link
        if now < self._link_retry_at:
            return None
        link = self.config.link
        try:
            self._link = self._open_link(
                link.url, baud=link.baud, pace_baud=link.pace_baud, write_timeout=link.write_timeout
            )
        except LinkError as exc:
            self._link_failed(exc, now)
            return None
        self.log("link_up", link=link.url)
        return self._link

    def _link_failed(self, exc: LinkError, now: float) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        delay = self._backoff.next_delay()
        self._link_retry_at = now + delay
        self.log("link_down", level="error", link=self.config.link.url, error=str(exc), retry_in=delay)
