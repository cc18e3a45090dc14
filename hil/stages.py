"""Per-stage timing of the codec's real stage functions, without copying the pipeline.

While :func:`timed_stages` is active, each stage function named in :data:`STAGES` is
replaced, in its own module and in every ``firmware_py`` module that imported it by
name, by a wrapper that adds its *exclusive* time (its own time minus that of timed
stages it calls) to the stage's total. The encoder and decoder run unchanged, so
whatever path they take is what gets timed; time outside every stage is reported as
``other`` (glue code: masks, array copies). A wrapper costs about a microsecond per
call, against milliseconds per stage call.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# (stage, "module:attribute"): the stage functions of both stream formats (v1: block
# classes and per-frame Huffman tables; v2: transform, dead zone, DC prediction,
# run-length Huffman, restoration; v3: half-resolution resampling; v4: table choice; v5:
# joint DC symbols; the ground's post-filter) and of packet mode, in pipeline order. Encode and decode share
# stage names. A target missing from the codec is reported, not fatal.
STAGES: tuple[tuple[str, str], ...] = (
    ("resampling", "firmware_py.codec.resample:downsample"),
    ("colour", "firmware_py.codec.color:rgb_to_planes"),
    ("blocking", "firmware_py.codec.blocking:plane_to_blocks"),
    ("classification", "firmware_py.codec.classify:classify"),
    ("transform", "firmware_py.codec.backends.base:Backend.analyse"),
    ("transform", "firmware_py.codec.transform:analyse"),
    # v2 with the default backend: blocking, transform, dead-zone quantization and AC
    # symbol counts in one fused kernel pass (blockcoder), reported as the transform.
    ("transform", "firmware_py.codec.blockcoder:BlockCoefficients.quantize"),
    ("quantization", "firmware_py.codec.quantize:quantize"),
    ("quantization", "firmware_py.codec.deadzone:quantize"),
    ("quantization", "firmware_py.codec.levels:quantize_blocks"),
    ("prediction", "firmware_py.codec.prediction:dc_residuals"),
    ("huffman_tables", "firmware_py.codec.huffman:HuffmanTable.from_symbols"),
    ("huffman_tables", "firmware_py.codec.runlength:symbol_counts"),
    ("huffman_tables", "firmware_py.codec.runlength:tables_for"),
    ("huffman_tables", "firmware_py.codec.tablecoding:choose_tables"),
    ("huffman_tables", "firmware_py.codec.jointdc:plane_counts"),
    ("huffman_tables", "firmware_py.codec.tablecoding:choose_joint_tables"),
    ("huffman_tables", "firmware_py.codec.packet_tables:table_set"),
    ("huffman_tables", "firmware_py.codec.packet_tables:slice_tables"),
    ("huffman_tables", "firmware_py.codec.slices:block_costs"),
    ("huffman_coding", "firmware_py.codec.huffman:pack"),
    ("huffman_coding", "firmware_py.codec.runlength:pack"),
    ("huffman_coding", "firmware_py.codec.jointdc:pack"),
    ("huffman_coding", "firmware_py.codec.slices:pack_slices"),
    ("bitstream", "firmware_py.codec.bitstream:write_stream"),
    ("bitstream", "firmware_py.codec.container_v2:write_stream"),
    ("packetization", "firmware_py.link.packets:encode_frame_packets"),
    ("packetization", "firmware_py.link.packets:build_packet"),
    ("framing", "firmware_py.link.framing:frame"),
    ("bitstream", "firmware_py.codec.bitstream:read_stream"),
    ("bitstream", "firmware_py.codec.container_v2:read_stream"),
    ("huffman_tables", "firmware_py.codec.huffman:HuffmanTable.parse"),
    ("huffman_coding", "firmware_py.codec.huffman:unpack"),
    ("huffman_coding", "firmware_py.codec.runlength:unpack"),
    ("huffman_coding", "firmware_py.codec.jointdc:unpack"),
    ("prediction", "firmware_py.codec.prediction:dc_levels"),
    ("quantization", "firmware_py.codec.quantize:dequantize"),
    ("restoration", "firmware_py.codec.restoration:restore"),
    ("transform", "firmware_py.codec.levels:synthesise_blocks"),
    ("transform", "firmware_py.codec.transform:synthesise"),
    ("blocking", "firmware_py.codec.blocking:blocks_to_plane"),
    ("restoration", "firmware_py.codec.restoration:deblock"),
    ("postfilter", "firmware_py.codec.postfilter:apply"),
    ("colour", "firmware_py.codec.color:planes_to_image"),
    ("resampling", "firmware_py.codec.resample:upsample"),
)
# Modules whose functions may hold a by-name reference to a stage function.
PATCHED_PACKAGES = ("firmware_py", "ground")
OTHER = "other"


@dataclass
class StageClock:
    """Exclusive seconds and call counts per stage, accumulated by the wrappers."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _open: list[float] = field(default_factory=list)  # time spent in timed callees, per open call

    def wrap(self, stage: str, func: Callable) -> Callable:
        @functools.wraps(func)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            self._open.append(0.0)
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._open.pop()
                self.seconds[stage] += elapsed - inner
                self.calls[stage] += 1
                if self._open:
                    self._open[-1] += elapsed

        timed.__wrapped_stage__ = stage
        return timed

    def breakdown(self, total_seconds: float) -> dict[str, float]:
        """Seconds per stage that ran, in pipeline order, plus ``other`` = total minus all stages."""
        order = list(dict.fromkeys(stage for stage, _ in STAGES))
        stages = {stage: self.seconds[stage] for stage in order if self.calls.get(stage)}
        stages[OTHER] = max(0.0, total_seconds - sum(stages.values()))
        return stages


def _resolve(target: str) -> tuple[object, str, object]:
    """(owner, attribute, raw value) of 'package.module:Class.attr' or 'package.module:func'."""
    module_name, _, path = target.partition(":")
    owner: object = importlib.import_module(module_name)
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    raw = vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)
    return owner, attribute, raw


def available_stages() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Stage targets that resolve here, and why each other one does not (e.g. link not built)."""
    found, missing = [], {}
    for stage, target in STAGES:
        try:
            _resolve(target)
        except (ImportError, AttributeError, KeyError) as exc:
            missing[target] = f"{type(exc).__name__}: {exc}"
        else:
            found.append((stage, target))
    return found, missing


def _by_name_references(func: object) -> list[tuple[object, str]]:
    """(module, name) of every loaded project module that holds ``func`` under a name."""
    holders = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(PATCHED_PACKAGES):
            continue
        for attribute, value in list(vars(module).items()):
            if value is func:
                holders.append((module, attribute))
    return holders


def _patch(clock: StageClock, stage: str, target: str) -> list[tuple[object, str, object]]:
    """Install the wrapper for one target; return (owner, attribute, original) to restore."""
    owner, attribute, raw = _resolve(target)
    if isinstance(raw, (classmethod, staticmethod)):
        replacement = type(raw)(clock.wrap(stage, raw.__func__))
        holders = [(owner, attribute)]
    else:
        replacement = clock.wrap(stage, raw)
        holders = _by_name_references(raw) if not isinstance(owner, type) else [(owner, attribute)]
    restore = []
    for holder, name in holders:
        restore.append((holder, name, vars(holder)[name]))
        setattr(holder, name, replacement)
    return restore


@contextmanager
def timed_stages() -> Iterator[StageClock]:
    """Time every available stage function until the block exits, then restore them all."""
    clock = StageClock()
    restore: list[tuple[object, str, object]] = []
    try:
        for stage, target in available_stages()[0]:
            restore += _patch(clock, stage, target)
        yield clock
    finally:
        for holder, name, original in reversed(restore):
            setattr(holder, name, original)
