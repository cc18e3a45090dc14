"""``qpv onboard``: one frame to a link (``--once``), or the daemon (``--config``).

Operator scripts depend on this contract:

    qpv onboard --once IN.png --link file:OUT.kiss [--packet-size 256] [--max-bytes N]
    qpv onboard --config onboard.toml [flags]

``--once`` with a ``file:`` link replaces OUT atomically with the framed packet
stream of the frame (a failed run leaves no half file); with a serial URL it sends
the stream once, paced to ``--baud``. ``--max-bytes`` bounds the bytes on the
wire: packet headers, CRCs and framing included.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import imageio
from ..eventlog import EventLog
from ..fsutil import write_atomically
from ..link.framing import FRAMINGS
from ..link.framing import frame as frame_packet
from ..link.packets import encode_frame_packets
from ..link.transport import file_path, open_link
from .config import POLICIES, load_config
from .daemon import Daemon

DEFAULT_STATION = "N0CALL"  # the placeholder callsign of amateur-radio software
DEFAULT_ONCE_BAUD = 115200


def add_onboard_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "onboard",
        help="stream frames as packets: one image (--once) or the daemon (--config)",
        description="Encode frames into quick-preview packets and send them over a serial/radio link.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", type=Path, metavar="IMAGE", help="send this one image and exit")
    mode.add_argument("--config", type=Path, metavar="TOML", help="run the daemon with this configuration")
    parser.add_argument("--link", help="pyserial URL or device path (/dev/serial0, socket://host:port) or file:PATH")
    parser.add_argument("--baud", type=int, help="UART baud rate; writes are paced to it")
    parser.add_argument("--pace-baud", type=int, help="pace to this rate instead (a radio's air rate)")
    parser.add_argument("--packet-size", type=int, help="bytes per packet, header and CRC included (default 256)")
    parser.add_argument("--max-bytes", type=int, help="wire bytes per frame: packets, CRCs and framing included")
    parser.add_argument("--framing", choices=FRAMINGS, help="byte framing on the link (default kiss)")
    parser.add_argument("--station", help=f"source id in the packets (--once default {DEFAULT_STATION})")
    once = parser.add_argument_group("--once only")
    parser.add_argument("--quality", type=float, help="fixed quantizer scale instead of a byte budget")
    parser.add_argument("--profile", help="codec profile")
    parser.add_argument("--gray", action="store_true", default=None, help="code luma only")
    once.add_argument("--frame-id", type=int, help="frame id in the packets (default 0)")
    daemon = parser.add_argument_group("daemon only (override the configuration file)")
    daemon.add_argument("--spool", type=Path, help="spool directory")
    source = daemon.add_mutually_exclusive_group()
    source.add_argument("--watch", type=Path, metavar="DIR", help="take frames from this inbox directory")
    source.add_argument("--synthetic", action="store_true", help="send a moving test pattern")
    daemon.add_argument("--interval", type=float, help="seconds per frame (capture cadence and budget)")
    daemon.add_argument("--policy", choices=POLICIES, help="send-queue policy")
    parser.set_defaults(func=run_onboard)


DAEMON_ONLY = ("spool", "watch", "synthetic", "interval", "policy")


def run_onboard(args: argparse.Namespace) -> int:
    if args.once is not None:
        given = [name for name in DAEMON_ONLY if getattr(args, name) not in (None, False)]
        if given:
            raise ValueError(f"--{given[0]} is a daemon option (--config), not for --once")
        return send_once(args)
    if args.frame_id is not None:
        raise ValueError("--frame-id is for --once; the daemon allocates frame ids itself")
    return run_daemon(args)


def send_once(args: argparse.Namespace) -> int:
    if args.link is None:
        raise ValueError("--once needs --link (file:OUT.kiss or a serial URL)")
    station = args.station or DEFAULT_STATION
    framing = args.framing or "kiss"
    frame_id = args.frame_id or 0
    image = imageio.load_image(args.once, gray=bool(args.gray))
    packets = encode_frame_packets(
        image,
        source=station,
        frame_id=frame_id,
        packet_size=args.packet_size or 256,
        max_wire_bytes=args.max_bytes,
        quality=args.quality,
        profile=args.profile,
        framing=framing,
    )
    stream = b"".join(frame_packet(p, framing) for p in packets)
    path = file_path(args.link)
    if path is not None:
        write_atomically(path, stream)
    else:
        baud = args.baud or DEFAULT_ONCE_BAUD
        with open_link(args.link, baud=baud, pace_baud=args.pace_baud) as link:
            link.write(stream)
            link.drain()
    payload = sum(map(len, packets))
    bpp = len(stream) * 8 / (image.shape[0] * image.shape[1])
    print(
        f"{args.link}: frame {station}-{frame_id}, {len(packets)} packets, {len(stream)} bytes on the wire "
        f"({payload} in packets, {framing} framing), {bpp:.4f} bpp"
    )
    return 0


def run_daemon(args: argparse.Namespace) -> int:
    overrides = {
        "link.url": args.link,
        "link.baud": args.baud,
        "link.pace_baud": args.pace_baud,
        "link.packet_size": args.packet_size,
        "link.framing": args.framing,
        "frames.max_bytes": args.max_bytes,
        "frames.interval": args.interval,
        "frames.quality": args.quality,
        "frames.profile": args.profile,
        "source.gray": args.gray,
        "queue.policy": args.policy,
        "station": args.station,
        "spool": args.spool,
        "source.kind": "directory" if args.watch else "synthetic" if args.synthetic else None,
        "source.path": args.watch,
    }
    config = load_config(args.config, overrides)
    return Daemon(config, log=EventLog()).run()
