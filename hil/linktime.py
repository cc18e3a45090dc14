"""Link timing: a frame's packets over a paced serial line into the ground decoder.

Three parties, as on the real system: a sender process (the onboard side: packetizes
the frame, then writes the framed packets through the link transport, paced to the
baud rate), the line, and a receiver process (the ground side: reads the link and
feeds the ground decoder, which writes the preview PNG as packets arrive). The line is
a real loopback wire given by ``--serial`` (one device with TX jumpered to RX, or two
crossed USB adapters), else a pty pair joined by the link package's PtyWire.

Reported per frame, from the first byte the sender hands to the line: the time to the
first decoded preview on disk, the time to the complete frame, and the latter as a
ratio to the ideal wire time (wire bytes x 10 bits / baud): 1.0 would be a ground
decoder that keeps up with the line perfectly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import DEFAULT_BACKEND
from .frames import FrameSize

if TYPE_CHECKING:
    from .session import Settings

PTY_PORT = "pty"
# How long the receiver waits beyond the ideal wire time before giving up on a frame.
RECEIVE_GRACE_S = 30.0
RECEIVE_SLACK = 3.0


def link_modules_missing() -> str | None:
    """Why the link cannot be timed here (the link or ground package is not installed), or None."""
    try:
        import firmware_py.link.packets  # noqa: F401
        import firmware_py.link.transport  # noqa: F401
        import ground.assembler  # noqa: F401
    except ImportError as exc:
        return f"link modules missing: {exc}"
    return None


def _start_worker(job: dict, env: dict[str, str], root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hil.worker", json.dumps(job)],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcome(process: subprocess.Popen, role: str) -> tuple[dict | None, str | None]:
    """A finished worker's result, or why it failed (the last line of its stderr)."""
    out, err = process.communicate()
    if process.returncode != 0:
        lines = err.strip().splitlines() or [f"exit status {process.returncode}"]
        return None, f"{role}: {lines[-1]}"
    return json.loads(out.strip().splitlines()[-1]), None


def _handshake(process: subprocess.Popen) -> str | None:
    """The worker's first stdout line (it is ready), or None if it exited first."""
    return process.stdout.readline() or None


def time_frame(
    size: FrameSize, frame_path: Path, settings: Settings, env: dict[str, str], root: Path, workdir: Path
) -> dict:
    """Send one frame over the line and time its arrival at the ground decoder."""
    from firmware_py.link.ptywire import PtyWire
    from firmware_py.link.transport import wire_seconds

    common = {"baud": settings.baud, "framing": settings.framing}
    with ExitStack() as stack:
        if settings.serial:
            tx_port, rx_port = settings.serial[0], settings.serial[-1]
        else:
            wire = stack.enter_context(PtyWire())
            tx_port, rx_port = wire.a_path, wire.b_path
        sender_job = {
            "kind": "send",
            **common,
            "port": tx_port,
            "frame": str(frame_path),
            "bpp": settings.bpp,
            "packet_size": settings.packet_size,
        }
        sender = stack.enter_context(_start_worker(sender_job, env, root))
        announced = _handshake(sender)  # packetized, link open, waiting for "go"
        if announced is None:
            raise RuntimeError(_outcome(sender, "link sender")[1])
        frame_info = json.loads(announced)
        ideal = wire_seconds(frame_info["wire_bytes"], settings.baud)
        receiver_job = {
            "kind": "receive",
            **common,
            "port": rx_port,
            "out_dir": str(workdir / f"ground-{size.label}"),
            "frame": str(frame_path),
            "packet_size": settings.packet_size,
            "timeout_s": ideal * RECEIVE_SLACK + RECEIVE_GRACE_S,
        }
        receiver = stack.enter_context(_start_worker(receiver_job, env, root))
        if _handshake(receiver) is None:
            sender.kill()
            raise RuntimeError(_outcome(receiver, "link receiver")[1])
        sender.stdin.write("go\n")
        sender.stdin.flush()
        sent, error = _outcome(sender, "sender")
        error = error or sent["error"]
        if error:
            receiver.terminate()  # it would wait for a frame that will not come
        received, receiver_error = _outcome(receiver, "receiver")
        error = error or receiver_error
    run = {
        "size": size.label,
        "backend": DEFAULT_BACKEND,
        "port": ",".join(settings.serial) if settings.serial else PTY_PORT,
        "baud": settings.baud,
        "framing": settings.framing,
        "packet_size": settings.packet_size,
        "wire_budget_bytes": frame_info["budget"],
        "target_reachable": frame_info["reachable"],
        "packets": frame_info["packets"],
        "wire_bytes": frame_info["wire_bytes"],
        "wire_bpp": frame_info["wire_bytes"] * 8 / size.pixels,
        "ideal_wire_s": ideal,
        "error": error,
    }
    return run | _arrival_times(sent, received, ideal)


def _arrival_times(sent: dict | None, received: dict | None, ideal: float) -> dict:
    """Times from the first byte on the line; None where the run did not get that far."""
    started = sent["started"] if sent else None

    def since_start(moment: float | None) -> float | None:
        return None if started is None or moment is None else moment - started

    full = since_start(received["full_frame"]) if received else None
    return {
        "send_s": since_start(sent["finished"]) if sent else None,
        "first_preview_s": since_start(received["first_preview"]) if received else None,
        "full_frame_s": full,
        "full_frame_vs_wire": None if full is None else full / ideal,
        "ground_psnr_db": received["psnr_db"] if received else None,
    }
