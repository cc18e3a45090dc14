"""Truncated, damaged and hostile streams: decode returns an image of the header's shape
or raises CorruptStreamError (ModelError only for a changed model fingerprint), never
anything else, and never hangs.

Mutations come in two kinds: plain damage, which the CRC-32 must catch, and damage with
the CRC recomputed afterwards, which the parser itself must catch (or decode safely).
"""

from __future__ import annotations

import struct
import tracemalloc
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import (
    CorruptStreamError,
    ModelError,
    available_profiles,
    container_v2,
    decode,
    encode,
    encoder_v2,
    read_header,
    resample,
)
from firmware_py.codec.bitstream import SUPPORTED_VERSIONS
from firmware_py.codec.bitstream import LENGTH_PREFIX_BYTES
from firmware_py.codec.container_v2 import CONTEXT_VERSION, JOINT_VERSION, STATIC_TABLE_VERSION
from firmware_py.codec.profile_v2 import get_transform_profile, is_transform_profile

from codec_helpers import as_version_3, as_version_4, as_version_5, crop, header_span, parse_v2, reseal, stream_fields

# A decode takes about a millisecond; this deadline only catches hangs and runaway work.
NO_HANG = timedelta(seconds=2)


@pytest.fixture(scope="module")
def corpus(lena2, kodim23):
    """Valid streams and their field maps (None for layouts other than format version 1).

    Seed streams: gray, odd-sized colour, 1x1, and a flat frame with an empty table; every
    other installed profile adds a gray and a colour stream, and each transform profile with
    a half-resolution model the same two as version 3 streams, so the property covers the
    whole decoder as profiles are added.
    """
    gray, colour = crop(lena2, 40, 56), crop(kodim23, 21, 35)
    streams = [
        encode(image, profile="seed") for image in (gray, colour, crop(lena2, 1, 1), np.full((9, 9), 200, np.uint8))
    ]
    streams += [
        encode(image, profile=name) for name in available_profiles() if name != "seed" for image in (gray, colour)
    ]
    # The same frames coded at half resolution by every profile that can (format version 6,
    # static tables at these sizes), their version 3, 4 and 5 twins, and a frame whose planes
    # send explicit (compact) tables, with its version 4 and 5 twins.
    half = [
        encoder_v2.encode(image, profile=name, scale=resample.HALF)
        for name in available_profiles()
        if is_transform_profile(name) and get_transform_profile(name).half is not None
        for image in (gray, colour)
    ]
    streams += half + [twin(stream) for twin in (as_version_3, as_version_4, as_version_5) for stream in half]
    fine = [encode(crop(lena2, 64, 64), quality=0.1, profile=name) for name in available_profiles() if is_transform_profile(name)]
    streams += fine + [twin(stream) for twin in (as_version_4, as_version_5) for stream in fine]
    for stream in streams:
        decode(stream)  # load every kernel before the deadline applies
    return [(stream, stream_fields(stream) if read_header(stream).version == 1 else None) for stream in streams]


def decode_or_reject(data: bytes, *, model_error_allowed: bool = False) -> None:
    """The property: a uint8 image of the header's shape, or one of the documented errors."""
    try:
        image = decode(data)
    except CorruptStreamError as exc:
        assert str(exc), "a CorruptStreamError must say what is wrong"
        return
    except ModelError:
        assert model_error_allowed, "ModelError from a stream whose model fingerprint is intact"
        return
    header = read_header(data)
    expected = (header.height, header.width) + (() if header.colour.name == "GRAY" else (3,))
    assert image.dtype == np.uint8 and image.shape == expected


def fingerprint(stream: bytes) -> bytes:
    """The bytes where the header keeps the model fingerprint (field shifts move other bytes there)."""
    return stream[header_span("fingerprint")]


def pick(data, corpus):
    return corpus[data.draw(st.integers(0, len(corpus) - 1), label="stream")]


# -- (a) truncation -------------------------------------------------------------------------


def test_every_truncation_is_rejected(corpus):
    for stream, _ in corpus:
        for length in range(len(stream)):
            with pytest.raises(CorruptStreamError):
                decode(stream[:length])


def test_every_truncation_with_a_recomputed_crc_is_rejected(corpus):
    """Cut anywhere in the body and re-seal: the parser sees a self-consistent, short stream."""
    for stream, _ in corpus:
        for length in range(len(stream) - 4):
            with pytest.raises(CorruptStreamError):
                decode(reseal(stream[:length] + bytes(4)))


# -- (b) random bit flips (the CRC must catch them) ------------------------------------------


@settings(deadline=NO_HANG, max_examples=1000)
@given(data=st.data())
def test_bit_flips_are_rejected(corpus, data):
    stream, _ = pick(data, corpus)
    bits = data.draw(st.sets(st.integers(0, 8 * len(stream) - 1), min_size=1, max_size=16), label="bits")
    damaged = bytearray(stream)
    for bit in bits:
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(CorruptStreamError):
        decode(bytes(damaged))


# -- (c) structured mutations with a valid CRC (the parser must catch them) -----------------


def mutate(data, field_bytes: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "random", "zeros", "ones", "insert", "delete"]), label="mutation")
    if kind == "flip" and field_bytes:
        bit = data.draw(st.integers(0, 8 * len(field_bytes) - 1), label="bit")
        out = bytearray(field_bytes)
        out[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(out)
    if kind == "random":
        return data.draw(st.binary(min_size=len(field_bytes), max_size=len(field_bytes)), label="bytes")
    if kind == "zeros":
        return bytes(len(field_bytes))
    if kind == "ones":
        return b"\xff" * len(field_bytes)
    if kind == "insert":
        at = data.draw(st.integers(0, len(field_bytes)), label="at")
        return field_bytes[:at] + data.draw(st.binary(min_size=1, max_size=8), label="inserted") + field_bytes[at:]
    if field_bytes:  # delete
        at = data.draw(st.integers(0, len(field_bytes) - 1), label="at")
        count = data.draw(st.integers(1, len(field_bytes) - at), label="count")
        return field_bytes[:at] + field_bytes[at + count :]
    return field_bytes


@settings(deadline=NO_HANG, max_examples=2000)
@given(data=st.data())
def test_field_mutations_with_recomputed_crc(corpus, data):
    stream, fields = pick(data, [entry for entry in corpus if entry[1]])
    chosen = data.draw(st.sampled_from([f for f in fields if f.name != "crc"]), label="field")
    body = stream[: chosen.start] + mutate(data, stream[chosen.start : chosen.stop]) + stream[chosen.stop :]
    decode_or_reject(reseal(body), model_error_allowed=fingerprint(body) != fingerprint(stream))


@settings(deadline=NO_HANG, max_examples=600)
@given(data=st.data())
def test_payload_bit_flips_with_recomputed_crc(corpus, data):
    """Flipped payload bits either decode (a different valid code path) or are rejected."""
    stream, fields = pick(data, [entry for entry in corpus if entry[1]])
    payloads = [f for f in fields if f.name.endswith(".payload") and f.stop > f.start]
    chosen = data.draw(st.sampled_from(payloads), label="payload")
    bits = data.draw(st.sets(st.integers(8 * chosen.start, 8 * chosen.stop - 1), min_size=1, max_size=4), label="bits")
    damaged = bytearray(stream)
    for bit in bits:
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
    decode_or_reject(reseal(bytes(damaged)))


@settings(deadline=NO_HANG, max_examples=600)
@given(data=st.data())
def test_bit_flips_anywhere_with_recomputed_crc(corpus, data):
    """Layout-agnostic, so it covers every installed profile's format."""
    stream, _ = pick(data, corpus)
    bits = data.draw(st.sets(st.integers(0, 8 * (len(stream) - 4) - 1), min_size=1, max_size=4), label="bits")
    damaged = bytearray(stream)
    for bit in bits:
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
    body = bytes(damaged)
    decode_or_reject(reseal(body), model_error_allowed=fingerprint(body) != fingerprint(stream))


TABLE_REFERENCE_VERSIONS = (STATIC_TABLE_VERSION, JOINT_VERSION, CONTEXT_VERSION)


def table_spans(stream: bytes) -> list[tuple[int, int]]:
    """(start, stop) of each version 4 to 6 plane's table references and explicit tables."""
    parsed = parse_v2(stream)
    spans, offset = [], container_v2.overhead_size(parsed.header) - 4
    for plane in parsed.planes:
        size = container_v2.segment_size(plane.tables, 0, plane.refs) - LENGTH_PREFIX_BYTES
        spans.append((offset, offset + size))
        offset += size + LENGTH_PREFIX_BYTES + len(plane.payload)
    return spans


def plane_refs(plane) -> tuple[int, ...]:
    if hasattr(plane.refs, "joint"):
        return plane.refs.nibbles
    return (plane.refs.dc, plane.refs.ac)


@pytest.mark.parametrize("version", TABLE_REFERENCE_VERSIONS)
def test_corpus_has_streams_with_static_and_explicit_tables(corpus, version):
    refs = [
        ref
        for stream, _ in corpus
        if read_header(stream).version == version
        for plane in parse_v2(stream).planes
        for ref in plane_refs(plane)
    ]
    assert 0 in refs and any(ref > 0 for ref in refs)
    assert any(read_header(stream).version == 3 for stream, _ in corpus)


@settings(deadline=NO_HANG, max_examples=1500)
@given(data=st.data())
def test_version_4_to_6_table_mutations_with_recomputed_crc(corpus, data):
    """A damaged reference byte or compact table decodes (another valid table) or is rejected."""
    stream, _ = pick(data, [entry for entry in corpus if read_header(entry[0]).version in TABLE_REFERENCE_VERSIONS])
    start, stop = data.draw(st.sampled_from(table_spans(stream)), label="plane tables")
    body = stream[:start] + mutate(data, stream[start:stop]) + stream[stop:]
    decode_or_reject(reseal(body))


def payload_spans(stream: bytes) -> list[tuple[int, int]]:
    """(start, stop) of each version 4 to 6 plane's payload bytes."""
    spans = []
    for (_, tables_stop), plane in zip(table_spans(stream), parse_v2(stream).planes):
        start = tables_stop + LENGTH_PREFIX_BYTES
        if plane.payload:
            spans.append((start, start + len(plane.payload)))
    return spans


@settings(deadline=NO_HANG, max_examples=600)
@given(data=st.data())
def test_version_5_and_6_payload_bit_flips_with_recomputed_crc(corpus, data):
    """Flipped joint DC or AC codes decode (another valid block sequence) or are rejected."""
    joint = (JOINT_VERSION, CONTEXT_VERSION)
    stream, _ = pick(data, [entry for entry in corpus if read_header(entry[0]).version in joint])
    start, stop = data.draw(st.sampled_from(payload_spans(stream)), label="payload")
    bits = data.draw(st.sets(st.integers(8 * start, 8 * stop - 1), min_size=1, max_size=4), label="bits")
    damaged = bytearray(stream)
    for bit in bits:
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
    decode_or_reject(reseal(bytes(damaged)))


# -- hostile sizes ---------------------------------------------------------------------------


def test_hostile_dimensions_are_rejected_before_allocating(corpus):
    """A valid-CRC header claiming 65535x1024 (64 Mpx, just under the limit) over a payload
    of a few hundred bytes must be refused from the sizes alone: allocating the frame
    (64 M float64 pixels = 512 MiB) would show in tracemalloc's peak."""
    size = struct.pack("<HH", 65535, 1024)
    for stream, _ in corpus:
        hostile = reseal(stream[: header_span("width").start] + size + stream[header_span("height").stop :])
        assert (read_header(hostile).width, read_header(hostile).height) == (65535, 1024)
        tracemalloc.start()
        try:
            with pytest.raises(CorruptStreamError):
                decode(hostile)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, f"decoding a {len(stream)}-byte stream allocated {peak} bytes"


# -- (d) garbage ----------------------------------------------------------------------------


def test_empty_and_tiny_inputs_are_rejected():
    for data in (b"", b"Q", b"QPVC", b"QPVC\x01", b"\x00" * 20, b"\x89PNG\r\n\x1a\n" + bytes(40)):
        with pytest.raises(CorruptStreamError):
            decode(data)


@settings(deadline=NO_HANG, max_examples=500)
@given(st.binary(max_size=400))
def test_random_bytes_are_rejected(garbage):
    with pytest.raises(CorruptStreamError):
        decode(garbage)


@settings(deadline=NO_HANG, max_examples=1000)
@given(
    version=st.sampled_from(SUPPORTED_VERSIONS),
    header=st.binary(min_size=11, max_size=11),
    body=st.binary(max_size=300),
)
def test_random_streams_with_valid_magic_version_and_crc(version, header, body):
    """Only the magic, version and CRC are right; every other byte is arbitrary."""
    decode_or_reject(reseal(b"QPVC" + bytes([version]) + header + body + bytes(4)), model_error_allowed=True)


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError):
        decode("QPVC")
