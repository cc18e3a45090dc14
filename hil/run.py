"""``python hil/run.py``: hardware-in-the-loop timing of the codec and the link on this board.

Measures per frame size and backend: encode/decode throughput as a ratio to
libjpeg-turbo at the same bit rate, time per pipeline stage, cold start with a warm and
a cold numba cache, peak RSS, CPU temperature and throttling; and the time a frame
takes over a paced serial line into the ground decoder. Writes a JSON report
(hil/schema.json) and a markdown table; ``--check`` compares the report with a board's
thresholds; ``--ssh`` does all of it on a board. See docs/HIL.md.

Exit status: 0 ok, 1 a figure regressed past a threshold, 2 bad input or a failed run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_py.fsutil import write_atomically  # noqa: E402
from hil import remote, report, thresholds  # noqa: E402
from hil.frames import parse_sizes, resolve_images, tiles_needed  # noqa: E402

EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
DEFAULTS = {
    "sizes": "640x480,1280x720,1920x1080,4056x3040",
    "repeat": 5,
    "start_repeat": 3,
    "link_sizes": None,  # None: the measured sizes
}
QUICK_DEFAULTS = {"sizes": "640x480", "repeat": 3, "start_repeat": 1, "link_sizes": "640x480"}
# Flags measured on the board, forwarded as given by --ssh (the rest act locally).
FORWARDED = (
    "sizes",
    "bpp",
    "repeat",
    "start_repeat",
    "backends",
    "profile",
    "threads",
    "packet_size",
    "framing",
    "baud",
    "link_sizes",
    "serial",
    "note",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil/run.py",
        description="Hardware-in-the-loop timing of the codec and the link on this board, as ratios to "
        "libjpeg-turbo measured side by side (docs/HIL.md).",
    )
    measure = parser.add_argument_group("what to measure")
    measure.add_argument("--sizes", help=f"frame sizes WxH,... (default {DEFAULTS['sizes']}; quick: 640x480)")
    measure.add_argument(
        "--images",
        nargs="+",
        help="image files or test set names (kodak, aerials, paper) tiled into each frame (default: kodak aerials)",
    )
    measure.add_argument("--gray", action="store_true", help="time luma-only frames instead of RGB")
    measure.add_argument(
        "--backends", help="comma-separated inference backends (default: every one that runs here; quick: numba)"
    )
    measure.add_argument("--bpp", type=float, default=0.15, help="target bits per pixel (default %(default)s)")
    measure.add_argument("--profile", help="codec profile (default: the codec's default)")
    measure.add_argument("--repeat", type=int, help="timed repetitions per operation (default 5; quick 3)")
    measure.add_argument("--start-repeat", type=int, help="processes per cold-start figure (default 3; quick 1)")
    measure.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads of the measured processes; 0 = library default "
        "(default %(default)s: single core, like libjpeg-turbo)",
    )
    measure.add_argument("--quick", action="store_true", help="CI-sized run: one small frame, few repetitions")
    measure.add_argument("--note", help="free text stored in the report (e.g. 'shared 2-core VM')")
    link = parser.add_argument_group("link timing")
    link.add_argument("--baud", type=int, default=115200, help="line rate (default %(default)s)")
    link.add_argument("--packet-size", type=int, default=256, help="link packet size in bytes (default %(default)s)")
    link.add_argument("--framing", choices=("kiss", "cobs"), default="kiss", help="byte framing (default %(default)s)")
    link.add_argument(
        "--link-sizes",
        help="frame sizes sent over the link (default: every measured size; quick: 640x480; 'none' to skip)",
    )
    link.add_argument(
        "--serial", help="loopback serial device TX[,RX] (a TX-RX jumper, or two crossed adapters); default: a pty pair"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, help="write the JSON report here")
    output.add_argument("--md", type=Path, help="write the markdown tables here")
    output.add_argument(
        "--check",
        type=Path,
        help="thresholds TOML (e.g. hil/thresholds/pi4.toml); exit 1 when a figure regresses past it",
    )
    output.add_argument("--from-json", type=Path, help="use this report instead of measuring (re-render / re-check)")
    board = parser.add_argument_group("remote board")
    board.add_argument("--ssh", metavar="USER@HOST", help="run the whole session on this board over ssh/scp")
    board.add_argument("--remote-dir", default="qpv-hil", help="directory on the board (default: ~/%(default)s)")
    board.add_argument("--remote-python", default="python3", help="Python on the board (default %(default)s)")
    return parser


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options whose default depends on --quick; validate the numbers."""
    defaults = QUICK_DEFAULTS if args.quick else DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("repeat", "start_repeat", "baud", "packet_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.bpp > 0:
        raise ValueError("--bpp must be positive")
    return args


def forwarded_args(args: argparse.Namespace, image_names: list[str]) -> list[str]:
    """The measurement flags given to this invocation, for the same run on the board
    (flags left out keep their defaults there, e.g. the backends available on the board)."""
    argv = ["--images", *image_names]
    for name in FORWARDED:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    if args.gray:
        argv.append("--gray")
    if args.quick:
        argv.append("--quick")
    return argv


def choose_backends(args: argparse.Namespace) -> tuple[str, ...]:
    """The backends to measure: as given (each must run here), else numba when quick,
    else every backend that runs here."""
    from hil.backends import DEFAULT_BACKEND, backend_status

    if args.backends is None and args.quick:
        return (DEFAULT_BACKEND,)
    status = backend_status(args.profile)
    if args.backends is None:
        return tuple(name for name, reason in status.items() if reason is None)
    for name in args.backends.split(","):
        if name not in status:
            raise ValueError(f"unknown backend '{name}'; known: {', '.join(status)}")
        if status[name] is not None:
            raise ValueError(f"backend '{name}' cannot run here: {status[name]}")
    return tuple(args.backends.split(","))


def choose_profile(args: argparse.Namespace) -> str:
    """The profile to measure, by name (the report must say which one the default was)."""
    from firmware_py.codec import DEFAULT_PROFILE, available_profiles

    profile = args.profile or DEFAULT_PROFILE
    if profile not in available_profiles():
        raise ValueError(f"unknown profile '{profile}'; available: {', '.join(available_profiles())}")
    return profile


def settings_from(args: argparse.Namespace):
    from hil.session import Settings

    sizes = parse_sizes(args.sizes)
    args.profile = choose_profile(args)
    link_sizes = () if args.link_sizes == "none" else tuple(parse_sizes(args.link_sizes) if args.link_sizes else sizes)
    images = tuple(resolve_images(args.images))
    return Settings(
        sizes=tuple(sizes),
        images=images,
        gray=args.gray,
        bpp=args.bpp,
        repeat=args.repeat,
        start_repeat=args.start_repeat,
        backends=choose_backends(args),
        profile=args.profile,
        threads=args.threads,
        packet_size=args.packet_size,
        framing=args.framing,
        baud=args.baud,
        link_sizes=link_sizes,
        serial=tuple(args.serial.split(",")) if args.serial else (),
        quick=args.quick,
        note=args.note,
    )


def images_to_ship(args: argparse.Namespace) -> list[Path]:
    """The images the board's frames are tiled from: only as many as the largest frame uses."""
    defaults = QUICK_DEFAULTS if args.quick else DEFAULTS
    sizes = parse_sizes(args.sizes or defaults["sizes"])
    if args.link_sizes not in (None, "none"):
        sizes += parse_sizes(args.link_sizes)
    return resolve_images(args.images)[: max(tiles_needed(size) for size in sizes)]


def measure_remotely(args: argparse.Namespace, report_path: Path) -> dict:
    images = images_to_ship(args)
    with tempfile.TemporaryDirectory(prefix="qpv-hil-ssh-") as tmp:
        plan = remote.RemotePlan(
            target=args.ssh,
            remote_dir=args.remote_dir,
            remote_python=args.remote_python,
            archive=Path(tmp) / "qpv-hil.tar.gz",
            run_args=tuple(forwarded_args(args, remote.remote_image_names(images))),
            local_report=report_path,
        )
        remote.run_remote(plan, images, log=lambda line: print(line, file=sys.stderr))
    return json.loads(report_path.read_text())


def obtain_report(args: argparse.Namespace) -> dict:
    if args.from_json:
        return json.loads(args.from_json.read_text())
    if args.ssh:
        with tempfile.TemporaryDirectory(prefix="qpv-hil-report-") as tmp:
            return measure_remotely(args, Path(tmp) / "report.json")
    from hil.session import run_session

    return run_session(settings_from(resolve_defaults(args)), log=lambda line: print(line, file=sys.stderr))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        limits = thresholds.load_thresholds(args.check) if args.check else None
        result = obtain_report(args)
        if args.json:
            write_atomically(args.json, (json.dumps(result, indent=2) + "\n").encode())
        markdown = report.render_markdown(result)
        if args.md:
            write_atomically(args.md, markdown.encode())
        print(markdown)
    except (ValueError, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if limits is None:
        return 0
    findings = thresholds.check_report(result, limits)
    for finding in findings:
        print(finding.message)
    failed = sum(not f.passed for f in findings)
    print(f"hil: {len(findings) - failed} of {len(findings)} checks passed against {args.check}")
    return EXIT_REGRESSION if failed else 0


if __name__ == "__main__":
    sys.exit(main())
