"""Format version 4 and 5 tables: the compact table coding (round trip, the worked
example of docs/FORMAT.md, rejection of every malformed field), the encoder's choice
between explicit and static tables, version 5's reference bytes, the exactness of rate
control's sizes, and the static table sets' loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import CorruptStreamError, ModelError, container_v2, decode, encoder_v2, huffman
from firmware_py.codec import tablecoding as tc
from firmware_py.codec.models import file_sha256
from firmware_py.codec.profile_v2 import get_transform_profile
from firmware_py.codec.jointdc import JointCounts, JointTables
from firmware_py.codec.statictables import KIND, VERSION_5_KINDS, VERSION_6_KINDS, load_static_tables

from codec_helpers import crop, parse_v2, reseal

WORKED_EXAMPLE = bytes.fromhex("13138b8000c0")


def worked_example_table() -> huffman.HuffmanTable:
    """EOB: 1 bit, 0x01: 2 bits, 0x02 and 0x11: 3 bits (docs/FORMAT.md, format version 4)."""
    lengths = np.zeros(256, dtype=np.uint8)
    lengths[[0x00, 0x01, 0x02, 0x11]] = [1, 2, 3, 3]
    return tc.table_from_lengths(lengths)


def histogram(kind: str, draw_counts: list[int]) -> np.ndarray:
    hist = np.zeros(tc.ALPHABETS[kind], dtype=np.int64)
    slots = tc.SLOTS[kind]
    hist[slots[: len(draw_counts)]] = draw_counts
    return hist


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["dc", "ac", "first"]), data=st.data())
def test_compact_coding_round_trips_every_optimal_table(kind, data):
    counts = data.draw(st.lists(st.integers(0, 5000), max_size=len(tc.SLOTS[kind])), label="counts")
    table = tc.table_from_lengths(huffman.code_lengths(histogram(kind, counts)))
    coded = tc.serialize_compact(table, kind)
    assert len(coded) == tc.compact_size(table, kind)
    parsed, offset = tc.parse_compact(b"\xaa" + coded + b"\x55", 1, kind)
    assert offset == 1 + len(coded)
    assert parsed.min_symbol == table.min_symbol and np.array_equal(parsed.lengths, table.lengths)


def test_worked_example_of_the_format_document():
    table = worked_example_table()
    assert tc.serialize_compact(table, "ac") == WORKED_EXAMPLE
    assert len(table.serialize()) == 13  # the version 1 coding of the same table


def test_version_5_ac_worked_example_of_the_format_document():
    """ZRL and 0x01: 2 bits, 0x101 (0x01 with the last flag): 1 bit; slots ZRL 0, 0x01 1,
    0x101 2, so n = 3 in 9 bits."""
    lengths = np.zeros(tc.ALPHABETS["first"], dtype=np.uint8)
    lengths[[0xF0, 0x01, 0x101]] = [2, 2, 1]
    table = tc.table_from_lengths(lengths)
    for kind in ("first", "rest"):
        assert tc.serialize_compact(table, kind) == bytes.fromhex("01897c")
        parsed, _ = tc.parse_compact(bytes.fromhex("01897c"), 0, kind)
        np.testing.assert_array_equal(tc.full_lengths(parsed, kind), lengths)
    with pytest.raises(CorruptStreamError, match="codes 482 slots"):
        tc.parse_compact(bytes([0xF1, 0x00, 0x00]), 0, "first")


def test_empty_table_is_one_zero_byte():
    assert tc.serialize_compact(huffman.HuffmanTable.empty(), "dc") == b"\x00"
    table, offset = tc.parse_compact(b"\x00", 0, "dc")
    assert offset == 1 and len(table.lengths) == 0


def test_a_symbol_outside_the_block_syntax_cannot_be_coded():
    with pytest.raises(ValueError, match="outside the block syntax"):
        tc.serialize_compact(huffman.HuffmanTable(0x10, np.array([1, 1], dtype=np.uint8)), "ac")


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (WORKED_EXAMPLE[:3], "ac", "stream ends inside the compact AC table"),
        (b"\x11\x11\xff\xff\xff", "dc", "codes 17 slots"),
        (bytes([1, 0x00]), "dc", "code lengths 0..0"),
        (bytes([1, 0x21]), "dc", "code lengths 2..1"),
        (bytes([2, 0x13, 0b1110_0000]), "dc", "code length 4 above its maximum 3"),
        (bytes([2, 0x11, 0b1000_0000]), "dc", "last coded slot"),
        (bytes([3, 0x11, 0b1110_0000]), "dc", "Kraft"),
        (WORKED_EXAMPLE[:-1] + b"\xc1", "ac", "padding bits"),
    ],
)
def test_malformed_compact_tables_are_corrupt(data, kind, message):
    with pytest.raises(CorruptStreamError, match=message):
        tc.parse_compact(data, 0, kind)


# --- the encoder's choice ---------------------------------------------------------------


def dc_static(*rows: np.ndarray) -> tc.PlaneStatic:
    return tc.PlaneStatic(np.stack(rows), tc.NO_STATIC.ac)


def two_symbol_case(second: int) -> tuple[np.ndarray, huffman.HuffmanTable, np.ndarray]:
    """DC counts [100, second]: the explicit table (1 + 1 bits) costs 3 bytes, the static
    one (1 + 2 + 2 bits) 1 more bit per second symbol: they tie at second == 24."""
    hist = np.zeros(tc.ALPHABETS["dc"], dtype=np.int64)
    hist[:2] = [100, second]
    explicit = tc.table_from_lengths(huffman.code_lengths(hist))
    static = np.zeros(tc.ALPHABETS["dc"], dtype=np.int64)
    static[:3] = [1, 2, 2]
    assert tc.compact_size(explicit, "dc") == 3
    return hist, explicit, static


def test_static_table_is_chosen_when_it_costs_fewer_bits():
    hist, explicit, static = two_symbol_case(23)
    ref, table = tc.choose_table(hist, explicit, "dc", dc_static(static))
    assert ref == 1 and np.array_equal(tc.full_lengths(table, "dc"), static)


@pytest.mark.parametrize("second", [24, 25])
def test_explicit_table_is_kept_when_cheaper_or_tied(second):
    hist, explicit, static = two_symbol_case(second)
    assert tc.choose_table(hist, explicit, "dc", dc_static(static)) == (tc.EXPLICIT, explicit)


def test_ties_between_static_tables_go_to_the_lower_index():
    hist, explicit, static = two_symbol_case(0)
    assert tc.choose_table(hist, explicit, "dc", dc_static(static, static))[0] == 1


def test_a_static_table_missing_a_used_symbol_is_never_chosen():
    hist, explicit, static = two_symbol_case(1)
    hist[5] = 1
    explicit = tc.table_from_lengths(huffman.code_lengths(hist))
    assert tc.choose_table(hist, explicit, "dc", dc_static(static))[0] == tc.EXPLICIT


@pytest.mark.parametrize(("size", "quality"), [((24, 40), 1.0), ((64, 64), 0.1), ((48, 80), 0.5)])
def test_rate_control_sizes_version_6_streams_exactly(lena2, kodim23, size, quality):
    for image in (crop(lena2, *size), crop(kodim23, *size)):
        frame = encoder_v2.transform_frame(image, get_transform_profile("klt"))
        steps, planes = encoder_v2.quantize_frame(frame, quality)
        stream = encoder_v2.pack_frame(frame, steps, planes)
        assert encoder_v2.coded_size(frame, steps, planes) == len(stream)
        parsed = parse_v2(stream)
        assert [p.refs for p in parsed.planes] == [q.refs for q in planes]
        decode(stream)


def test_encoder_references_static_tables_of_small_frames(lena2):
    stream = encoder_v2.encode(crop(lena2, 40, 56), quality=1.0, profile="klt")
    refs = parse_v2(stream).planes[0].refs
    assert len(refs.rest) == 4 and all(ref > 0 for ref in refs.nibbles)


def test_joint_refs_are_three_bytes_of_nibbles_in_stream_order():
    refs = tc.JointRefs((1, 2, 3), 4, (5,))
    assert refs.to_bytes() == bytes([0x12, 0x34, 0x50]) and tc.JointRefs.from_bytes(b"\x12\x34\x50") == refs
    assert [kind for kind, _ in refs.kinds] == ["joint", "joint", "joint", "first", "rest"]
    with pytest.raises(ValueError):
        tc.JointRefs((1, 2), 4, (5,))
    with pytest.raises(CorruptStreamError, match="spare nibble"):
        tc.JointRefs.from_bytes(b"\x12\x34\x51")


def test_version_6_refs_are_four_bytes_of_nibbles_in_stream_order():
    refs = tc.JointRefs((1, 2, 3), 4, (5, 6, 7, 15))
    assert tc.joint_refs_bytes(4) == 4 and tc.joint_refs_bytes(1) == 3
    assert refs.to_bytes() == bytes([0x12, 0x34, 0x56, 0x7F]) and tc.JointRefs.from_bytes(refs.to_bytes(), 4) == refs
    assert [kind for kind, _ in refs.kinds][3:] == ["first", "rest0", "rest1", "rest2", "rest3"]
    for rest in ((5, 6), (5, 6, 7, 16)):
        with pytest.raises(ValueError):
            tc.JointRefs((1, 2, 3), 4, rest)


def test_an_unused_context_costs_one_byte_explicit_and_nothing_static():
    """DC-only blocks with no neighbour context: contexts 1 and 2 never occur."""
    joint = np.zeros((3, tc.ALPHABETS["joint"]), dtype=np.int64)
    joint[0, [1, 3]] = [50, 7]
    no_ac = np.zeros(tc.ALPHABETS["first"], dtype=np.int64)
    counts = JointCounts(joint, no_ac, no_ac[None], 7)
    empty = huffman.HuffmanTable.empty()
    explicit = JointTables(tuple(tc.table_from_lengths(huffman.code_lengths(row)) for row in joint), empty, (empty,))
    refs, tables, _ = tc.choose_joint_tables(counts, tc.NO_STATIC)
    assert refs == tc.EXPLICIT_JOINT_REFS
    # 3 reference bytes, context 0's table, 2 empty joint DC tables and 2 empty AC tables
    # (9-bit slot counts: 2 bytes each).
    assert tc.joint_tables_size(refs, tables) == 3 + tc.compact_size(explicit.joint[0], "joint") + 2 + 4
    static = tc.PlaneStatic(tc.NO_STATIC.dc, tc.NO_STATIC.ac, np.full((1, tc.ALPHABETS["joint"]), 5, dtype=np.int64))
    refs, tables, _ = tc.choose_joint_tables(counts, static)
    assert refs == tc.JointRefs((tc.EXPLICIT, 1, 1), tc.EXPLICIT, (tc.EXPLICIT,))  # the set has no AC table
    assert tc.joint_tables_size(refs, tables) == 3 + tc.compact_size(explicit.joint[0], "joint") + 4
    # Version 6: 4 reference bytes and 5 empty AC tables.
    counts = JointCounts(joint, no_ac, np.zeros((4, tc.ALPHABETS["first"]), dtype=np.int64), 7)
    refs, tables, _ = tc.choose_joint_tables(counts, tc.NO_STATIC)
    assert refs == tc.JointRefs(rest=(tc.EXPLICIT,) * 4) and len(tables.rest) == 4
    assert tc.joint_tables_size(refs, tables) == 4 + tc.compact_size(explicit.joint[0], "joint") + 2 + 10


def test_reference_past_the_static_set_is_corrupt(lena2):
    stream = encoder_v2.encode(crop(lena2, 40, 56), quality=1.0, profile="klt")
    static = get_transform_profile("klt").context_tables
    offset = container_v2.overhead_size(parse_v2(stream).header) - 4 + 1  # the first AC table's nibble
    count = len(static.luma.first)
    damaged = bytearray(stream)
    damaged[offset] = (damaged[offset] & 0xF0) | (count + 1)
    with pytest.raises(CorruptStreamError, match=f"static FIRST table {count}, the profile has {count}"):
        parse_v2(reseal(bytes(damaged)))


# --- the static table set ---------------------------------------------------------------


def write_set(directory, **arrays) -> None:
    np.savez(directory / "t.npz", **arrays)
    entry = {"file": "t.npz", "sha256": file_sha256(directory / "t.npz"), "kind": KIND}
    (directory / "manifest.json").write_text(json.dumps({"format": 1, "models": {"t": entry}, "profiles": {}}))


def valid_arrays() -> dict[str, np.ndarray]:
    dc = np.full((1, 16), 4, dtype=np.uint8)
    ac = np.zeros((1, 256), dtype=np.uint8)
    ac[0, tc.AC_SLOTS[:127]] = 7
    return {"dc_luma": dc, "ac_luma": ac, "dc_chroma": dc, "ac_chroma": ac}


def test_a_valid_set_loads(tmp_path):
    write_set(tmp_path, **valid_arrays())
    tables = load_static_tables("t", tmp_path)
    assert len(tables.luma.dc) == 1 and tables.for_plane(2) is tables.chroma


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("ac_chroma"), "lacks 'ac_chroma'"),
        (lambda a: a.update(dc_luma=np.full((1, 16), 3, dtype=np.uint8)), "Kraft"),
        (lambda a: a.update(dc_luma=np.full((1, 15), 4, dtype=np.uint8)), "16 code lengths"),
        (lambda a: a["ac_luma"].__setitem__((0, 0x10), 9), "zero-size symbol"),
        (lambda a: a.update(dc_luma=np.full((16, 16), 4, dtype=np.uint8)), "k <= 15"),
    ],
)
def test_a_bad_set_is_a_model_error(tmp_path, change, message):
    arrays = valid_arrays()
    change(arrays)
    write_set(tmp_path, **arrays)
    with pytest.raises(ModelError, match=message):
        load_static_tables("t", tmp_path)


def test_a_valid_version_5_set_loads_and_checks_its_joint_tables(tmp_path):
    arrays = valid_arrays()
    joint = np.full((2, tc.ALPHABETS["joint"]), 5, dtype=np.uint8)
    ac = np.zeros((1, tc.ALPHABETS["first"]), dtype=np.uint8)
    ac[0, tc.LAST_SLOTS] = 9
    arrays.update(
        joint_luma=joint, joint_chroma=joint[:1], first_luma=ac, first_chroma=ac, rest_luma=ac, rest_chroma=ac
    )
    write_set(tmp_path, **arrays)
    tables = load_static_tables("t", tmp_path, VERSION_5_KINDS)
    assert len(tables.luma.joint) == 2 and len(tables.chroma.joint) == 1 and len(tables.luma.dc) == 0
    assert len(tables.luma.first) == 1 and len(tables.chroma.rest) == 1
    for name, bad, message in (
        ("short", {"joint_luma": joint[:, :16]}, "32 code lengths"),
        ("flagged-zrl", {"rest_chroma": np.where(np.arange(512) == 256 + 0xF0, 9, ac)}, "last-flagged ZRL"),
    ):
        (tmp_path / name).mkdir()
        write_set(tmp_path / name, **{**arrays, **bad})
        with pytest.raises(ModelError, match=message):
            load_static_tables("t", tmp_path / name, VERSION_5_KINDS)


def test_a_valid_version_6_set_loads_an_other_ac_table_kind_per_start_context(tmp_path):
    plane_kinds = ("luma", "chroma")
    joint = np.full((1, tc.ALPHABETS["joint"]), 5, dtype=np.uint8)
    ac = np.zeros((1, tc.ALPHABETS["first"]), dtype=np.uint8)
    ac[0, tc.LAST_SLOTS] = 9
    arrays = {f"{kind}_{plane}": joint if kind == "joint" else ac for kind in VERSION_6_KINDS for plane in plane_kinds}
    arrays["rest2_chroma"] = np.concatenate([ac, ac])
    write_set(tmp_path, **arrays)
    tables = load_static_tables("t", tmp_path, VERSION_6_KINDS)
    assert len(tables.chroma.rest2) == 2 and len(tables.luma.rest3) == 1 and len(tables.luma.rest) == 0
    arrays.pop("rest3_luma")
    (tmp_path / "short").mkdir()
    write_set(tmp_path / "short", **arrays)
    with pytest.raises(ModelError, match="lacks 'rest3_luma'"):
        load_static_tables("t", tmp_path / "short", VERSION_6_KINDS)


def test_a_modified_set_file_is_refused(tmp_path):
    write_set(tmp_path, **valid_arrays())
    (tmp_path / "t.npz").write_bytes((tmp_path / "t.npz").read_bytes() + b"\0")
    with pytest.raises(ModelError, match="refusing a modified artifact"):
        load_static_tables("t", tmp_path)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    kind=st.sampled_from(["joint", "first", "rest", "rest0", "rest3"]),
    scale=st.sampled_from([1, 10, 1000]),
)
def test_cheapest_table_is_the_choice_among_the_optimal_and_static_tables(seed, kind, scale):
    """Skipping the optimal table when a static one surely wins never changes the choice,
    and the code bits given with it are the chosen table's."""
    rng = np.random.default_rng(seed)
    profile = get_transform_profile("klt")
    version_6 = kind in tc.REST_KINDS[4]
    static = (profile.context_tables if version_6 else profile.joint_tables).for_plane(seed % 2)
    hist = np.zeros(tc.ALPHABETS[kind], dtype=np.int64)
    used = rng.choice(tc.SLOTS[kind][:40], size=rng.integers(0, 12), replace=False)
    hist[used] = (rng.pareto(1.0, len(used)) * scale).astype(np.int64) + 1
    explicit = tc.table_from_lengths(huffman.code_lengths(hist))
    ref, table, bits = tc.cheapest_table(hist, kind, static)
    expected_ref, expected = tc.choose_table(hist, explicit, kind, static)
    assert ref == expected_ref
    np.testing.assert_array_equal(tc.full_lengths(table, kind), tc.full_lengths(expected, kind))
    assert bits == int(np.dot(hist, tc.full_lengths(table, kind)))


def random_joint_counts(rng: np.random.Generator, scale: int, rest_tables: int = 1) -> JointCounts:
    """Counts of a version 5 (``rest_tables`` 1) or 6 (4) plane's tables over the first
    slots of each kind (some empty)."""

    def hist(kind: str) -> np.ndarray:
        counts = np.zeros(tc.ALPHABETS[kind], dtype=np.int64)
        used = rng.choice(tc.SLOTS[kind][:40], size=rng.integers(0, 12), replace=False)
        counts[used] = (rng.pareto(1.0, len(used)) * scale).astype(np.int64) + 1
        return counts

    rest = np.stack([hist(kind) for kind in tc.REST_KINDS[rest_tables]])
    return JointCounts(np.stack([hist("joint") for _ in range(3)]), hist("first"), rest, 0)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    scale=st.sampled_from([1, 10, 1000]),
    plane=st.sampled_from([0, 1, None]),
    version=st.sampled_from([5, 6]),
)
def test_the_table_choice_kernel_chooses_as_the_reference(seed, scale, plane, version):
    """choose_joint_tables (one kernel call for a plane's five or eight tables) against
    choose_table table by table, the optimal table always built: references, tables and
    code bits, with the klt static sets of the version and without; empty histograms
    included (version 6 chroma planes often leave start contexts unused)."""
    counts = random_joint_counts(np.random.default_rng(seed), scale, 4 if version == 6 else 1)
    profile = get_transform_profile("klt")
    static_set = profile.context_tables if version == 6 else profile.joint_tables
    static = tc.NO_STATIC if plane is None else static_set.for_plane(plane)
    refs, tables, bits = tc.choose_joint_tables(counts, static)
    chosen = (*tables.joint, tables.first, *tables.rest)
    expected_bits = 0
    for hist, table, (kind, ref) in zip([*counts.joint, counts.first, *counts.rest], chosen, refs.kinds):
        explicit = tc.table_from_lengths(huffman.code_lengths(hist))
        expected_ref, expected = tc.choose_table(hist, explicit, kind, static)
        assert ref == expected_ref
        np.testing.assert_array_equal(tc.full_lengths(table, kind), tc.full_lengths(expected, kind))
        # Explicit tables come with the kernel's codes: they must be the canonical ones.
        fresh = huffman.HuffmanTable(table.min_symbol, table.lengths.copy())
        np.testing.assert_array_equal(table.canonical_codes(), fresh.canonical_codes())
        expected_bits += int(np.dot(hist, tc.full_lengths(expected, kind)))
    assert bits == expected_bits


def test_the_table_choice_refuses_counts_it_cannot_code():
    counts = random_joint_counts(np.random.default_rng(5), 10)
    negative = counts.rest.copy()
    negative[0, tc.SLOTS["rest"][3]] = -1
    with pytest.raises(ValueError, match="non-negative"):
        tc.choose_joint_tables(JointCounts(counts.joint, counts.first, negative, 0), tc.NO_STATIC)
    eob = counts.first.copy()
    eob[0] = 4  # version 5 sends no EOB: the symbol has no slot
    with pytest.raises(ValueError, match="outside the block syntax"):
        tc.choose_joint_tables(JointCounts(counts.joint, eob, counts.rest, 0), tc.NO_STATIC)
    with pytest.raises(ValueError, match="version 5 or 6 alphabets"):
        tc.choose_joint_tables(JointCounts(counts.joint[:2], counts.first, counts.rest, 0), tc.NO_STATIC)
