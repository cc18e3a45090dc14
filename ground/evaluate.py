"""Link evaluation: where the wire bytes go, and what faults cost in PSNR.

    python -m ground.evaluate [--images PATH ...] [--bpp 0.2] [--packet-size 256 128] [--seeds 10]

For each test image: encodes one frame into packets at a wire-byte budget of
``bpp``, reports the wire breakdown (slice payload, frame descriptors, header, CRC,
framing and escapes) and the PSNR against the whole-file codec at the same byte
budget, then sends the frame through the fault injector (10% packet loss, exactly;
a 1e-4 bit error rate on the framed bytes) with several seeds into a GroundDecoder
and reports the PSNR drop against the loss-free decode (mean and worst). Only test
images are used (the paper's three, Kodak, aerials), never to tune anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_py import datasets, imageio, metrics
from firmware_py.codec import decode, encode
from firmware_py.link import framing as framing_module
from firmware_py.link import packets as packet_format
from firmware_py.link.faults import FaultConfig, FaultInjector

from .assembler import GroundDecoder

SCENARIOS = {"loss 10%": dict(drop=0.1, exact_drop=True), "BER 1e-4": dict(bit_error_rate=1e-4)}


@dataclass(frozen=True)
class WireBreakdown:
    """Where the framed bytes of a frame's packets go."""

    packets: int
    wire: int
    payload: int  # slice bytes (block data, stop bits)
    descriptor: int  # frame descriptor copies
    header: int
    crc: int
    framing: int  # delimiters and KISS command bytes
    escapes: int  # bytes added by escaping / stuffing

    @property
    def overhead(self) -> float:
        """Header + CRC + framing (escapes included), as a share of the wire bytes."""
        return (self.header + self.crc + self.framing + self.escapes) / self.wire

    @property
    def descriptor_share(self) -> float:
        return self.descriptor / self.wire


def wire_breakdown(sent: list[bytes], framing: str) -> WireBreakdown:
    parsed = [packet_format.parse_packet(p) for p in sent]
    wire = packet_format.wire_bytes(sent, framing)
    delimiters = 3 if framing == "kiss" else 2
    return WireBreakdown(
        packets=len(sent),
        wire=wire,
        payload=sum(len(p.payload) for p in parsed),
        descriptor=sum(packet_format.DESCRIPTOR_SIZE for p in parsed if p.header.descriptor),
        header=packet_format.HEADER_SIZE * len(sent),
        crc=packet_format.CRC_SIZE * len(sent),
        framing=delimiters * len(sent),
        escapes=wire - sum(len(p) for p in sent) - delimiters * len(sent),
    )


def ground_decode(stream: bytes, stem: str) -> np.ndarray | None:
    with tempfile.TemporaryDirectory() as directory:
        ground = GroundDecoder(Path(directory))
        ground.feed(stream)
        ground.close()
        path = Path(directory) / f"{stem}.png"
        return imageio.load_image(path) if path.exists() else None


def evaluate_image(path: Path, bpp: float, packet_size: int, seeds: int, log) -> None:
    image = imageio.load_image(path)
    budget = int(bpp * image.shape[0] * image.shape[1] / 8)
    sent = packet_format.encode_frame_packets(image, source="EVAL", frame_id=1, packet_size=packet_size, max_wire_bytes=budget)
    wire = [framing_module.frame(p, "kiss") for p in sent]
    parts = wire_breakdown(sent, "kiss")
    clean = ground_decode(b"".join(wire), "EVAL-1")
    base = metrics.psnr(image, clean)
    file_mode = metrics.psnr(image, decode(encode(image, max_bytes=budget, profile=packet_format.PACKET_PROFILE)))
    log(
        f"{path.name} {packet_size}B: {parts.packets} packets, {parts.wire} wire bytes (budget {budget}); "
        f"header+CRC+framing {100 * parts.overhead:.2f}% (escapes {parts.escapes} B), descriptors "
        f"{100 * parts.descriptor_share:.2f}%; PSNR {base:.2f} dB (file mode at the same bytes {file_mode:.2f})"
    )
    for name, faults in SCENARIOS.items():
        drops, losses = [], []
        for seed in range(seeds):
            damaged, report = FaultInjector(FaultConfig(seed=seed, **faults)).packets(wire)
            out = ground_decode(b"".join(damaged), "EVAL-1")
            losses.append(1 - len(report.intact_origins) / len(sent))
            drops.append(base - metrics.psnr(image, out) if out is not None else float("inf"))
        log(
            f"    {name}: packets lost {100 * np.mean(losses):.1f}% mean, PSNR drop {np.mean(drops):.2f} dB mean, "
            f"{np.max(drops):.2f} dB worst of {seeds} seeds"
        )


def default_images() -> list[Path]:
    return datasets.paper_test_images() + datasets.image_set("kodak")[22:23] + datasets.image_set("aerials")[:2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ground.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, nargs="*", help="test images (default: lena2, boat, goldhill2, kodim23, two aerials)")
    parser.add_argument("--bpp", type=float, default=0.2, help="wire-byte budget in bits per pixel (default %(default)s)")
    parser.add_argument("--packet-size", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--seeds", type=int, default=10, help="fault seeds per scenario (default %(default)s)")
    args = parser.parse_args(argv)
    log = lambda message: print(message, flush=True)  # noqa: E731
    for size in args.packet_size:
        for path in args.images or default_images():
            evaluate_image(path, args.bpp, size, args.seeds, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
