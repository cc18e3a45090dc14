"""Links behind URLs: loop://, socket:// (127.0.0.1 only), file:, pty devices; pacing arithmetic."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from firmware_py.codec import QpvError
from firmware_py.link.transport import (
    Backoff,
    LinkError,
    Pacer,
    bytes_per_second,
    file_path,
    open_link,
    wire_seconds,
)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps (or a write takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def paced_writes(baud: int, data: bytes, burst: int, write_seconds: float = 0.0):
    clock = FakeClock()
    pacer = Pacer(baud, burst=burst, clock=clock, sleep=clock.sleep)
    start = clock.now
    writes: list[tuple[float, int]] = []

    def write(chunk: bytes) -> None:
        writes.append((clock.now - start, len(chunk)))
        clock.now += write_seconds

    pacer.send(data, write)
    pacer.wait_until_sent()
    return writes, clock.now - start


def test_uart_arithmetic_is_ten_bits_per_byte():
    assert bytes_per_second(9600) == 960
    assert wire_seconds(960, 9600) == pytest.approx(1.0)
    assert wire_seconds(256, 115200) == pytest.approx(256 * 10 / 115200)


def test_pacer_sends_at_the_line_rate_and_never_ahead_of_it():
    data = bytes(1000)
    writes, total = paced_writes(9600, data, burst=64)
    assert [n for _, n in writes] == [64] * 15 + [40]
    assert total == pytest.approx(wire_seconds(1000, 9600))
    sent = 0
    for at, n in writes:
        sent += n
        # Never more than one burst ahead of what the line has carried by then.
        assert sent <= bytes_per_second(9600) * at + 64 + 1e-9


def test_pacer_adds_no_delay_when_the_writer_is_already_slower_than_the_line():
    line_time = wire_seconds(64, 9600)
    writes, total = paced_writes(9600, bytes(640), burst=64, write_seconds=2 * line_time)
    assert total == pytest.approx(10 * 2 * line_time)
    gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:])]
    assert gaps == pytest.approx([2 * line_time] * 9)


def test_pacer_carries_its_schedule_across_calls():
    clock = FakeClock()
    pacer = Pacer(1000, burst=50, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(4):
        pacer.send(bytes(50), lambda chunk: None)
    pacer.wait_until_sent()
    assert clock.now - start == pytest.approx(4 * 50 * 10 / 1000)


@pytest.mark.parametrize("baud, burst", [(0, 64), (-9600, 64), (9600, 0)])
def test_pacer_rejects_nonsense_rates(baud, burst):
    with pytest.raises(ValueError):
        Pacer(baud, burst=burst)


def test_backoff_doubles_to_its_ceiling_and_resets():
    backoff = Backoff(1.0, 10.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_loop_url_echoes_what_is_written():
    with open_link("loop://", baud=115200) as link:
        link.write(b"\xc0hello\xc0")
        link.drain()
        assert link.read(64) == b"\xc0hello\xc0"
        assert link.read(64) == b""  # nothing more: an empty read after the timeout


def test_unknown_url_scheme_and_missing_device_are_link_errors():
    with pytest.raises(LinkError, match="nosuch://x"):
        open_link("nosuch://x", baud=9600)
    with pytest.raises(LinkError, match="/dev/ttyQPVNOPE0"):
        open_link("/dev/ttyQPVNOPE0", baud=9600)
    assert issubclass(LinkError, QpvError)


def test_bad_baud_is_a_link_error():
    with pytest.raises(LinkError, match="baud"):
        open_link("loop://", baud=0)


@pytest.fixture
def tcp_server():
    """A one-connection TCP server on 127.0.0.1 (never another interface)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted, thread
    for conn in accepted:
        conn.close()
    server.close()


def test_socket_url_carries_bytes_both_ways_and_reports_a_closed_peer(tcp_server):
    port, accepted, thread = tcp_server
    with open_link(f"socket://127.0.0.1:{port}", baud=115200) as link:
        thread.join(5)
        peer = accepted[0]
        link.write(b"packet bytes")
        peer.settimeout(5)
        received = b""
        while len(received) < 12:
            received += peer.recv(64)
        assert received == b"packet bytes"
        peer.sendall(b"from the ground")
        got = b""
        for _ in range(50):
            got += link.read(64)
            if len(got) >= 15:
                break
        assert got == b"from the ground"
        peer.close()
        with pytest.raises(LinkError, match="disconnected"):
            for _ in range(50):
                link.read(64)


def test_bytes_that_arrived_before_a_hangup_are_all_delivered(tcp_server):
    """pyserial drops what a read had collected when it runs into the hang-up; the link must not ask it to."""
    port, accepted, thread = tcp_server
    payload = bytes(range(256)) * 40
    with open_link(f"socket://127.0.0.1:{port}", baud=115200) as link:
        thread.join(5)
        accepted[0].sendall(payload)
        accepted[0].close()
        received = b""
        with pytest.raises(LinkError, match="disconnected"):
            for _ in range(100):
                received += link.read(65536)
        assert received == payload


def test_socket_url_without_listener_is_a_link_error():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    with pytest.raises(LinkError, match="cannot open"):
        open_link(f"socket://127.0.0.1:{port}", baud=9600)


def test_file_link_appends_then_reads_back_to_its_end(tmp_path):
    capture = tmp_path / "out.kiss"
    for chunk in (b"first", b"second"):
        with open_link(f"file:{capture}", baud=1_000_000) as link:
            link.write(chunk)
    with open_link(f"file:{capture}", baud=9600, receive=True) as link:
        data = b""
        while not link.ended:
            data += link.read(4)
    assert data == b"firstsecond"


def test_missing_capture_file_is_a_link_error(tmp_path):
    with pytest.raises(LinkError, match="cannot open capture file"):
        open_link(f"file:{tmp_path / 'absent.kiss'}", baud=9600, receive=True)


def test_file_url_forms():
    assert str(file_path("file:out.kiss")) == "out.kiss"
    assert str(file_path("file:///tmp/out.kiss")) == "/tmp/out.kiss"
    assert file_path("/dev/ttyUSB0") is None
    assert file_path("loop://") is None
    with pytest.raises(LinkError):
        file_path("file:")


def test_pty_device_path_is_a_serial_link_and_a_hangup_is_a_link_error():
    master, slave = os.openpty()
    try:
        with open_link(os.ttyname(slave), baud=115200) as link:
            link.write(b"\xc0\x00frame\xdb\xdc\xc0")
            link.drain()
            assert os.read(master, 64) == b"\xc0\x00frame\xdb\xdc\xc0"  # raw mode: no byte translated
            os.write(master, b"uplink\n\r")
            got = b""
            for _ in range(50):
                got += link.read(64)
                if len(got) >= 8:
                    break
            assert got == b"uplink\n\r"
            os.close(master)
            master = None
            os.close(slave)
            slave = None
            with pytest.raises(LinkError):
                for _ in range(50):
                    link.read(64)
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)


def test_links_pace_to_the_air_rate_when_given_else_to_the_baud_rate():
    with open_link("loop://", baud=115200) as link:
        assert link.pace_baud == 115200
    with open_link("loop://", baud=115200, pace_baud=9600) as link:
        assert link.pace_baud == 9600
    with open_link("loop://", baud=115200, pace=False) as link:
        assert link.pace_baud is None
