"""A transform profile's trained static Huffman tables (format versions 4 to 6).

A version 4, 5 or 6 plane may reference one of these instead of sending its table
(tablecoding.py). A set is trained offline on the training split (export/
train_tables.py) and stored as an npz of code lengths over whole alphabets, one array
per (table kind, plane kind), each (k, alphabet) uint8 with k <= 15: a version 4 set
has ``dc_luma``, ``ac_luma``, ``dc_chroma``, ``ac_chroma``; a version 5 set
``joint_luma``, ``first_luma``, ``rest_luma`` and the same for chroma (its AC tables
are over version 5's alphabet with the last flag, so they differ from version 4's); a
version 6 set ``joint_luma``, ``first_luma``, ``rest0_luma`` .. ``rest3_luma`` (the other
AC tables of each start context) and the same for chroma. The three are separate
artifacts, so that retraining one set keeps the streams of the other versions decodable. Every
table is validated on load (lengths, Kraft inequality, symbols the block syntax can
have), so a damaged or foreign file is a ModelError, never a wrong decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bitio import MAX_CODE_LENGTH
from .errors import CorruptStreamError, ModelError
from .huffman import HuffmanTable, fits_kraft
from .models import artifact_cache, manifest_artifact
from .jointdc import CONTEXTS, JointTables
from .jointdc import check_tables as check_joint_tables
from .runlength import PlaneTables, check_tables
from .tablecoding import ALPHABETS, MAX_STATIC_TABLES, REST_KINDS, PlaneStatic, table_from_lengths

KIND = "static-huffman-tables"
PLANE_KINDS = ("luma", "chroma")
VERSION_4_KINDS = ("dc", "ac")  # table kinds of a version 4 set
VERSION_5_KINDS = ("joint", "first", "rest")  # of a version 5 set
VERSION_6_KINDS = ("joint", "first", *REST_KINDS[4])  # and of a version 6 set


@dataclass(frozen=True)
class StaticTables:
    name: str
    luma: PlaneStatic
    chroma: PlaneStatic
    sha256: str

    def for_plane(self, plane_index: int) -> PlaneStatic:
        """Plane 0 (luma or gray) uses the luma tables, both chroma planes the chroma ones."""
        return self.luma if plane_index == 0 else self.chroma


def array_name(table_kind: str, plane_kind: str) -> str:
    return f"{table_kind}_{plane_kind}"


def check_lengths(lengths: np.ndarray, table_kind: str, what: str) -> None:
    """ModelError unless ``lengths`` is a complete-enough, valid table of ``table_kind``."""
    lengths = np.asarray(lengths)
    if lengths.shape != (ALPHABETS[table_kind],) or lengths.max(initial=0) > MAX_CODE_LENGTH:
        raise ModelError(f"{what}: expected {ALPHABETS[table_kind]} code lengths of at most {MAX_CODE_LENGTH} bits")
    if not lengths.any() or not fits_kraft(lengths):
        raise ModelError(f"{what}: no symbol, or code lengths that violate the Kraft inequality")
    table, empty = table_from_lengths(lengths), HuffmanTable.empty()
    try:
        if table_kind == "joint":
            check_joint_tables(JointTables((table,) * CONTEXTS, empty, (empty,)))
        elif table_kind in VERSION_5_KINDS + VERSION_6_KINDS:
            check_joint_tables(JointTables((empty,) * CONTEXTS, table, (table,)))
        else:
            check_tables(PlaneTables(table, empty) if table_kind == "dc" else PlaneTables(empty, table))
    except CorruptStreamError as exc:
        raise ModelError(f"{what}: {exc}") from None


def static_tables_from_arrays(
    name: str, arrays, sha256: str, table_kinds: tuple[str, ...] = VERSION_4_KINDS
) -> StaticTables:
    """A validated set of ``table_kinds`` from its npz arrays (a mapping of array name -> array)."""
    kinds = {}
    for plane_kind in PLANE_KINDS:
        parts = {}
        for table_kind in table_kinds:
            key = array_name(table_kind, plane_kind)
            if key not in arrays:
                raise ModelError(f"model '{name}' lacks '{key}'")
            tables = np.asarray(arrays[key])
            if tables.ndim != 2 or tables.shape[0] > MAX_STATIC_TABLES or tables.dtype != np.uint8:
                raise ModelError(f"model '{name}': '{key}' must be (k <= {MAX_STATIC_TABLES}, n) uint8")
            for k, lengths in enumerate(tables):
                check_lengths(lengths, table_kind, f"model '{name}' table {key}[{k}]")
            parts[table_kind] = tables.astype(np.int64)
        none = {kind: np.zeros((0, ALPHABETS[kind]), dtype=np.int64) for kind in ALPHABETS}
        kinds[plane_kind] = PlaneStatic(**{**none, **parts})
    return StaticTables(name, kinds["luma"], kinds["chroma"], sha256)


@artifact_cache(maxsize=4)
def load_static_tables(
    name: str, directory: Path | None = None, table_kinds: tuple[str, ...] = VERSION_4_KINDS
) -> StaticTables:
    """Load a static table set of ``table_kinds`` by manifest name, refusing any hash,
    shape or table defect."""
    path, sha256 = manifest_artifact(name, KIND, "static table set", directory)
    with np.load(path, allow_pickle=False) as arrays:
        return static_tables_from_arrays(name, {key: arrays[key] for key in arrays.files}, sha256, table_kinds)
