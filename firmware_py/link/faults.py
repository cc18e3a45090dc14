"""Fault injection: what a lossy serial/radio link does to packets and bytes, on purpose.

A ``FaultInjector`` applies configurable rates of drops, duplicates, reordering, bit
errors (a bit error rate on the bytes), truncation and garbage insertion, reproducibly
from a seed. It works on a list of packets (or of framed packets: a list of byte
strings whose boundaries it knows, so its report says exactly which ones arrived
intact), and on a raw byte stream (bit errors, garbage bursts, cuts, truncation).
Tests and the demo use it to show that the ground decoder uses every intact packet,
accepts no damaged one, and degrades gracefully.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Stream mode applies drop (a cut: a span of bytes lost) and garbage per block of this many bytes.
STREAM_BLOCK = 256


@dataclass(frozen=True)
class FaultConfig:
    """Rates of each fault; all probabilities in 0..1 except as noted."""

    drop: float = 0.0  # a packet is lost (stream: a span of up to STREAM_BLOCK bytes is cut out)
    duplicate: float = 0.0  # a packet arrives twice
    reorder: float = 0.0  # a packet is held back behind up to ``reorder_window`` later ones
    bit_error_rate: float = 0.0  # each bit is flipped with this probability
    truncate: float = 0.0  # a packet loses a random-length tail (stream: the stream does)
    garbage: float = 0.0  # random bytes (1..garbage_max) arrive before a packet / per STREAM_BLOCK
    reorder_window: int = 4
    garbage_max: int = 64
    seed: int = 0
    # Drop exactly ceil(drop * n) of n packets, chosen at random, instead of each with
    # probability ``drop``: a test "at 10% loss" then really loses 10% of a short frame.
    exact_drop: bool = False

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder", "bit_error_rate", "truncate", "garbage"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"fault rate {name}={value} is outside 0..1")
        if self.reorder_window < 1 or self.garbage_max < 1:
            raise ValueError("reorder_window and garbage_max must be at least 1")


@dataclass(frozen=True)
class Delivery:
    """One item that comes out of the injector: where it came from and whether it is intact."""

    data: bytes
    origin: int | None  # index of the input item, None for inserted garbage
    intact: bool  # byte-for-byte the input item


@dataclass
class FaultReport:
    deliveries: list[Delivery] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)

    @property
    def intact_origins(self) -> set[int]:
        """Input items of which at least one unmodified copy was delivered."""
        return {d.origin for d in self.deliveries if d.intact and d.origin is not None}

    @property
    def damaged(self) -> int:
        """Delivered items that are not an intact input item (garbage included)."""
        return sum(1 for d in self.deliveries if not d.intact)


class FaultInjector:
    """Applies a FaultConfig; deterministic for a given seed and sequence of calls."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    def flip_bits(self, data: bytes) -> bytes:
        """``data`` with each bit flipped with probability ``bit_error_rate``."""
        bits = 8 * len(data)
        count = int(self.rng.binomial(bits, self.config.bit_error_rate)) if bits else 0
        if count == 0:
            return bytes(data)
        out = np.frombuffer(data, dtype=np.uint8).copy()
        positions = self.rng.choice(bits, size=count, replace=False)
        np.bitwise_xor.at(out, positions // 8, (1 << (positions % 8)).astype(np.uint8))
        return out.tobytes()

    def garbage_bytes(self) -> bytes:
        size = int(self.rng.integers(1, self.config.garbage_max + 1))
        return self.rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    def packets(self, items: list[bytes]) -> tuple[list[bytes], FaultReport]:
        """Send a list of packets (or framed packets) through the faulty link."""
        cfg, rng = self.config, self.rng
        report = FaultReport()
        copies: list[tuple[int, bytes]] = []
        doomed = self._doomed(len(items))
        for index, item in enumerate(items):
            if index in doomed:
                report.dropped.append(index)
                continue
            copies.append((index, item))
            if rng.random() < cfg.duplicate:
                copies.append((index, item))
        deliveries = []
        for index, item in copies:
            data = self.flip_bits(item)
            if rng.random() < cfg.truncate and len(data) > 1:
                data = data[: int(rng.integers(1, len(data)))]
            deliveries.append(Delivery(data, index, data == items[index]))
        deliveries = self._reorder(deliveries)
        for delivery in deliveries:
            if rng.random() < cfg.garbage:
                report.deliveries.append(Delivery(self.garbage_bytes(), None, False))
            report.deliveries.append(delivery)
        return [d.data for d in report.deliveries], report

    def _doomed(self, count: int) -> set[int]:
        """Indices of the packets to drop."""
        if self.config.exact_drop:
            size = math.ceil(self.config.drop * count)
            return set(self.rng.choice(count, size=size, replace=False).tolist())
        return {i for i in range(count) if self.rng.random() < self.config.drop}

    def _reorder(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Hold some items back: each held item moves behind 1..reorder_window later ones."""
        keyed = []
        for position, delivery in enumerate(deliveries):
            delay = int(self.rng.integers(1, self.config.reorder_window + 1)) if self.rng.random() < self.config.reorder else 0
            keyed.append((position + delay + 0.5 * (delay > 0), position, delivery))
        return [delivery for *_, delivery in sorted(keyed, key=lambda k: (k[0], k[1]))]

    def stream(self, data: bytes) -> bytes:
        """Send a byte stream through the faulty link: cuts, garbage, bit errors, truncation."""
        cfg, rng = self.config, self.rng
        pieces = []
        for offset in range(0, len(data), STREAM_BLOCK):
            block = data[offset : offset + STREAM_BLOCK]
            if rng.random() < cfg.garbage:
                pieces.append(self.garbage_bytes())
            if rng.random() < cfg.drop:
                start = int(rng.integers(0, len(block)))
                stop = int(rng.integers(start + 1, len(block) + 1))
                block = block[:start] + block[stop:]
            pieces.append(block)
        out = self.flip_bits(b"".join(pieces))
        if out and rng.random() < cfg.truncate:
            out = out[: int(rng.integers(0, len(out)))]
        return out
