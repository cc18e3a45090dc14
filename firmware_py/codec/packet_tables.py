"""Static Huffman tables of packet mode, derived from latent statistics trained offline.

A file stream carries its own Huffman tables, a few hundred bytes per frame. A radio
packet of 256 bytes that must decode on its own cannot: so packet mode codes with
tables both ends derive from the same trained statistics. ``export/packet_tables.py``
measures, on the Waterloo training split, the histogram of every latent (per plane
kind: luma or chroma, per block class, per latent position) and stores them as the
model artifact ``<profile>-packet-stats``. For a quantizer step the histogram is
folded into symbol counts and turned into a length-limited Huffman code; one artifact
serves every quality, exactly. Every symbol in the trained range has a code (counts
are smoothed by one), and an escape code followed by ``ESCAPE_BITS`` raw bits (two's
complement) codes any level outside it, so no frame is ever uncodable.

The statistics, the model weights and the profile's base steps together decide every
decoded pixel: ``packet_fingerprint`` names all three and travels in every frame
descriptor, so a ground station with other models refuses the frame instead of
decoding garbage.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from . import models
from .encoder import stream_steps
from .errors import ModelError, QpvError
from .huffman import MAX_CODE_LENGTH, BlockLayout, HuffmanTable, code_lengths
from .profiles import MAX_QUALITY, MIN_QUALITY, Profile, available_profiles, get_profile
from .quantize import MAX_LEVEL

PLANE_KINDS = ("luma", "chroma")
STATS_KIND = "latent-histograms"
# Top-level manifest table of the statistics artifacts, by profile name.
MANIFEST_SECTION = "packet_stats"
# Levels beyond the trained range are escaped: ESCAPE code + 15-bit two's complement,
# enough for every level the quantizer produces (|level| <= MAX_LEVEL = 2^14 - 1).
ESCAPE_BITS = 15
# Largest trained range a table spans (2 * 1023 + 2 slots); farther levels escape.
MAX_TABLE_RANGE = 1023
# Quality codes: one byte in the frame descriptor, quality = 2^((code - 128) / 32),
# i.e. MIN_QUALITY (1/16) .. MAX_QUALITY (16) in steps of 2.2%.
QUALITY_CODES = 256
QUALITY_CODE_ONE = 128
QUALITY_CODES_PER_OCTAVE = 32

assert (1 << (ESCAPE_BITS - 1)) > MAX_LEVEL


def stats_name(profile_name: str) -> str:
    """Name (file stem) of a profile's packet-mode statistics artifact."""
    return f"{profile_name}-packet-stats"


def packet_profiles() -> list[str]:
    """The profiles packet mode can send: those with packet statistics in the manifest.

    Packet mode codes each block's class and latents with static tables, which exist
    for the block-class profiles (format 1, e.g. ``seed``); the transform profiles
    (format 2, e.g. ``klt``) are file-mode only.
    """
    section = models.load_manifest(models.models_dir()).get(MANIFEST_SECTION, {})
    return [name for name in available_profiles() if name in section]


def quality_of_code(code: int) -> float:
    if not 0 <= code < QUALITY_CODES:
        raise ValueError(f"quality code {code} is outside 0..{QUALITY_CODES - 1}")
    return 2.0 ** ((code - QUALITY_CODE_ONE) / QUALITY_CODES_PER_OCTAVE)


def code_of_quality(quality: float) -> int:
    """The quality code nearest to a step scale (1.0 = the profile's default steps)."""
    if not (math.isfinite(quality) and MIN_QUALITY <= quality <= MAX_QUALITY):
        raise QpvError(f"quality {quality} is outside {MIN_QUALITY}..{MAX_QUALITY}")
    code = QUALITY_CODE_ONE + round(QUALITY_CODES_PER_OCTAVE * math.log2(quality))
    return min(max(code, 0), QUALITY_CODES - 1)


def plane_kind(plane_index: int) -> str:
    """Plane 0 is luma (or gray); planes 1 and 2 are the chroma planes of a colour frame."""
    return PLANE_KINDS[0] if plane_index == 0 else PLANE_KINDS[1]


def histogram_key(kind: str, block_class: int) -> str:
    """Array name of one (plane kind, block class) in the statistics artifact."""
    return f"{kind}_class{block_class}"


@dataclass(frozen=True)
class LatentStatistics:
    """Trained histograms: ``histograms[kind][c]`` is (latents of class c, bins) counts.

    Bin ``b`` holds latents in ``origin + b * bin_width`` .. ``+ bin_width``.
    """

    origin: float
    bin_width: float
    histograms: dict[str, tuple[np.ndarray, ...]]
    sha256: str

    def bin_centres(self) -> np.ndarray:
        bins = next(iter(self.histograms.values()))[0].shape[1]
        return self.origin + (np.arange(bins) + 0.5) * self.bin_width


@models.artifact_cache(maxsize=8)
def load_statistics(profile_name: str) -> LatentStatistics:
    """A profile's packet statistics, refused unless they match its hash and its models."""
    profile = get_profile(profile_name)
    directory = models.models_dir()
    name = stats_name(profile_name)
    entry = models.load_manifest(directory).get(MANIFEST_SECTION, {}).get(profile_name)
    if not isinstance(entry, dict) or entry.get("kind") != STATS_KIND:
        raise ModelError(
            f"profile '{profile_name}' has no packet-mode statistics in the model manifest "
            f"(packet mode sends {', '.join(packet_profiles()) or 'no profile'}; "
            "`python -m export.packet_tables` fits them for block-class profiles)"
        )
    if entry.get("fitted_for") != profile.fingerprint.hex():
        raise ModelError(
            f"'{name}' was fitted for models {entry.get('fitted_for')}, profile '{profile_name}' has "
            f"{profile.fingerprint.hex()}; run `python -m export.packet_tables`"
        )
    path, digest = models.verified_artifact(directory, entry, f"packet statistics '{name}'")
    layout = profile.layout
    with np.load(path, allow_pickle=False) as arrays:
        origin, bin_width = float(arrays["origin"]), float(arrays["bin_width"])
        histograms = {
            kind: tuple(_histogram(arrays, kind, c, k, name) for c, k in enumerate(layout.latents_per_class))
            for kind in PLANE_KINDS
        }
    if not (math.isfinite(origin) and math.isfinite(bin_width) and bin_width > 0):
        raise ModelError(f"'{name}': invalid histogram origin {origin} or bin width {bin_width}")
    return LatentStatistics(origin, bin_width, histograms, digest)


def _histogram(arrays, kind: str, block_class: int, latents: int, name: str) -> np.ndarray:
    key = histogram_key(kind, block_class)
    if key not in arrays:
        raise ModelError(f"'{name}' lacks the histogram '{key}'")
    counts = np.asarray(arrays[key])
    if counts.ndim != 2 or counts.shape[0] != latents or counts.dtype.kind not in "iu" or np.any(counts < 0):
        raise ModelError(f"'{name}': histogram '{key}' must be ({latents}, bins) non-negative integer counts")
    return counts.astype(np.int64)


def packet_fingerprint(profile: Profile) -> bytes:
    """4 bytes naming the models, base steps and packet statistics a packet decodes with."""
    statistics = load_statistics(profile.name)
    digest = hashlib.sha256(profile.fingerprint)
    digest.update(np.asarray(profile.base_steps, dtype="<f8").tobytes())
    digest.update(bytes.fromhex(statistics.sha256))
    return digest.digest()[:4]


def table_from_histogram(centres: np.ndarray, counts: np.ndarray, step: float) -> HuffmanTable:
    """Huffman code of the levels ``-R .. R`` plus an escape symbol ``R + 1``.

    R is the largest level the training data reaches at this step (capped at
    MAX_TABLE_RANGE); each level's count is its training count plus one.
    """
    levels = np.rint(centres / step).astype(np.int64)
    seen = levels[counts > 0]
    reach = int(np.abs(seen).max()) if seen.size else 0
    reach = min(reach, MAX_TABLE_RANGE)
    inside = np.abs(levels) <= reach
    slot_counts = np.ones(2 * reach + 2, dtype=np.int64)
    np.add.at(slot_counts, levels[inside] + reach, counts[inside])
    slot_counts[-1] += int(counts[~inside].sum())
    return HuffmanTable(-reach, code_lengths(slot_counts))


@dataclass(frozen=True)
class SliceArrays:
    """The tables flattened for the slice kernels; table ``t = class * max_latents + j``."""

    latents_per_class: np.ndarray  # (classes,)
    reach: np.ndarray  # (T,) R of each table: levels -R..R have codes
    escape: np.ndarray  # (T,) slot of the escape symbol (2R + 1)
    codes: np.ndarray  # (T, slots) canonical code of each slot (level + R)
    lengths: np.ndarray  # (T, slots) code length of each slot
    counts: np.ndarray  # (T, 16) codes of each length
    first: np.ndarray  # (T, 16) first code of each length
    ordered: np.ndarray  # (T, slots) slots in canonical order


@dataclass(frozen=True)
class SliceTables:
    """The static tables that code one plane kind's blocks at one quality code.

    ``tables[c][j]`` codes latent ``j`` of class-``c`` blocks: slot ``level + R`` for
    levels ``-R .. R``, and its last slot is the escape.
    """

    layout: BlockLayout
    steps: tuple[float, ...]
    tables: tuple[tuple[HuffmanTable, ...], ...]

    @functools.cached_property
    def arrays(self) -> SliceArrays:
        count = len(self.tables) * self.layout.max_latents
        width = max(len(table.lengths) for row in self.tables for table in row)
        arrays = SliceArrays(
            np.array(self.layout.latents_per_class, dtype=np.int64),
            np.zeros(count, dtype=np.int64),
            np.zeros(count, dtype=np.int64),
            np.zeros((count, width), dtype=np.int64),
            np.zeros((count, width), dtype=np.int64),
            np.zeros((count, MAX_CODE_LENGTH + 1), dtype=np.int64),
            np.zeros((count, MAX_CODE_LENGTH + 1), dtype=np.int64),
            np.zeros((count, width), dtype=np.int64),
        )
        for c, row in enumerate(self.tables):
            for j, table in enumerate(row):
                t, slots = c * self.layout.max_latents + j, len(table.lengths)
                counts, first, symbols = table.decoder_tables()
                arrays.reach[t], arrays.escape[t] = -table.min_symbol, slots - 1
                arrays.codes[t, :slots] = table.canonical_codes()
                arrays.lengths[t, :slots] = table.lengths
                arrays.counts[t], arrays.first[t] = counts, first
                arrays.ordered[t, : len(symbols)] = symbols - table.min_symbol
        return arrays


def _stack_arrays(parts: list[SliceArrays]) -> SliceArrays:
    """Table arrays of several kinds one after another (kind k's tables at k * T + t)."""
    width = max(part.codes.shape[1] for part in parts)

    def padded(name: str) -> np.ndarray:
        return np.concatenate([np.pad(getattr(p, name), ((0, 0), (0, width - getattr(p, name).shape[1]))) for p in parts])

    return SliceArrays(
        parts[0].latents_per_class,
        np.concatenate([p.reach for p in parts]),
        np.concatenate([p.escape for p in parts]),
        padded("codes"),
        padded("lengths"),
        np.concatenate([p.counts for p in parts]),
        np.concatenate([p.first for p in parts]),
        padded("ordered"),
    )


@dataclass(frozen=True)
class TableSet:
    """The tables of every plane kind at one quality code: ``kinds[k]`` codes the blocks of
    kind k (index into PLANE_KINDS). A slice may hold blocks of several planes, each
    block coded with its own plane kind's tables."""

    kinds: tuple[SliceTables, ...]

    @property
    def layout(self) -> BlockLayout:
        return self.kinds[0].layout

    @property
    def steps(self) -> tuple[float, ...]:
        return self.kinds[0].steps

    @functools.cached_property
    def arrays(self) -> SliceArrays:
        """Every kind's arrays stacked: table ``t = (kind * classes + class) * max_latents + j``."""
        return _stack_arrays([tables.arrays for tables in self.kinds])


def kind_index(plane_index: int) -> int:
    """Index into PLANE_KINDS (and TableSet.kinds) of a plane."""
    return PLANE_KINDS.index(plane_kind(plane_index))


@models.artifact_cache(maxsize=256)
def table_set(profile_name: str, quality_code: int) -> TableSet:
    """The tables of every plane kind of one profile at one quality code (cached)."""
    return TableSet(tuple(slice_tables(profile_name, quality_code, kind) for kind in PLANE_KINDS))


@models.artifact_cache(maxsize=512)
def slice_tables(profile_name: str, quality_code: int, kind: str) -> SliceTables:
    """The tables of one profile, quality code and plane kind (cached: both ends reuse them)."""
    profile = get_profile(profile_name)
    statistics = load_statistics(profile_name)
    steps = stream_steps(profile, quality_of_code(quality_code))
    centres = statistics.bin_centres()
    tables = tuple(
        tuple(table_from_histogram(centres, row, steps[c]) for row in statistics.histograms[kind][c])
        for c in range(profile.class_count)
    )
    return SliceTables(profile.layout, steps, tables)
