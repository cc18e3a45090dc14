"""The command contract operators script against: `qpv onboard --once` and `qpv ground`."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import tty

import pytest

from firmware_py import cli, imageio, metrics
from firmware_py.eventlog import EventLog
from firmware_py.link.framing import Deframer, frame
from firmware_py.link.packets import encode_frame_packets, parse_packet
from ground.assembler import GroundDecoder
from ground.receiver import Receiver


@pytest.fixture(scope="module")
def lena_png(tmp_path_factory, lena2):
    path = tmp_path_factory.mktemp("images") / "lena2.png"
    imageio.save_image(path, lena2)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_once_writes_the_kiss_stream_within_max_bytes_and_ground_decodes_it(tmp_path, capsys, lena_png, lena2):
    capture = tmp_path / "out.kiss"
    status, out, _ = run_cli(
        capsys, "onboard", "--once", str(lena_png), "--link", f"file:{capture}", "--packet-size", "256",
        "--max-bytes", "6000",
    )
    assert status == 0 and out.count("\n") == 1 and "N0CALL-0" in out
    stream = capture.read_bytes()
    assert 5000 < len(stream) <= 6000, "--max-bytes bounds the framed bytes on the wire"
    packets = Deframer("kiss").feed(stream)
    assert all(len(p) <= 256 for p in packets)
    assert all(parse_packet(p).header.frame_id == 0 for p in packets)

    status, out, _ = run_cli(capsys, "ground", "--link", f"file:{capture}", "--out", str(tmp_path / "ground"))
    assert status == 0 and out.count("\n") == 1 and f"{len(packets)} packets used, 0 corrupt" in out
    sidecar = json.loads((tmp_path / "ground" / "N0CALL-0.json").read_text())
    assert sidecar["complete"] and sidecar["packets"]["received"] == len(packets)
    preview = imageio.load_image(tmp_path / "ground" / "N0CALL-0.png")
    assert metrics.psnr(lena2, preview) > 27


def test_once_takes_station_frame_id_and_cobs_framing(tmp_path, capsys, lena_png):
    capture = tmp_path / "out.cobs"
    status, out, _ = run_cli(
        capsys, "onboard", "--once", str(lena_png), "--link", f"file:{capture}", "--station", "dl1abc",
        "--frame-id", "4242", "--framing", "cobs", "--quality", "2.0",
    )
    assert status == 0
    packets = Deframer("cobs").feed(capture.read_bytes())
    headers = [parse_packet(p).header for p in packets]
    assert {(h.source, h.frame_id) for h in headers} == {("DL1ABC", 4242)}
    run_cli(capsys, "ground", "--link", f"file:{capture}", "--framing", "cobs", "--out", str(tmp_path / "g"))
    assert (tmp_path / "g" / "DL1ABC-4242.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["onboard", "--once", "IMAGE", "--link", "file:OUT", "--max-bytes", "100"], "does not fit 100 wire bytes"),
        (["onboard", "--once", "IMAGE"], "--once needs --link"),
        (["onboard", "--once", "missing.png", "--link", "file:OUT"], "no such file"),
        (["onboard", "--once", "IMAGE", "--link", "file:OUT", "--packet-size", "32"], "packet size 32"),
        (["onboard", "--once", "IMAGE", "--link", "file:OUT", "--station", "TOO-LONG-ID"], "source id"),
        (["onboard", "--once", "IMAGE", "--link", "file:OUT", "--spool", "x"], "--spool is a daemon option"),
        (["onboard", "--config", "CONFIG", "--frame-id", "3"], "--frame-id is for --once"),
        (["onboard", "--config", "CONFIG"], "unknown key 'bogus'"),
        (["ground", "--link", "file:missing.kiss", "--out", "OUTDIR"], "cannot open capture file"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_status_2(tmp_path, capsys, lena_png, argv, message):
    config = tmp_path / "onboard.toml"
    config.write_text(
        'station = "N0CALL"\nspool = "s"\nbogus = 1\n[link]\nurl = "loop://"\n[source]\nkind = "synthetic"\n'
    )
    replacements = {
        "IMAGE": str(lena_png), "file:OUT": f"file:{tmp_path / 'out.kiss'}", "CONFIG": str(config),
        "OUTDIR": str(tmp_path / "g"), "missing.png": str(tmp_path / "missing.png"),
        "file:missing.kiss": f"file:{tmp_path / 'missing.kiss'}",
    }
    status, out, err = run_cli(capsys, *[replacements.get(a, a) for a in argv])
    assert status == 2 and out == ""
    assert err.startswith("qpv: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out.kiss").exists(), "a failed --once leaves no file behind"


def test_ground_receiver_survives_a_dropped_connection_and_keeps_decoding(tmp_path, lena2):
    packets = encode_frame_packets(lena2, source="QPV1", frame_id=7, max_wire_bytes=6000)
    framed = [frame(p, "kiss") for p in packets]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    out = tmp_path / "ground"
    out.mkdir()
    log_lines: list[str] = []
    log = EventLog(type("Sink", (), {"write": lambda self, s: log_lines.append(s), "flush": lambda self: None})())
    decoder = GroundDecoder(out, log=log)
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    receiver = Receiver(url, decoder, baud=115200, log=log, sleep=lambda s: time.sleep(0.005))

    def wait_for_link_up(count: int) -> None:
        # pyserial empties the input when it opens a port: send only once the receiver is up.
        deadline = time.monotonic() + 30
        while sum('"link_up"' in line for line in log_lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def sender() -> None:
        first, _ = server.accept()
        wait_for_link_up(1)
        first.sendall(b"".join(framed[:10]))
        first.close()  # the radio link drops between packets
        second, _ = server.accept()
        wait_for_link_up(2)
        second.sendall(b"".join(framed[10:]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (out / "QPV1-7.json").exists():
            time.sleep(0.05)
        while time.monotonic() < deadline and not json.loads((out / "QPV1-7.json").read_text())["complete"]:
            time.sleep(0.05)
        receiver.request_stop()
        second.close()

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    receiver.run()
    thread.join(10)
    server.close()
    events = [json.loads(line)["event"] for line in log_lines]
    assert events.count("link_up") == 2 and "link_down" in events
    sidecar = json.loads((out / "QPV1-7.json").read_text())
    assert sidecar["complete"] and sidecar["packets"]["received"] == len(packets)


class BusyGroundDecoder(GroundDecoder):
    """A ground decoder whose first feed stays busy, as rendering a 12-megapixel preview does,
    until the test lets it go."""

    def __init__(self, *args, release: threading.Event, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = release
        self.released_in_time = None

    def feed(self, data: bytes) -> None:
        if self.released_in_time is None:
            self.released_in_time = self.release.wait(timeout=30)
        super().feed(data)


def test_ground_receiver_drains_the_link_while_the_decoder_is_busy(tmp_path, lena2):
    # A pty, like a UART, holds only a few kilobytes: the sender can push a whole frame
    # while the decoder is busy only if the receiver keeps reading the link meanwhile.
    packets = encode_frame_packets(lena2, source="QPV1", frame_id=9, max_wire_bytes=6000)
    wire = b"".join(frame(p, "kiss") for p in packets)
    padding = b"\xc0" * (1 << 20)  # empty KISS frames: 1 MiB the deframer skips
    master, slave = os.openpty()
    tty.setraw(slave)
    log_lines: list[str] = []
    log = EventLog(type("Sink", (), {"write": lambda self, s: log_lines.append(s), "flush": lambda self: None})())
    release = threading.Event()
    decoder = BusyGroundDecoder(tmp_path, log=log, release=release)
    receiver = Receiver(os.ttyname(slave), decoder, baud=115200, log=log)

    def sender() -> None:
        deadline = time.monotonic() + 30
        while not any('"link_up"' in line for line in log_lines) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.write(master, b"\xc0")  # wakes the decoder's first, busy feed
        for start in range(0, len(padding), 4096):
            os.write(master, padding[start : start + 4096])
        os.write(master, wire)
        release.set()
        while time.monotonic() < deadline and not (tmp_path / "QPV1-9.json").exists():
            time.sleep(0.05)
        while time.monotonic() < deadline and not json.loads((tmp_path / "QPV1-9.json").read_text())["complete"]:
            time.sleep(0.05)
        receiver.request_stop()

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        receiver.run()
        thread.join(10)
    finally:
        os.close(master)
        os.close(slave)
    assert decoder.released_in_time, "the sender could not write while the decoder was busy: the link was not drained"
    sidecar = json.loads((tmp_path / "QPV1-9.json").read_text())
    assert sidecar["complete"] and sidecar["packets"]["received"] == len(packets)
