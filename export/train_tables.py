"""Train the klt profile's static Huffman tables (tablecoding.py): the version 6 set
(joint DC, first AC symbol and, per start context, other AC symbol tables) the encoder
uses, or with ``--version 5`` the version 5 set (one other AC symbol table) and with
``--version 4`` the version 4 set (DC and AC tables) that older streams reference.

    python -m export.train_tables --out models

Symbol counts come from klt encodes of every Waterloo training image (never a test
image), as gray and, for colour images, as colour, rate-controlled to each bpp of
TRAIN_BPP with the encoder's own half-resolution rule; the encodes use no static table,
so the counts do not depend on an earlier set. Versions 4 and 5 are counted on version 5
encodes (version 4: the same levels coded as runlength.py codes them), version 6 on
version 6 encodes. Per
(table kind, plane kind) the histograms (one per plane; joint DC: one per plane and
context used) are clustered into ``--tables`` groups by Lloyd iterations on the code
bits themselves (each histogram goes to the table that codes it in the fewest bits;
each table is the optimal code of its histograms' pooled counts), starting from
quantile groups of their share of INITIAL_SYMBOL (AC: end-of-block, DC: a zero
residual, joint DC: a zero residual without AC levels, version 5 and 6 AC: a lone
size 1 level at coefficient 1, i.e. run 0, size 1, last). Every table gives every symbol
of the block syntax a code (pooled counts x PSEUDO_SCALE + 1), so a static table can
code any plane; the encoder still sends an explicit table whenever that is cheaper.

Writes models/klt-context-tables.npz (version 6; version 5: models/klt-joint-tables.npz;
version 4: models/klt-tables.npz; statictables.py describes them), its manifest entry,
and the klt profile's ``context_tables`` (``joint_tables``, ``static_tables``) key; every
other manifest entry is left as it is. Stream fingerprints name the set, so a set that
differs from the one in ``--out`` is not written (exit status 2, nothing changed) unless
``--replace-frozen`` is given (docs/MODELS.md, "Frozen artifacts").
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from export.manifest import REPLACE_FROZEN_FLAG, FrozenArtifactError, record_profile_model, write_frozen_artifact
from firmware_py import datasets, imageio
from firmware_py.codec import (
    container_v2,
    encoder_v2,
    huffman,
    jointdc,
    ratecontrol,
    runlength,
    statictables,
    tablecoding,
)
from firmware_py.codec.encoder import budget_bytes
from firmware_py.codec.models import file_sha256
from firmware_py.codec.profile_v2 import TransformProfile, get_transform_profile

PROFILE = "klt"
# Per set version: (model name, profile key, table kinds).
SETS = {
    4: ("klt-tables", "static_tables", statictables.VERSION_4_KINDS),
    5: ("klt-joint-tables", "joint_tables", statictables.VERSION_5_KINDS),
    6: ("klt-context-tables", "context_tables", statictables.VERSION_6_KINDS),
}
DEFAULT_VERSION = 6
# The stream version whose encodes a set is counted on.
CODING_VERSION = {4: container_v2.JOINT_VERSION, 5: container_v2.JOINT_VERSION, 6: container_v2.CONTEXT_VERSION}
INITIAL_SYMBOL = {
    "dc": 0,
    "ac": jointdc.EOB,
    "joint": 1,
    **{kind: jointdc.LAST + 1 for kind in tablecoding.ALPHABETS if kind not in ("dc", "ac", "joint")},
}
TRAIN_BPP = (0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3)
DEFAULT_TABLES = 4
PSEUDO_SCALE = 64
LLOYD_ITERATIONS = 12
COMMAND = "python -m export.train_tables --out models"


def explicit_profile() -> TransformProfile:
    """The installed klt profile without static tables: every plane gets its optimal table."""
    return replace(get_transform_profile(PROFILE), static_tables=None, joint_tables=None, context_tables=None)


def fitted_planes(
    image: np.ndarray, bpp: float, profile: TransformProfile, version: int = container_v2.CONTEXT_VERSION
) -> tuple[encoder_v2.TransformedFrame, float, list[encoder_v2.QuantizedPlane]]:
    """The frame, quality and quantized planes the encoder's rate control picks for
    ``bpp``, coding stream ``version`` (5 or 6)."""
    scale = encoder_v2.chosen_scale(profile, image, bpp, None)
    frame = replace(encoder_v2.transform_frame(image, profile, None, scale), version=version)
    encoder_v2.retain_coefficients(frame)
    budget = budget_bytes(frame.height * frame.width, bpp, None)
    quality, _ = ratecontrol.fit_quality(
        lambda q: encoder_v2.coded_size(frame, *encoder_v2.quantize_frame(frame, q)), budget
    )
    _, planes = encoder_v2.quantize_frame(frame, quality)
    return frame, quality, planes


def training_frames(paths: list[Path]) -> list[np.ndarray]:
    """Every image as gray, and colour images as colour too."""
    frames = []
    for path in paths:
        image = imageio.load_image(path)
        frames.append(imageio.load_image(path, gray=True))
        if image.ndim == 3:
            frames.append(image)
    return frames


def plane_histograms(plane: encoder_v2.QuantizedPlane, version: int) -> dict[str, list[np.ndarray]]:
    """Table kind -> the histograms a plane's ``version`` tables code."""
    if version == 4:
        dc, ac, _ = runlength.symbol_counts(plane.dc_residuals, plane.levels)
        return {"dc": [dc], "ac": [ac]}
    counts = plane.counts
    rest = zip(tablecoding.REST_KINDS[len(counts.rest)], counts.rest)
    return {"joint": [row for row in counts.joint if row.any()], "first": [counts.first], **{k: [h] for k, h in rest}}


def collect_counts(paths: list[Path], log, version: int = DEFAULT_VERSION) -> dict[tuple[str, str], np.ndarray]:
    """(table kind, plane kind) -> (histograms, alphabet) of the training encodes."""
    profile = explicit_profile()
    rows: dict[tuple[str, str], list[np.ndarray]] = {
        (t, p): [] for t in SETS[version][2] for p in statictables.PLANE_KINDS
    }
    for image in training_frames(paths):
        for bpp in TRAIN_BPP:
            _, _, planes = fitted_planes(image, bpp, profile, CODING_VERSION[version])
            for index, plane in enumerate(planes):
                plane_kind = "luma" if index == 0 else "chroma"
                for table_kind, hists in plane_histograms(plane, version).items():
                    rows[table_kind, plane_kind] += hists
        log(f"  counted {image.shape} at {len(TRAIN_BPP)} rates")
    return {key: np.array(value, dtype=np.int64) for key, value in rows.items()}


def table_lengths(pooled: np.ndarray, table_kind: str) -> np.ndarray:
    """Full-alphabet code lengths of pooled counts, every symbol of the syntax coded."""
    counts = np.zeros(tablecoding.ALPHABETS[table_kind], dtype=np.int64)
    slots = tablecoding.SLOTS[table_kind]
    counts[slots] = pooled[slots] * PSEUDO_SCALE + 1
    return huffman.code_lengths(counts).astype(np.int64)


def initial_groups(hists: np.ndarray, table_kind: str, k: int) -> np.ndarray:
    """Quantile groups of each histogram's share of its kind's INITIAL_SYMBOL."""
    share = hists[:, INITIAL_SYMBOL[table_kind]] / np.maximum(hists.sum(axis=1), 1)
    ranks = np.argsort(np.argsort(share, kind="stable"), kind="stable")
    return ranks * k // len(hists)


def cluster_tables(hists: np.ndarray, table_kind: str, k: int) -> np.ndarray:
    """(k', alphabet) uint8 lengths (k' <= k: empty groups are dropped) by Lloyd iterations."""
    groups = initial_groups(hists, table_kind, k)
    tables = np.zeros((0, hists.shape[1]), dtype=np.int64)
    for _ in range(LLOYD_ITERATIONS):
        tables = np.array([table_lengths(hists[groups == g].sum(axis=0), table_kind) for g in np.unique(groups)])
        new_groups = np.argmin(hists @ tables.T, axis=1)
        if np.array_equal(new_groups, groups):
            break
        groups = new_groups
    return tables.astype(np.uint8)


def plane_static(table_kind: str, tables: np.ndarray) -> tablecoding.PlaneStatic:
    """``tables`` as the static tables of ``table_kind``, none of the other kind."""
    rows = {kind: np.zeros((0, tablecoding.ALPHABETS[kind]), dtype=np.int64) for kind in tablecoding.ALPHABETS}
    rows[table_kind] = tables.astype(np.int64)
    return tablecoding.PlaneStatic(**rows)


def chosen_bits(hists: np.ndarray, table_kind: str, tables: np.ndarray) -> int:
    """Total table + code bits of the planes when the encoder chooses among ``tables``
    (the reference selector, the same for every choice, left out)."""
    static = plane_static(table_kind, tables)
    total = 0
    for hist in hists:
        explicit = tablecoding.table_from_lengths(huffman.code_lengths(hist))
        ref, table = tablecoding.choose_table(hist, explicit, table_kind, static)
        total += int(np.dot(hist, tablecoding.full_lengths(table, table_kind)))
        total += 8 * tablecoding.compact_size(explicit, table_kind) if ref == tablecoding.EXPLICIT else 0
    return total


def train(paths: list[Path], k: int, log, version: int = DEFAULT_VERSION) -> dict[str, np.ndarray]:
    """The npz arrays of a ``version`` static table set with up to ``k`` tables per (kind, plane kind)."""
    counts = collect_counts(paths, log, version)
    arrays = {}
    for (table_kind, plane_kind), hists in counts.items():
        tables = cluster_tables(hists, table_kind, k)
        none = chosen_bits(hists, table_kind, tables[:0])
        log(
            f"  {table_kind} {plane_kind}: {len(hists)} planes, {len(tables)} tables: "
            f"{none / 8:.0f} -> {chosen_bits(hists, table_kind, tables) / 8:.0f} bytes"
        )
        arrays[statictables.array_name(table_kind, plane_kind)] = tables
    return arrays


def save(
    out: Path, arrays: dict[str, np.ndarray], paths: list[Path], k: int, version: int, replace_frozen: bool = False
) -> dict:
    """Write the npz (FrozenArtifactError if that changes the set in ``out`` and not
    ``replace_frozen``) and return its manifest entry."""
    path = out / f"{SETS[version][0]}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_frozen_artifact(path, buffer.getvalue(), replace_frozen)
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "kind": statictables.KIND,
        "training": {
            "data": "waterloo training split (all but lena*, boat*, goldhill*), gray and colour klt encodes",
            "images": [p.name for p in paths],
            "bpp": list(TRAIN_BPP),
            "tables_per_kind": k,
            "command": COMMAND + ("" if version == DEFAULT_VERSION else f" --version {version}"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--tables", type=int, default=DEFAULT_TABLES, help="tables per (kind, plane kind), 1..15")
    parser.add_argument(
        "--version", type=int, choices=sorted(SETS), default=DEFAULT_VERSION, help="stream version of the set"
    )
    parser.add_argument(
        REPLACE_FROZEN_FLAG,
        action="store_true",
        help="write a set that differs from the one in --out (breaks its streams)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.tables <= tablecoding.MAX_STATIC_TABLES:
        parser.error(f"--tables must be 1..{tablecoding.MAX_STATIC_TABLES}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    paths = datasets.training_images()
    arrays = train(paths, args.tables, log, args.version)
    try:
        entry = save(args.out, arrays, paths, args.tables, args.version, args.replace_frozen)
    except FrozenArtifactError as error:
        log(f"export.train_tables: error: {error}")
        return 2
    model, key, _ = SETS[args.version]
    record_profile_model(args.out, PROFILE, key, model, entry)
    log(f"wrote {args.out / entry['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
