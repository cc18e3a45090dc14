"""KISS and COBS framing, and the deframer's resynchronization after garbage and cuts."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py.link import framing
from firmware_py.link.framing import Deframer, cobs_decode, cobs_encode, frame

packets_strategy = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


def test_kiss_frame_escapes_fend_and_fesc():
    assert frame(b"\xc0\xdb\x01", "kiss") == b"\xc0\x00\xdb\xdc\xdb\xdd\x01\xc0"


@pytest.mark.parametrize(
    "raw, encoded",
    [  # Cheshire & Baker's examples, as Wikipedia lists them
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_cobs_known_vectors(raw, encoded):
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_rejects_a_code_past_the_end():
    assert cobs_decode(b"\x05\x11\x22") is None
    assert cobs_decode(b"\x02\x00") is None


def test_unknown_framing_and_empty_packet_are_refused():
    with pytest.raises(ValueError, match="framing"):
        frame(b"x", "hdlc")
    with pytest.raises(ValueError, match="empty"):
        frame(b"", "kiss")


@pytest.mark.parametrize("name", framing.FRAMINGS)
@given(packets=packets_strategy, cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_round_trip_in_any_chunking(name, packets, cuts):
    stream = b"".join(frame(p, name) for p in packets)
    deframer = Deframer(name)
    out = []
    previous = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        out += deframer.feed(stream[previous:cut])
        previous = cut
    assert out == packets
    assert deframer.stats.frames == len(packets)


@pytest.mark.parametrize("name", framing.FRAMINGS)
@given(packets=packets_strategy, garbage=st.lists(st.binary(max_size=80), min_size=1, max_size=9))
def test_garbage_between_frames_costs_no_frame(name, packets, garbage):
    """Every frame is delimited at both ends, so garbage before it cannot touch it."""
    pieces = []
    for index, packet in enumerate(packets):
        pieces.append(garbage[index % len(garbage)])
        pieces.append(frame(packet, name))
    out = Deframer(name).feed(b"".join(pieces))
    remaining = iter(out)
    assert all(any(packet == got for got in remaining) for packet in packets), "a packet was lost or reordered"


@pytest.mark.parametrize("name", framing.FRAMINGS)
def test_a_cut_frame_is_dropped_and_the_next_one_recovered(name):
    first, second = os.urandom(200), os.urandom(200)
    wire = frame(first, name)
    deframer = Deframer(name)
    got = deframer.feed(wire[: len(wire) // 2]) + deframer.feed(frame(second, name))
    assert second in got
    assert first not in got


def test_kiss_ignores_non_data_commands_and_counts_bad_escapes():
    deframer = Deframer("kiss")
    got = deframer.feed(b"\xc0\x01\x10\xc0" + b"\xc0\x00\xdb\x41\xc0" + frame(b"ok", "kiss"))
    assert got == [b"ok"]
    assert deframer.stats.other_commands == 1
    assert deframer.stats.invalid == 1


def test_kiss_accepts_data_frames_of_any_port():
    assert Deframer("kiss").feed(b"\xc0\x30hello\xc0") == [b"hello"]


@pytest.mark.parametrize("name", framing.FRAMINGS)
def test_buffer_is_bounded_and_recovers_after_an_endless_frame(name):
    deframer = Deframer(name, max_packet=64)
    filler = b"\x01" * 1000
    for _ in range(20):
        assert deframer.feed(filler) == []
        assert len(deframer._buffer) <= deframer.max_frame
    assert deframer.stats.oversized >= 1
    assert deframer.feed(frame(b"after", name)) == [b"after"]


@pytest.mark.parametrize("name", framing.FRAMINGS)
@given(data=st.binary(max_size=3000), split=st.integers(0, 3000))
def test_deframer_takes_any_bytes(name, data, split):
    deframer = Deframer(name, max_packet=512)
    for frame_bytes in deframer.feed(data[:split]) + deframer.feed(data[split:]):
        assert 0 < len(frame_bytes) <= deframer.max_frame
    assert len(deframer._buffer) <= deframer.max_frame


def test_max_framed_size_bounds_the_worst_case():
    worst = bytes([framing.FEND]) * 300
    assert len(frame(worst, "kiss")) == framing.max_framed_size(300, "kiss")
    assert len(frame(b"\x01" * 300, "cobs")) <= framing.max_framed_size(300, "cobs")
