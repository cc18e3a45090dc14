"""``qpv``: the one command line of the project.

Every subcommand prints one line on success. Anything wrong with the input (a bad
image, a corrupt stream, an impossible budget, a missing model) is one line on stderr
and exit code 2; files are written atomically, so a failed run never leaves half a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import imageio, metrics
from .fsutil import write_atomically
from .codec import DEFAULT_PROFILE, QpvError, decode, encode, read_header
from .codec.backends import BACKENDS, DEFAULT_BACKEND
from .codec.profiles import profile_by_id

EXIT_BAD_INPUT = 2


def read_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise QpvError(f"{path}: {exc.strerror or exc}") from None


def _describe(header, size: int) -> str:
    mode = "gray" if header.colour.name == "GRAY" else "colour 4:2:0"
    bpp = size * 8 / (header.width * header.height)
    return f"{header.width}x{header.height} {mode}, {size} bytes, {bpp:.4f} bpp"


def cmd_encode(args: argparse.Namespace) -> int:
    image = imageio.load_image(args.input, gray=args.gray)
    stream = encode(
        image, quality=args.quality, bpp=args.bpp, max_bytes=args.max_bytes, profile=args.profile, backend=args.backend
    )
    write_atomically(args.output, stream)
    header = read_header(stream)
    quality = metrics.psnr(image, decode(stream))
    print(f"{args.output}: {_describe(header, len(stream))}, PSNR {quality:.2f} dB, profile {args.profile}, backend {args.backend}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    stream = read_file(args.input)
    imageio.save_image(args.output, decode(stream))
    print(f"{args.output}: {_describe(read_header(stream), len(stream))}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    stream = read_file(args.input)
    header = read_header(stream)
    profile = profile_by_id(header.profile_id)
    name = profile.name if profile else "unknown"
    steps = "/".join(f"{s:g}" for s in header.steps)
    print(
        f"{args.input}: qpv format {header.version}, profile {name} (id {header.profile_id}), "
        f"{_describe(header, len(stream))}, steps {steps}, models {header.model_fingerprint.hex()}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qpv", description="Quick-preview image compressor for drones and CubeSats.")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="compress an image file to a .qpv stream")
    enc.add_argument("input", type=Path)
    enc.add_argument("-o", "--output", type=Path, required=True)
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, help="quantizer step scale: 1.0 = profile default, smaller = finer")
    rate.add_argument("--bpp", type=float, help="rate control: finest quality whose stream fits TARGET bits/pixel")
    rate.add_argument("--max-bytes", type=int, help="rate control: finest quality whose whole stream fits N bytes")
    enc.add_argument("--profile", default=DEFAULT_PROFILE, help="codec profile (default: %(default)s)")
    enc.add_argument(
        "--backend", default=DEFAULT_BACKEND, choices=BACKENDS, help="inference backend of the transform (docs/MODELS.md)"
    )
    enc.add_argument("--gray", action="store_true", help="code luma only, even for a colour input")
    enc.set_defaults(func=cmd_encode)

    dec = sub.add_parser("decode", help="decompress a .qpv stream to an image file")
    dec.add_argument("input", type=Path)
    dec.add_argument("-o", "--output", type=Path, required=True)
    dec.set_defaults(func=cmd_decode)

    info = sub.add_parser("info", help="print a stream's header")
    info.add_argument("input", type=Path)
    info.set_defaults(func=cmd_info)

    from .bench import add_bench_parser

    add_bench_parser(sub)
    from ground.receiver import add_ground_parser

    from .onboard.cli import add_onboard_parser

    add_onboard_parser(sub)
    add_ground_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (QpvError, ValueError, OSError) as exc:
        print(f"qpv: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
