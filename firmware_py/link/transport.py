"""Byte links between the onboard daemon and the ground decoder, named by URL.

Any URL pyserial's ``serial_for_url`` takes is a link: a serial device path
(``/dev/ttyUSB0``, ``/dev/serial0``, a pty slave ``/dev/pts/N``), ``loop://``,
``socket://host:port``, ``rfc2217://host:port`` and the other pyserial handlers.
``file:PATH`` is a capture file: the onboard side appends the byte stream to it, the
ground side reads it to its end.

Writes are paced to the line rate of a UART at the configured baud rate (10 bits
per byte: start, 8 data, stop). A radio modem without flow control silently drops
what overflows its buffer, so the daemon must never hand it bytes faster than the
air can carry them; pacing holds the backlog to one small burst.

Every failure of the link itself (cannot open, unplugged, peer closed, write
stalled) is a :class:`LinkError`, so the daemon can back off and reopen instead of
crashing.
"""

from __future__ import annotations

import fcntl
import struct
import termios
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import serial

from ..codec.errors import QpvError

UART_BITS_PER_BYTE = 10  # start bit + 8 data bits + stop bit
FILE_SCHEME = "file:"
# Bytes handed to the OS at once: small enough that a radio's buffer (typically
# 256 bytes or more) never overflows, large enough to keep system calls few.
DEFAULT_BURST = 64
DEFAULT_READ_TIMEOUT = 0.1
DEFAULT_WRITE_TIMEOUT = 5.0
READ_SIZE = 4096


class LinkError(QpvError):
    """The link cannot be opened or has failed (unplugged, closed by the peer, stalled)."""


def bytes_per_second(baud: int) -> float:
    """Payload bytes per second a UART at ``baud`` carries."""
    return baud / UART_BITS_PER_BYTE


def wire_seconds(nbytes: int, baud: int) -> float:
    """Time ``nbytes`` occupy a UART line at ``baud``."""
    return nbytes / bytes_per_second(baud)


class Pacer:
    """Hands bytes to a writer no faster than a UART at ``baud`` sends them.

    ``ready_at`` is when the bytes written so far will have left the wire; each
    burst waits for it, then pushes it on by the burst's wire time. The clock and
    the sleep are parameters so the arithmetic is testable without waiting.
    """

    def __init__(
        self,
        baud: int,
        *,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be positive, got {baud}")
        if burst <= 0:
            raise ValueError(f"burst must be positive, got {burst}")
        self.baud = baud
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self.ready_at = clock()

    def send(self, data: bytes, write: Callable[[bytes], None]) -> None:
        for start in range(0, len(data), self.burst):
            chunk = data[start : start + self.burst]
            delay = self.ready_at - self._clock()
            if delay > 0:
                self._sleep(delay)
            # The line starts on the chunk when it is handed over; a write that blocks
            # (a full UART buffer) has been draining meanwhile and owes no extra wait.
            starts = max(self.ready_at, self._clock())
            write(chunk)
            self.ready_at = starts + wire_seconds(len(chunk), self.baud)

    def wait_until_sent(self) -> None:
        """Block until the bytes written so far would have left the wire."""
        delay = self.ready_at - self._clock()
        if delay > 0:
            self._sleep(delay)


class Link(ABC):
    """A byte link: ``write`` (paced), ``read``, ``drain``, ``close``; a context manager."""

    url: str
    ended: bool = False  # a finite source (capture file) has delivered its last byte

    def __init__(self, url: str, pacer: Pacer | None) -> None:
        self.url = url
        self._pacer = pacer

    @property
    def pace_baud(self) -> int | None:
        """The rate writes are paced to (None: unpaced)."""
        return None if self._pacer is None else self._pacer.baud

    def write(self, data: bytes) -> None:
        """Send ``data``, paced to the line rate; raises LinkError if the link fails."""
        if self._pacer is None:
            self._write_now(data)
        else:
            self._pacer.send(data, self._write_now)

    def drain(self) -> None:
        """Block until everything written has left (the last packet is on the wire)."""
        if self._pacer is not None:
            self._pacer.wait_until_sent()

    @abstractmethod
    def read(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes; b"" when nothing arrived within the read timeout."""

    @abstractmethod
    def _write_now(self, data: bytes) -> None:
        """Hand ``data`` to the OS at once."""

    @abstractmethod
    def close(self) -> None:
        """Release the port or file; safe on a link that has failed."""

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SerialLink(Link):
    """A pyserial port: device path or any ``serial_for_url`` URL."""

    def __init__(self, url: str, baud: int, pacer: Pacer | None, read_timeout: float, write_timeout: float) -> None:
        super().__init__(url, pacer)
        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=read_timeout, write_timeout=write_timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkError(f"{url}: cannot open link ({exc})") from None

    def _write_now(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except serial.SerialTimeoutException:
            raise LinkError(
                f"{self.url}: write stalled for {self._port.write_timeout} s (radio not accepting data?)"
            ) from None
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.url}: write failed ({exc})") from None

    def drain(self) -> None:
        super().drain()
        try:
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.url}: drain failed ({exc})") from None

    def read(self, size: int = READ_SIZE) -> bytes:
        """Wait up to the read timeout for one byte, then take exactly what has arrived.

        Never asking pyserial for more than is there matters: a read that runs into
        a hang-up raises and throws away the bytes it had already collected.
        """
        try:
            first = self._port.read(1)
            if not first:
                return b""
            waiting = min(self._bytes_waiting(), size - 1)
            return first + (self._port.read(waiting) if waiting > 0 else b"")
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.url}: read failed ({exc})") from None

    def _bytes_waiting(self) -> int:
        """Bytes readable now: FIONREAD on the descriptor (ttys and sockets), else pyserial's count."""
        try:
            fd = self._port.fileno()
        except (AttributeError, serial.SerialException, OSError):
            return self._port.in_waiting
        return struct.unpack("I", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass  # closing a dead port: nothing left to release or report


class FileLink(Link):
    """``file:PATH``: append the stream to a capture file, or read one to its end."""

    def __init__(self, url: str, path: Path, *, receive: bool, pacer: Pacer | None) -> None:
        super().__init__(url, pacer)
        try:
            self._file = open(path, "rb" if receive else "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LinkError(f"{url}: cannot open capture file ({exc.strerror or exc})") from None

    def _write_now(self, data: bytes) -> None:
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            raise LinkError(f"{self.url}: write failed ({exc.strerror or exc})") from None

    def read(self, size: int = READ_SIZE) -> bytes:
        try:
            data = self._file.read(size)
        except OSError as exc:
            raise LinkError(f"{self.url}: read failed ({exc.strerror or exc})") from None
        if not data:
            self.ended = True
        return data

    def close(self) -> None:
        self._file.close()


def file_path(url: str) -> Path | None:
    """The path of a ``file:`` URL (``file:out.kiss``, ``file:///tmp/out.kiss``), else None."""
    if not url.startswith(FILE_SCHEME):
        return None
    rest = url[len(FILE_SCHEME) :]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise LinkError(f"{url}: file: URL without a path")
    return Path(rest)


def open_link(
    url: str,
    *,
    baud: int,
    pace_baud: int | None = None,
    pace: bool = True,
    receive: bool = False,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
) -> Link:
    """Open the link ``url``; ``receive`` selects reading for ``file:`` capture files.

    ``baud`` configures a serial port. With ``pace``, writes are paced to
    ``pace_baud`` (the radio's air rate when it is below its UART's), else to
    ``baud``; capture files too, so a file written by the daemon has the link's timing.
    """
    for name, rate in (("baud", baud), ("pace_baud", pace_baud)):
        if rate is not None and rate <= 0:
            raise LinkError(f"{url}: {name} must be positive, got {rate}")
    pacer = Pacer(pace_baud or baud) if pace else None
    path = file_path(url)
    if path is not None:
        return FileLink(url, path, receive=receive, pacer=pacer)
    return SerialLink(url, baud, pacer, read_timeout, write_timeout)


class Backoff:
    """Delays between attempts to reopen a failed link: doubling from ``initial`` to ``maximum``."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """After a success: the next failure starts again from ``initial``."""
        self._next = self.initial
