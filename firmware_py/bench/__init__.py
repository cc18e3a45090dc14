"""``qpv bench``: evaluation commands that write JSON, with tables and plots made from it."""

from __future__ import annotations

import argparse


def add_bench_parser(subparsers: argparse._SubParsersAction) -> None:
    from . import rd

    bench = subparsers.add_parser("bench", help="evaluate the codec against reference codecs")
    kinds = bench.add_subparsers(dest="bench", required=True)
    rd_parser = kinds.add_parser("rd", help="rate-distortion curves against JPEG, JPEG 2000 and WebP")
    rd.add_arguments(rd_parser)
    rd_parser.set_defaults(func=rd.run)
