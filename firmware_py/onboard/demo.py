"""The link demo: the onboard daemon streams images over a paced pty link to the ground.

    python -m firmware_py.onboard.demo --out build/demo/link IMAGE...

Two processes, as in flight: ``qpv onboard --config`` (watching an inbox) and
``qpv ground`` (writing previews), joined by a :class:`PtyWire` whose ends are
serial device paths. The images are dropped into the inbox with the
rename-into-place convention; when the ground holds every frame complete, both
processes get SIGTERM, and the previews are compared with the originals.
``stream_images`` is also what tests/test_e2e_link.py runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import datasets, imageio, metrics
from ..link.ptywire import PtyWire

STATION = "QPVDMO"
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ReceivedFrame:
    origin: str  # the inbox file name
    frame_id: int
    png: Path
    sidecar: Path
    wire_bytes: int  # what the daemon put on the link for it


@dataclass(frozen=True)
class LinkRun:
    frames: list[ReceivedFrame]
    wire_bytes: int  # all bytes the wire carried
    seconds: float  # from the daemon's start to the last frame complete
    onboard_log: Path
    ground_log: Path


def qpv_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "firmware_py", *args]


def read_events(log: Path) -> list[dict]:
    """The structured log lines written so far (a last line still being written is skipped)."""
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def has_event(log: Path, name: str) -> bool:
    return any(e["event"] == name for e in read_events(log))


def wait_for(condition, timeout: float, what: str, processes: list[subprocess.Popen]):
    """Poll ``condition`` until it returns a true value; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: qpv {process.args[3]} exited with status {process.returncode}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what}: not done after {timeout:.0f} s")


def drop_into_inbox(images: list[Path], inbox: Path) -> None:
    """Copy each image under a hidden name, then rename it into place (the camera convention)."""
    for image in images:
        hidden = inbox / f".{image.name}.tmp"
        shutil.copyfile(image, hidden)
        os.replace(hidden, inbox / image.name)


def write_config(path: Path, *, link: str, baud: int, interval: float, spool: Path, inbox: Path) -> None:
    def text(value: object) -> str:
        return json.dumps(str(value))  # a TOML basic string, escapes included

    path.write_text(
        f"station = {text(STATION)}\nspool = {text(spool)}\n"
        f"[link]\nurl = {text(link)}\nbaud = {baud}\n"
        f"[source]\nkind = \"directory\"\npath = {text(inbox)}\nsettle_seconds = 0.0\n"
        f"[frames]\ninterval = {interval}\n"
        f"[queue]\npolicy = \"fifo\"\n"
    )


def frame_complete(sidecar: Path) -> bool:
    try:
        info = json.loads(sidecar.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return info.get("complete") is True


def stop(process: subprocess.Popen, timeout: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def stream_images(
    images: list[Path], work: Path, *, baud: int = 115200, interval: float = 1.0, timeout: float = 120
) -> LinkRun:
    """Run daemon and ground over a pty wire until every image has arrived complete."""
    # Absolute, since the config file resolves relative paths against its own folder.
    work = work.resolve()
    inbox, spool, ground_dir = work / "inbox", work / "spool", work / "ground"
    for directory in (inbox, spool, ground_dir):
        directory.mkdir(parents=True, exist_ok=True)
    onboard_log, ground_log = work / "onboard.log", work / "ground.log"
    with PtyWire() as wire, onboard_log.open("w") as onboard_err, ground_log.open("w") as ground_err:
        ground = subprocess.Popen(
            qpv_command("ground", "--link", wire.b_path, "--baud", str(baud), "--out", str(ground_dir)),
            stdout=subprocess.DEVNULL,
            stderr=ground_err,
        )
        processes = [ground]
        try:
            # The ground must have opened its end first: opening a port flushes its input.
            wait_for(lambda: has_event(ground_log, "link_up"), 60, "ground start", processes)
            config = work / "onboard.toml"
            write_config(config, link=wire.a_path, baud=baud, interval=interval, spool=spool, inbox=inbox)
            drop_into_inbox(images, inbox)
            started = time.monotonic()
            onboard = subprocess.Popen(qpv_command("onboard", "--config", str(config)), stderr=onboard_err)
            processes.append(onboard)

            def all_received() -> list[ReceivedFrame] | None:
                events = read_events(onboard_log)
                ids = {e["origin"]: e["frame_id"] for e in events if e["event"] == "frame_captured"}
                sent = {e["frame_id"]: e["wire_bytes"] for e in events if e["event"] == "frame_sent"}
                if len(ids) < len(images) or len(sent) < len(images):
                    return None
                frames = [
                    ReceivedFrame(
                        image.name,
                        ids[image.name],
                        ground_dir / f"{STATION}-{ids[image.name]}.png",
                        ground_dir / f"{STATION}-{ids[image.name]}.json",
                        sent[ids[image.name]],
                    )
                    for image in images
                ]
                return frames if all(frame_complete(f.sidecar) for f in frames) else None

            frames = wait_for(all_received, timeout, "streaming the images", processes)
            seconds = time.monotonic() - started
        finally:
            statuses = [stop(p) for p in processes]
        if any(statuses):
            raise RuntimeError(f"a process exited with status {statuses} (logs: {onboard_log}, {ground_log})")
        return LinkRun(frames, wire.bytes_a_to_b, seconds, onboard_log, ground_log)


def demo_images() -> list[Path]:
    """The paper's three test images and a Kodak colour image (test images only)."""
    return [*datasets.paper_test_images(), datasets.data_dir() / "kodak" / "kodim23.png"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path, help="images to stream (default: the demo set)")
    parser.add_argument("--out", type=Path, default=Path("build/demo/link"))
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds per frame: sets the byte budget")
    args = parser.parse_args(argv)
    images = args.images or demo_images()
    if args.out.exists():
        shutil.rmtree(args.out)
    run = stream_images(images, args.out, baud=args.baud, interval=args.interval)
    print(f"link demo: {len(run.frames)} frames, {run.wire_bytes} bytes over a pty wire at {args.baud} baud "
          f"in {run.seconds:.1f} s")
    for image, frame in zip(images, run.frames):
        original = imageio.load_image(image)
        preview = imageio.load_image(frame.png, gray=original.ndim == 2)
        bpp = frame.wire_bytes * 8 / (original.shape[0] * original.shape[1])
        print(f"  {frame.origin:14s} -> {frame.png}  {frame.wire_bytes} B  {bpp:.3f} bpp  "
              f"PSNR {metrics.psnr(original, preview):.2f} dB")
    print(f"previews and per-frame JSON sidecars in {run.frames[0].png.parent}/")
    print(f"logs: {run.onboard_log} (onboard), {run.ground_log} (ground)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
