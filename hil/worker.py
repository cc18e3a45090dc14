"""One measurement in a fresh process: ``python -m hil.worker JOB_JSON`` prints a JSON result.

A fresh process per measurement is what makes cold start mean process start, and
the peak RSS mean the peak memory of that measurement alone. Imports of numpy, Pillow
and the codec happen inside the jobs, so the job that measures start-up pays for them.

Timestamps are ``time.monotonic()``, which on Linux is one system-wide clock, so the
parent can subtract the moment it spawned this process.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

# Side of the square crop, in blocks, that warms a process up before a measurement.
WARM_UP_BLOCKS = 8


def _peak_rss_kib() -> int:
    """Peak resident memory of this process image, KiB.

    Linux's VmHWM, not ``ru_maxrss``: the latter survives exec, so a worker would
    report its parent's peak whenever the parent had used more.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux and BSDs
    return int(status.split("VmHWM:")[1].split()[0])


def startup(job: dict) -> dict:
    """Import, load the frame, code it once: the timestamps of each step and the peak RSS."""
    began = time.monotonic()
    import numpy as np

    if job["codec"] == "jpeg":
        from hil.reference import jpeg_encode

        encode_once = lambda frame: jpeg_encode(frame, job["jpeg_quality"])  # noqa: E731
    else:
        from hil.backends import encoder_for

        encode_once = encoder_for(job["backend"], job["profile"], max_bytes=job["max_bytes"])
    imported = time.monotonic()
    frame = np.load(job["frame"])
    loaded = time.monotonic()
    encode_once(frame)
    encoded = time.monotonic()
    return {"began": began, "imported": imported, "loaded": loaded, "encoded": encoded, "peak_rss_kib": _peak_rss_kib()}


def encode_memory(job: dict) -> dict:
    """Memory one frame's encode needs on top of a process already running the codec:
    a small crop is encoded first, so that loading models and backends is not counted."""
    import numpy as np

    from hil.backends import encoder_for

    frame = np.load(job["frame"])
    encoder_for(job["backend"], job["profile"])(frame[: 8 * WARM_UP_BLOCKS, : 8 * WARM_UP_BLOCKS].copy())
    before = _peak_rss_kib()
    encoder_for(job["backend"], job["profile"], max_bytes=job["max_bytes"])(frame)
    return {"growth_kib": _peak_rss_kib() - before}


def decode_memory(job: dict) -> dict:
    """Peak RSS of a process that decodes one stream (the ground side's cost per frame)."""
    from firmware_py.codec import decode

    decode(Path(job["stream"]).read_bytes())
    return {"peak_rss_kib": _peak_rss_kib()}


def throughput(job: dict) -> dict:
    from hil.throughput import measure

    return measure(job)


def send(job: dict) -> dict:
    """The onboard side of the link timing: packetize the frame at the target bit rate
    (the byte budget bounds the bytes on the wire), open the link, announce the packet
    count on stdout, wait for "go" on stdin, then write every packet paced to the baud rate."""
    import numpy as np

    from firmware_py.link.transport import LinkError, open_link
    from hil.backends import DEFAULT_BACKEND, packetizer_for, reachable_wire_budget

    frame = np.load(job["frame"])
    target = int(job["bpp"] * frame.shape[0] * frame.shape[1] / 8)
    budget, reachable = reachable_wire_budget(frame, job["packet_size"], job["framing"], target)
    packets = packetizer_for(DEFAULT_BACKEND, job["packet_size"], job["framing"], max_wire_bytes=budget)(frame)
    wire = b"".join(packets)
    with open_link(job["port"], baud=job["baud"]) as link:
        announce = {"packets": len(packets), "wire_bytes": len(wire), "budget": budget, "reachable": reachable}
        print(json.dumps(announce), flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        try:
            link.write(wire)
            link.drain()
        except LinkError as exc:  # e.g. the ground stopped reading: the report says so
            return {"started": started, "finished": None, "error": f"sender: {exc}"}
        finished = time.monotonic()
    return {"started": started, "finished": finished, "error": None}


def _warm_up_ground(frame, job: dict) -> None:
    """Decode a small crop's packets once in a throwaway decoder, so that the timed frame
    meets a running ground station (kernels loaded, models read), not a cold start."""
    import tempfile

    from ground.assembler import GroundDecoder
    from hil.backends import DEFAULT_BACKEND, packetizer_for

    crop = frame[: 8 * WARM_UP_BLOCKS, : 8 * WARM_UP_BLOCKS].copy()
    packets = packetizer_for(DEFAULT_BACKEND, job["packet_size"], job["framing"])(crop)
    with tempfile.TemporaryDirectory(prefix="qpv-hil-warm-up-") as scratch:
        decoder = GroundDecoder(Path(scratch), framing=job["framing"])
        decoder.feed(b"".join(packets))
        decoder.close()


def receive(job: dict) -> dict:
    """The ground side of the link timing: ``qpv ground``'s own receive loop
    (``ground.receiver.Receiver``) feeding the ground decoder, until the decoder has
    written the complete frame or time runs out. Says "ready" on stdout once the link
    is open; returns the times of the first preview and of the complete frame, and
    that frame's PSNR."""
    import threading

    import numpy as np

    from firmware_py import imageio, metrics
    from ground.assembler import GroundDecoder
    from ground.receiver import Receiver

    frame = np.load(job["frame"])
    _warm_up_ground(frame, job)
    written: dict[str, float] = {}
    last_path: list[str] = []

    def on_event(event: str, **fields) -> None:
        now = time.monotonic()
        if event == "link_up":
            print("ready", flush=True)
        elif event == "frame_written":
            written.setdefault("first_preview", now)
            last_path[:] = [fields["path"]]
            if fields["received"] == fields["expected"]:
                written.setdefault("full_frame", now)
                receiver.request_stop()

    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    decoder = GroundDecoder(out_dir, framing=job["framing"], log=on_event)
    receiver = Receiver(job["port"], decoder, baud=job["baud"], log=on_event)
    deadline = threading.Timer(job["timeout_s"], receiver.request_stop)
    deadline.daemon = True
    deadline.start()
    receiver.run()
    deadline.cancel()
    psnr = metrics.psnr(frame, imageio.load_image(last_path[0])) if "full_frame" in written else None
    return {"first_preview": written.get("first_preview"), "full_frame": written.get("full_frame"), "psnr_db": psnr}


JOBS = {
    "startup": startup,
    "encode_memory": encode_memory,
    "decode_memory": decode_memory,
    "throughput": throughput,
    "send": send,
    "receive": receive,
}


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    result = JOBS[job["kind"]](job)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
