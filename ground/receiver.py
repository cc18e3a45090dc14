"""``qpv ground``: receive a link (or read a capture file) into the ground decoder.

    qpv ground --link file:IN.kiss --out DIR      decode a capture, then exit
    qpv ground --link /dev/ttyUSB0 --out DIR      run until SIGINT/SIGTERM

DIR gets ``<source>-<frame>.png`` and ``.json`` per frame, rewritten as packets
arrive (see ground/assembler.py). A serial link that fails (radio unplugged) is
reopened with backoff; what was decoded stays. A capture file that cannot be read
is an error (exit 2), since there is nothing to wait for.
"""

from __future__ import annotations

import argparse
import queue
import signal
import threading
import time
from pathlib import Path

from firmware_py.eventlog import EventLog
from firmware_py.link.framing import FRAMINGS
from firmware_py.link.transport import Backoff, Link, LinkError, file_path, open_link

from .assembler import GroundDecoder

POLL_SECONDS = 0.1  # granularity of waiting for a link to come back or a stop
_ENDED = object()  # queued by the reader thread when a capture file is exhausted


class Receiver:
    """Feeds what a link delivers into a :class:`GroundDecoder` until stopped or the capture ends.

    A reader thread drains the link while the main thread decodes: rendering a
    12-megapixel preview takes seconds, and a UART without flow control overflows its
    few-kilobyte kernel buffer long before that if nobody reads it.
    """

    def __init__(self, url: str, decoder: GroundDecoder, *, baud: int, log: EventLog, sleep=time.sleep) -> None:
        self.url = url
        self.decoder = decoder
        self.baud = baud
        self.log = log
        self.stop_requested = False
        self.is_capture = file_path(url) is not None
        self._sleep = sleep
        self._backoff = Backoff()

    def request_stop(self, *_signal_args: object) -> None:
        self.stop_requested = True

    def run(self) -> None:
        """Receive until SIGINT/SIGTERM (or :meth:`request_stop`), or the end of a capture file."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self.stop_requested:
                link = self._open()
                if link is None:
                    continue
                try:
                    outcome = self._receive(link)
                finally:
                    link.close()
                if isinstance(outcome, LinkError):
                    self._wait_after_failure(outcome)
                elif outcome is _ENDED:
                    break
        finally:
            self.decoder.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _receive(self, link: Link) -> object:
        """Decode what the reader thread queues; return _ENDED, a LinkError, or None on stop."""
        chunks: queue.Queue = queue.Queue()
        done = threading.Event()
        reader = threading.Thread(target=_read_link, args=(link, chunks, done), name="qpv-link-reader", daemon=True)
        reader.start()
        try:
            while not self.stop_requested:
                try:
                    item = chunks.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    self.decoder.flush()  # the link is quiet: show what has arrived
                    continue
                if not isinstance(item, bytes):
                    return item
                self.decoder.feed(item)
                self._backoff.reset()
            return None
        finally:
            done.set()
            reader.join()

    def _open(self) -> Link | None:
        try:
            link = open_link(self.url, baud=self.baud, pace=False, receive=True)
        except LinkError as exc:
            if self.is_capture:
                raise
            self._wait_after_failure(exc)
            return None
        self.log("link_up", link=self.url)
        return link

    def _wait_after_failure(self, exc: LinkError) -> None:
        delay = self._backoff.next_delay()
        self.log("link_down", level="error", link=self.url, error=str(exc), retry_in=delay)
        waited = 0.0
        while waited < delay and not self.stop_requested:
            self._sleep(POLL_SECONDS)
            waited += POLL_SECONDS


def _read_link(link: Link, chunks: queue.Queue, done: threading.Event) -> None:
    """Reader thread: queue every chunk the link delivers, then _ENDED or the LinkError."""
    try:
        while not done.is_set():
            data = link.read()
            if data:
                chunks.put(data)
            elif link.ended:
                chunks.put(_ENDED)
                return
    except LinkError as exc:
        chunks.put(exc)


def add_ground_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ground",
        help="decode a link or a capture file into PNG previews and JSON sidecars",
        description="Receive quick-preview packets and write DIR/<source>-<frame>.png and .json per frame.",
    )
    parser.add_argument("--link", required=True, help="file:CAPTURE, a serial device path or a pyserial URL")
    parser.add_argument("--out", type=Path, required=True, help="directory for the previews and sidecars")
    parser.add_argument("--baud", type=int, default=9600, help="UART baud rate (default %(default)s)")
    parser.add_argument("--framing", choices=FRAMINGS, default="kiss", help="byte framing (default %(default)s)")
    parser.set_defaults(func=run_ground)


def run_ground(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    log = EventLog()
    decoder = GroundDecoder(args.out, framing=args.framing, log=log)
    receiver = Receiver(args.link, decoder, baud=args.baud, log=log)
    receiver.run()
    print(f"{args.out}: {decoder.stats.summary()}")
    return 0
