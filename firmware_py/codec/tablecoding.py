"""How a format version 4 plane gives its DC and AC Huffman tables, and a version 5
plane its three joint DC tables and two AC tables (first AC symbol of a block, and the
others), and a version 6 plane the same with four "other" AC tables, one per start
context (docs/FORMAT.md, "Format version 4", "Format version 5" and "Format version 6").

At quick-preview rates the version 1 table format (4 bytes + one nibble per symbol slot
of the range, ~125 bytes for an AC table) is several per cent of a stream. Version 4
gives each table by reference: *static table k* of the profile's trained set
(statictables.py; the stream pays only the selector) or *explicit*, in a compact coding:

- the symbols are listed in a fixed slot order, likely ones first (AC: EOB, ZRL, then
  size 1 for runs 0..15, size 2 for runs 0..15, ...; version 5 AC: ZRL, then size 1
  for runs 0..15, each without then with the last flag, size 2, ...; DC and joint DC:
  by symbol, i.e. by size category), so that the unused tail is cut;
- ``n`` (8 bits; 9 for version 5 AC tables, which have 481 slots): slots coded; slot
  ``n - 1`` is the last used one (0: an empty table);
- ``Lmin``, ``Lmax`` (4 bits each): shortest and longest code length;
- per slot: 1 bit "used", and if used, ``L - Lmin`` in ``bit_length(Lmax - Lmin)`` bits;
- zero bits to the byte boundary.

The encoder picks, per table, the reference with the fewest exact bits (table bytes x 8
+ the symbols' code bits) from the symbol counts it already has; ties keep the explicit
table, and between static tables the lower index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from .bitio import MAX_CODE_LENGTH
from .errors import CorruptStreamError
from .huffman import HuffmanTable, code_lengths_into, fits_kraft, huffman_work
from .jointdc import CONTEXTS, JOINT_ALPHABET, LAST, LAST_ALPHABET, JointCounts, JointTables
from .runlength import AC_ALPHABET, DC_ALPHABET, EOB, MAX_RUN, MAX_SIZE, ZRL, PlaneTables

EXPLICIT = 0  # a table reference; static table k is k + 1
MAX_STATIC_TABLES = 15  # a reference is a nibble
_LENGTH_BITS = 4

DC_SLOTS = np.arange(DC_ALPHABET, dtype=np.int64)
AC_SLOTS = np.array(
    [EOB, ZRL] + [run * 16 + size for size in range(1, MAX_SIZE + 1) for run in range(MAX_RUN + 1)], dtype=np.int64
)
JOINT_SLOTS = np.arange(JOINT_ALPHABET, dtype=np.int64)
LAST_SLOTS = np.array([ZRL] + [s + last for s in AC_SLOTS[2:].tolist() for last in (0, LAST)], dtype=np.int64)
# The kinds of a plane's other-AC tables by their number: version 5's one, and version
# 6's one per start context (jointdc.REST_CONTEXT_EDGES), each with its own static tables.
REST_KINDS = {1: ("rest",), 4: ("rest0", "rest1", "rest2", "rest3")}
# Table kinds: version 4's DC and AC; version 5's joint DC, and AC tables of the first
# symbol of a block ("first") and of its other symbols ("rest"), over one alphabet;
# version 6's other-AC tables of each start context.
SLOTS = {
    "dc": DC_SLOTS,
    "ac": AC_SLOTS,
    "joint": JOINT_SLOTS,
    "first": LAST_SLOTS,
    **{kind: LAST_SLOTS for kinds in REST_KINDS.values() for kind in kinds},
}
ALPHABETS = {
    "dc": DC_ALPHABET,
    "ac": AC_ALPHABET,
    "joint": JOINT_ALPHABET,
    **{kind: LAST_ALPHABET for kind in SLOTS if kind not in ("dc", "ac", "joint")},
}
# Bits of the slot count n: 8, or as many as the kind's slot count needs.
COUNT_BITS = {kind: max(8, len(slots).bit_length()) for kind, slots in SLOTS.items()}


def _slot_of(slots: np.ndarray, alphabet: int) -> np.ndarray:
    """Slot index of every symbol, -1 for symbols the block syntax cannot have."""
    slot_of = np.full(alphabet, -1, dtype=np.int64)
    slot_of[slots] = np.arange(len(slots))
    return slot_of


SLOT_OF = {kind: _slot_of(SLOTS[kind], ALPHABETS[kind]) for kind in SLOTS}
_NO_CODE = np.iinfo(np.int64).max
# A version 5 or 6 plane's tables in stream order, by its number of other-AC tables, as
# its table choice takes them: rows of LAST_ALPHABET symbols (the joint DC rows padded),
# each with its kind's slots.
PLANE_KINDS = {n: ("joint",) * CONTEXTS + ("first",) + kinds for n, kinds in REST_KINDS.items()}


def _plane_slot_of(kinds: tuple[str, ...]) -> np.ndarray:
    slot_of = np.full((len(kinds), LAST_ALPHABET), -1, dtype=np.int64)
    for row, kind in enumerate(kinds):
        slot_of[row, : ALPHABETS[kind]] = SLOT_OF[kind]
    return slot_of


_PLANE_SLOT_OF = {n: _plane_slot_of(kinds) for n, kinds in PLANE_KINDS.items()}


@dataclass(frozen=True)
class TableRefs:
    """The DC and AC table references of a plane: EXPLICIT or static index + 1."""

    dc: int = EXPLICIT
    ac: int = EXPLICIT

    def __post_init__(self) -> None:
        for ref in (self.dc, self.ac):
            if not 0 <= ref <= MAX_STATIC_TABLES:
                raise ValueError(f"table reference {ref} is outside 0..{MAX_STATIC_TABLES}")

    def to_byte(self) -> int:
        return self.dc << 4 | self.ac

    @classmethod
    def from_byte(cls, value: int) -> TableRefs:
        return cls(value >> 4, value & 0x0F)


@dataclass(frozen=True)
class JointRefs:
    """The references of a version 5 or 6 plane's tables: a joint DC table per context,
    then the first-symbol AC table and the other AC tables (version 5: one, version 6: one
    per start context); in the stream one nibble each in that order, high nibble first,
    in whole bytes (version 5: three bytes, the last nibble zero; version 6: four)."""

    joint: tuple[int, ...] = (EXPLICIT,) * CONTEXTS
    first: int = EXPLICIT
    rest: tuple[int, ...] = (EXPLICIT,)

    def __post_init__(self) -> None:
        if len(self.joint) != CONTEXTS:
            raise ValueError(f"expected {CONTEXTS} joint DC table references, got {len(self.joint)}")
        if len(self.rest) not in REST_KINDS:
            raise ValueError(f"expected 1 or 4 other-AC table references, got {len(self.rest)}")
        for ref in self.nibbles:
            if not 0 <= ref <= MAX_STATIC_TABLES:
                raise ValueError(f"table reference {ref} is outside 0..{MAX_STATIC_TABLES}")

    @property
    def nibbles(self) -> tuple[int, ...]:
        return (*self.joint, self.first, *self.rest)

    @property
    def kinds(self) -> tuple[tuple[str, int], ...]:
        """(table kind, reference) of every table, in stream order."""
        return tuple(zip(("joint",) * CONTEXTS + ("first",) + REST_KINDS[len(self.rest)], self.nibbles))

    def to_bytes(self) -> bytes:
        nibbles = self.nibbles + (0,) * (len(self.nibbles) % 2)
        return bytes(high << 4 | low for high, low in zip(nibbles[::2], nibbles[1::2]))

    @classmethod
    def from_bytes(cls, data: bytes, rest_tables: int = 1) -> JointRefs:
        """The references of a plane with ``rest_tables`` other-AC tables from its
        joint_refs_bytes(rest_tables) bytes; CorruptStreamError if a spare nibble is not zero."""
        nibbles = [nibble for byte in data for nibble in (byte >> 4, byte & 0x0F)]
        count = CONTEXTS + 1 + rest_tables
        if any(nibbles[count:]):
            raise CorruptStreamError("the spare nibble of the table references is not zero")
        return cls(tuple(nibbles[:CONTEXTS]), nibbles[CONTEXTS], tuple(nibbles[CONTEXTS + 1 : count]))


def joint_refs_bytes(rest_tables: int) -> int:
    """Bytes of the table references of a plane with ``rest_tables`` other-AC tables."""
    return (CONTEXTS + 1 + rest_tables + 1) // 2


def table_from_lengths(lengths: np.ndarray, codes: np.ndarray | None = None) -> HuffmanTable:
    """The HuffmanTable over the used range of a full-alphabet length array, with its
    canonical ``codes`` over the same alphabet when a kernel has assigned them."""
    used = np.flatnonzero(lengths)
    if used.size == 0:
        return HuffmanTable.empty()
    low, high = int(used[0]), int(used[-1]) + 1
    span = np.asarray(lengths[low:high], dtype=np.uint8)
    if codes is None:
        return HuffmanTable(low, span)
    return HuffmanTable.with_canonical_codes(low, span.copy(), codes[low:high].copy())


@dataclass(frozen=True)
class PlaneStatic:
    """The static tables one plane kind may reference: (k, alphabet) int64 code lengths
    per table kind (a version 4 set has DC and AC tables, a version 5 set joint DC, first
    AC and other AC tables, a version 6 set other AC tables per start context instead),
    with what the encoder's choice needs of them computed once."""

    dc: np.ndarray
    ac: np.ndarray
    joint: np.ndarray = field(default_factory=lambda: np.zeros((0, JOINT_ALPHABET), dtype=np.int64))
    first: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    rest: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    rest0: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    rest1: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    rest2: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    rest3: np.ndarray = field(default_factory=lambda: np.zeros((0, LAST_ALPHABET), dtype=np.int64))
    # Per kind: (k, alphabet) 1 where a symbol has no code, and the tables themselves.
    missing: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)
    tables: dict[str, tuple[HuffmanTable, ...]] = field(init=False, repr=False, compare=False)
    # Per number of other-AC tables, the tables of each PLANE_KINDS row padded to
    # (rows, k, LAST_ALPHABET), and how many each row has: what the table choice kernel reads.
    plane_stacks: dict[int, tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lengths = {kind: getattr(self, kind) for kind in SLOTS}
        object.__setattr__(self, "missing", {k: (v == 0).astype(np.int64) for k, v in lengths.items()})
        object.__setattr__(self, "tables", {k: tuple(table_from_lengths(row) for row in v) for k, v in lengths.items()})
        stacks = {n: _stacked_lengths([lengths[kind] for kind in kinds]) for n, kinds in PLANE_KINDS.items()}
        object.__setattr__(self, "plane_stacks", stacks)

    def table(self, kind: str, ref: int) -> HuffmanTable:
        """The table of reference ``ref`` (>= 1); CorruptStreamError if the set has no such table."""
        tables = self.tables[kind]
        if not 1 <= ref <= len(tables):
            raise CorruptStreamError(
                f"plane references static {kind.upper()} table {ref - 1}, the profile has {len(tables)}"
            )
        return tables[ref - 1]


def _stacked_lengths(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Tables of several kinds, padded into one (kinds, k, LAST_ALPHABET) array, and how
    many each kind has."""
    stacked = np.zeros((len(rows), max(len(row) for row in rows), LAST_ALPHABET), dtype=np.int64)
    for i, row in enumerate(rows):
        stacked[i, : len(row), : row.shape[1]] = row
    return stacked, np.array([len(row) for row in rows], dtype=np.int64)


EXPLICIT_REFS = TableRefs()  # both tables explicit: every plane of an encoder without static tables
EXPLICIT_JOINT_REFS = JointRefs()
NO_STATIC = PlaneStatic(np.zeros((0, DC_ALPHABET), dtype=np.int64), np.zeros((0, AC_ALPHABET), dtype=np.int64))


def full_lengths(table: HuffmanTable, kind: str) -> np.ndarray:
    """int64 code length of every symbol of the ``kind`` alphabet (0 = no code)."""
    lengths = np.zeros(ALPHABETS[kind], dtype=np.int64)
    lengths[table.min_symbol : table.min_symbol + len(table.lengths)] = table.lengths
    return lengths


def _slot_lengths(table: HuffmanTable, kind: str) -> np.ndarray:
    lengths = full_lengths(table, kind)
    if np.count_nonzero(lengths[SLOTS[kind]]) != np.count_nonzero(lengths):
        raise ValueError(f"{kind} table holds a symbol outside the block syntax")
    return lengths[SLOTS[kind]]


def compact_bits(table: HuffmanTable, kind: str) -> int:
    """Bits of the compact coding of ``table`` before padding (rate control calls this
    for every table of every pass: a few operations on the used symbols only)."""
    used = np.flatnonzero(table.lengths)
    if used.size == 0:
        return COUNT_BITS[kind]
    # Python lists: min and max of a few dozen values cost less than NumPy reductions.
    slots = SLOT_OF[kind][used + table.min_symbol].tolist()
    if min(slots) < 0:
        raise ValueError(f"{kind} table holds a symbol outside the block syntax")
    lengths = table.lengths[used].tolist()
    spread = max(lengths) - min(lengths)
    return COUNT_BITS[kind] + 2 * _LENGTH_BITS + max(slots) + 1 + len(lengths) * spread.bit_length()


def compact_size(table: HuffmanTable, kind: str) -> int:
    """Bytes of the compact coding of ``table``."""
    return (compact_bits(table, kind) + 7) // 8


def serialize_compact(table: HuffmanTable, kind: str) -> bytes:
    """The compact coding of ``table`` (module docstring)."""
    slot_lengths = _slot_lengths(table, kind)
    used = np.flatnonzero(slot_lengths)
    count = int(used[-1]) + 1 if used.size else 0
    # MSB-first fields appended to one Python integer (the encoder writes a table per plane).
    value, nbits = count, COUNT_BITS[kind]
    if count:
        low, high = int(slot_lengths[used].min()), int(slot_lengths[used].max())
        width = (high - low).bit_length()
        value = (value << _LENGTH_BITS | low) << _LENGTH_BITS | high
        nbits += 2 * _LENGTH_BITS
        for length in slot_lengths[:count].tolist():
            if length:
                value = value << (width + 1) | 1 << width | length - low
                nbits += width + 1
            else:
                value <<= 1
                nbits += 1
    padding = -nbits % 8
    return (value << padding).to_bytes((nbits + padding) // 8, "big")


class _BitReader:
    """MSB-first reader over ``data[offset:]`` that reports running out as corruption."""

    def __init__(self, data: bytes | memoryview, offset: int, what: str) -> None:
        self.data, self.start, self.pos, self.what = data, offset, 0, what

    def take(self, n: int) -> int:
        value = 0
        for _ in range(n):
            index = self.start + self.pos // 8
            if index >= len(self.data):
                raise CorruptStreamError(f"stream ends inside the compact {self.what}")
            value = value << 1 | (self.data[index] >> (7 - self.pos % 8)) & 1
            self.pos += 1
        return value

    def finish(self) -> int:
        """Check the padding bits and return the offset after the table."""
        if self.pos % 8 and self.take(8 - self.pos % 8):
            raise CorruptStreamError(f"padding bits of the compact {self.what} are not zero")
        return self.start + self.pos // 8


def parse_compact(data: bytes | memoryview, offset: int, kind: str) -> tuple[HuffmanTable, int]:
    """Read and validate a compact ``kind`` table at ``offset``; the table and the offset after it."""
    what = f"{kind.upper()} table"
    reader = _BitReader(data, offset, what)
    slots = SLOTS[kind]
    count = reader.take(COUNT_BITS[kind])
    lengths = np.zeros(ALPHABETS[kind], dtype=np.uint8)
    if count:
        if count > len(slots):
            raise CorruptStreamError(f"compact {what} codes {count} slots, the {kind} alphabet has {len(slots)}")
        low, high = reader.take(_LENGTH_BITS), reader.take(_LENGTH_BITS)
        if not 1 <= low <= high <= MAX_CODE_LENGTH:
            raise CorruptStreamError(f"compact {what} code lengths {low}..{high} are outside 1..{MAX_CODE_LENGTH}")
        width = (high - low).bit_length()
        for slot in slots[:count]:
            if reader.take(1):
                length = low + reader.take(width)
                if length > high:
                    raise CorruptStreamError(f"compact {what} has a code length {length} above its maximum {high}")
                lengths[slot] = length
        if lengths[slots[count - 1]] == 0:
            raise CorruptStreamError(f"the last coded slot of the compact {what} is unused")
        if not fits_kraft(lengths):
            raise CorruptStreamError(f"compact {what} code lengths violate the Kraft inequality")
    return table_from_lengths(lengths), reader.finish()


def choose_table(hist: np.ndarray, explicit: HuffmanTable, kind: str, static: PlaneStatic) -> tuple[int, HuffmanTable]:
    """(reference, table) with the fewest exact bits for ``hist``: the explicit table
    (optimal for ``hist``) with its compact coding, or a static ``kind`` table of
    ``static`` that codes every symbol of ``hist``. Ties: explicit, then the lower index."""
    ref, table, _ = _cheaper(hist, explicit, kind, static, *_best_static(hist, kind, static))
    return ref, table


def _cheaper(
    hist: np.ndarray, explicit: HuffmanTable, kind: str, static: PlaneStatic, best: int | None, bits: int
) -> tuple[int, HuffmanTable, int]:
    """:func:`choose_table`, and the chosen table's code bits, given the best static
    table's (index, code bits)."""
    span = hist[explicit.min_symbol : explicit.min_symbol + len(explicit.lengths)]
    explicit_bits = int(np.dot(span, explicit.lengths))
    if best is None or bits >= 8 * compact_size(explicit, kind) + explicit_bits:
        return EXPLICIT, explicit, explicit_bits
    return best + 1, static.tables[kind][best], bits


def _best_static(hist: np.ndarray, kind: str, static: PlaneStatic) -> tuple[int | None, int]:
    """(index, code bits) of the static ``kind`` table that codes ``hist`` in the fewest
    bits (ties: the lower index); index None if the set has none that codes every symbol."""
    lengths = getattr(static, kind)
    if not len(lengths):
        return None, 0
    bits = lengths @ hist
    bits[static.missing[kind] @ hist > 0] = _NO_CODE  # a used symbol without a code
    best = int(np.argmin(bits))
    return (best, int(bits[best])) if bits[best] != _NO_CODE else (None, 0)


def choose_tables(
    dc_hist: np.ndarray, ac_hist: np.ndarray, explicit: PlaneTables, static: PlaneStatic
) -> tuple[TableRefs, PlaneTables]:
    """The cheapest reference of each of a plane's two tables (:func:`choose_table`)."""
    dc_ref, dc = choose_table(dc_hist, explicit.dc, "dc", static)
    ac_ref, ac = choose_table(ac_hist, explicit.ac, "ac", static)
    return TableRefs(dc_ref, ac_ref), PlaneTables(dc, ac)


@numba.njit(cache=True)
def _static_choice_kernel(hists, lengths, counts, slot_of, count_bits, choices, bounds):
    """Per row t of ``hists`` (non-negative): into ``choices[t]`` the (index or -1, code
    bits) of the static table of ``lengths[t, :counts[t]]`` that codes it in the fewest
    bits (ties: the lower index; -1 if none codes every counted symbol), and into
    ``bounds[t]`` bits under which no explicit table codes it (table and codes): its
    compact coding has at least the count, the length range and a bit per slot up to
    the last used one, in whole bytes, and a prefix code takes at least 1 bit per
    symbol and the histogram's entropy. False if a counted symbol has no slot."""
    used = np.empty(hists.shape[1], np.int64)  # the row's counted symbols
    for t in range(hists.shape[0]):
        n, last_slot, total = 0, -1, 0
        for a in range(hists.shape[1]):
            if hists[t, a] > 0:
                if slot_of[t, a] < 0:
                    return False
                used[n] = a
                n += 1
                last_slot = max(last_slot, slot_of[t, a])
                total += hists[t, a]
        choices[t, 0] = -1
        choices[t, 1] = 0
        for k in range(counts[t]):
            bits = 0
            for i in range(n):
                if lengths[t, k, used[i]] == 0:
                    bits = -1  # a counted symbol without a code
                    break
                bits += lengths[t, k, used[i]] * hists[t, used[i]]
            if bits >= 0 and (choices[t, 0] < 0 or bits < choices[t, 1]):
                choices[t, 0] = k
                choices[t, 1] = bits
        entropy = 0.0
        for i in range(n):
            entropy += hists[t, used[i]] * math.log2(total / hists[t, used[i]])
        table_bits = count_bits[t] + 2 * _LENGTH_BITS + last_slot + 1
        bounds[t] = 8 * ((table_bits + 7) // 8) + max(float(total), entropy * (1 - 1e-9)) if n else count_bits[t]
    return True


@numba.njit(cache=True)
def _explicit_costs_kernel(hists, rows, slot_of, count_bits, lengths, codes, costs, work):
    """For each row r of ``rows``: the optimal code lengths of ``hists[r]`` into
    ``lengths[r]`` (zeros on entry; huffman.code_lengths_into with the ``work`` buffers),
    their canonical codes into ``codes[r]`` (HuffmanTable.canonical_codes: by length, then
    symbol), and into ``costs[r]`` the bits of their compact coding in whole bytes and
    the code bits of ``hists[r]`` (compact_bits and _cheaper's sum, without a table
    object)."""
    used, order, weight, parent, per_length = work
    next_code = np.empty(MAX_CODE_LENGTH + 1, np.int64)
    for i in range(rows.shape[0]):
        r = rows[i]
        code_lengths_into(hists[r], used, order, weight, parent, per_length, lengths[r])
        n, last_slot, low, high, bits = 0, -1, MAX_CODE_LENGTH, 0, 0
        for length in range(MAX_CODE_LENGTH + 1):
            per_length[length] = 0
        for a in range(hists.shape[1]):
            length = np.int64(lengths[r, a])
            if length > 0:
                n += 1
                last_slot = max(last_slot, slot_of[r, a])
                low = min(low, length)
                high = max(high, length)
                bits += length * hists[r, a]
                per_length[length] += 1
        table_bits = count_bits[r]
        if n:
            width = 0
            while (high - low) >> width:
                width += 1
            table_bits += 2 * _LENGTH_BITS + last_slot + 1 + n * width
        costs[r, 0] = 8 * ((table_bits + 7) // 8)
        costs[r, 1] = bits
        code = 0
        next_code[0] = 0
        for length in range(1, MAX_CODE_LENGTH + 1):
            code = (code + per_length[length - 1]) << 1
            next_code[length] = code
        for a in range(hists.shape[1]):
            length = np.int64(lengths[r, a])
            if length > 0:
                codes[r, a] = next_code[length]
                next_code[length] += 1


def _cheapest_tables(
    hists: np.ndarray, kinds: tuple[str, ...], stack: tuple[np.ndarray, ...], slot_of: np.ndarray, static: PlaneStatic
) -> list[tuple[int, HuffmanTable, int]]:
    """:func:`choose_table` for every row of ``hists`` (a ``kinds`` table each, padded to
    one alphabet; ``stack``: the static tables as PlaneStatic.plane_stacks has them), and
    the chosen table's code bits. One kernel call sizes the static tables and bounds the
    explicit ones of all the rows; a second builds the optimal tables of the rows where
    the bound says they may win and sizes them: usually a static table beats any
    explicit one, and the encoder chooses five or eight tables per plane on every rate
    control pass. Only the chosen explicit tables become table objects."""
    if hists.size and hists.min() < 0:
        raise ValueError("symbol counts must be non-negative")
    choices = np.empty((len(hists), 2), dtype=np.int64)
    bounds = np.empty(len(hists))
    count_bits = np.array([COUNT_BITS[kind] for kind in kinds], dtype=np.int64)
    if not _static_choice_kernel(hists, *stack, slot_of, count_bits, choices, bounds):
        raise ValueError("a counted symbol is outside the block syntax")
    static_wins = (choices[:, 0] >= 0) & (choices[:, 1] < bounds)
    rows = np.flatnonzero(~static_wins)
    lengths = np.zeros(hists.shape, dtype=np.uint8)
    codes = np.zeros(hists.shape, dtype=np.uint32)
    costs = np.zeros((len(hists), 2), dtype=np.int64)
    if rows.size:
        _explicit_costs_kernel(hists, rows, slot_of, count_bits, lengths, codes, costs, huffman_work(hists.shape[1]))
    chosen = []
    for t, (kind, (best, bits), (table_bits, explicit_bits)) in enumerate(zip(kinds, choices.tolist(), costs.tolist())):
        if static_wins[t] or (best >= 0 and bits < table_bits + explicit_bits):
            chosen.append((best + 1, static.tables[kind][best], bits))
        else:
            chosen.append((EXPLICIT, table_from_lengths(lengths[t], codes[t]), explicit_bits))
    return chosen



def cheapest_table(hist: np.ndarray, kind: str, static: PlaneStatic) -> tuple[int, HuffmanTable, int]:
    """:func:`choose_table` and the chosen table's code bits for ``hist``, the optimal
    table built only when it may win (:func:`_cheapest_tables` of one row)."""
    hist = np.asarray(hist, dtype=np.int64)[None]
    lengths = getattr(static, kind)[None]
    stack = (np.ascontiguousarray(lengths, dtype=np.int64), np.array([lengths.shape[1]]))
    return _cheapest_tables(hist, (kind,), stack, SLOT_OF[kind][None], static)[0]


def choose_joint_tables(counts: JointCounts, static: PlaneStatic) -> tuple[JointRefs, JointTables, int]:
    """The cheapest reference of each of a version 5 or 6 plane's tables
    (:func:`cheapest_table`; the plane's version is its number of other-AC histograms)
    and the code bits of all the plane's symbols with them: a context no block uses has an
    empty explicit table (one byte), or any static table (nothing) when the set has one."""
    rest_tables = len(counts.rest)
    shapes = (np.shape(counts.joint), np.shape(counts.first), np.shape(counts.rest))
    if rest_tables not in PLANE_KINDS or shapes != (
        (CONTEXTS, JOINT_ALPHABET), (LAST_ALPHABET,), (rest_tables, LAST_ALPHABET)
    ):
        raise ValueError(f"joint counts of shapes {shapes} do not have the version 5 or 6 alphabets")
    kinds = PLANE_KINDS[rest_tables]
    hists = np.zeros((len(kinds), LAST_ALPHABET), dtype=np.int64)
    hists[:CONTEXTS, :JOINT_ALPHABET] = counts.joint
    hists[CONTEXTS] = counts.first
    hists[CONTEXTS + 1 :] = counts.rest
    chosen = _cheapest_tables(hists, kinds, static.plane_stacks[rest_tables], _PLANE_SLOT_OF[rest_tables], static)
    refs = [ref for ref, _, _ in chosen]
    tables = [table for _, table, _ in chosen]
    joint_refs = JointRefs(tuple(refs[:CONTEXTS]), refs[CONTEXTS], tuple(refs[CONTEXTS + 1 :]))
    joint_tables = JointTables(tuple(tables[:CONTEXTS]), tables[CONTEXTS], tuple(tables[CONTEXTS + 1 :]))
    return joint_refs, joint_tables, sum(bits for _, _, bits in chosen)


def joint_tables_size(refs: JointRefs, tables: JointTables) -> int:
    """Bytes of a version 5 or 6 plane's table references and explicit tables."""
    explicit = [
        compact_size(table, kind)
        for (kind, ref), table in zip(refs.kinds, (*tables.joint, tables.first, *tables.rest))
        if ref == EXPLICIT
    ]
    return joint_refs_bytes(len(refs.rest)) + sum(explicit)


def segment_tables_size(refs: TableRefs, tables: PlaneTables) -> int:
    """Bytes of a version 4 plane's table references and explicit tables."""
    size = 1
    if refs.dc == EXPLICIT:
        size += compact_size(tables.dc, "dc")
    if refs.ac == EXPLICIT:
        size += compact_size(tables.ac, "ac")
    return size
