"""A transform profile's trained static Huffman tables (format version 4).

A version 4 plane may reference one of these instead of sending its table
(tablecoding.py). The set is trained offline on the training split (export/
train_tables.py) and stored as an npz of code lengths over the whole DC and AC
alphabets, one array per (table kind, plane kind): ``dc_luma``, ``ac_luma``,
``dc_chroma``, ``ac_chroma``, each (k, alphabet) uint8 with k <= 15. Every table is
validated on load (lengths, Kraft inequality, symbols the block syntax can have), so a
damaged or foreign file is a ModelError, never a wrong decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bitio import MAX_CODE_LENGTH
from .errors import CorruptStreamError, ModelError
from .huffman import HuffmanTable, fits_kraft
from .models import artifact_cache, manifest_artifact
from .runlength import PlaneTables, check_tables
from .tablecoding import ALPHABETS, MAX_STATIC_TABLES, PlaneStatic, table_from_lengths

KIND = "static-huffman-tables"
PLANE_KINDS = ("luma", "chroma")
TABLE_KINDS = ("dc", "ac")


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
        check_tables(PlaneTables(table, empty) if table_kind == "dc" else PlaneTables(empty, table))
    except CorruptStreamError as exc:
        raise ModelError(f"{what}: {exc}") from None


def static_tables_from_arrays(name: str, arrays, sha256: str) -> StaticTables:
    """A validated set from its npz arrays (a mapping of array name -> array)."""
    kinds = {}
    for plane_kind in PLANE_KINDS:
        parts = []
        for table_kind in TABLE_KINDS:
            key = array_name(table_kind, plane_kind)
            if key not in arrays:
                raise ModelError(f"model '{name}' lacks '{key}'")
            tables = np.asarray(arrays[key])
            if tables.ndim != 2 or tables.shape[0] > MAX_STATIC_TABLES or tables.dtype != np.uint8:
                raise ModelError(f"model '{name}': '{key}' must be (k <= {MAX_STATIC_TABLES}, n) uint8")
            for k, lengths in enumerate(tables):
                check_lengths(lengths, table_kind, f"model '{name}' table {key}[{k}]")
            parts.append(tables.astype(np.int64))
        kinds[plane_kind] = PlaneStatic(*parts)
    return StaticTables(name, kinds["luma"], kinds["chroma"], sha256)


@artifact_cache(maxsize=4)
def load_static_tables(name: str, directory: Path | None = None) -> StaticTables:
    """Load a static table set by manifest name, refusing any hash, shape or table defect."""
    path, sha256 = manifest_artifact(name, KIND, "static table set", directory)
    with np.load(path, allow_pickle=False) as arrays:
        return static_tables_from_arrays(name, {key: arrays[key] for key in arrays.files}, sha256)
