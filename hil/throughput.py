"""Encode/decode throughput of our codec and of libjpeg-turbo on one frame, side by side.

Runs inside a worker process (``hil.worker``). First both codecs are calibrated to the
same bit rate, once: our rate control to the target (or, when the profile cannot go
that low, to the lowest rate it reaches), then for each codec the fixed setting whose
size is nearest the rate our rate-controlled stream actually has. Then each repetition
times, back to back so that machine noise hits both codecs alike:

- ``qpv_encode_fixed``: our encode at that fixed quality (one coding pass);
- ``qpv_encode_rate_control``: our encode with rate control to the byte budget
  (what the onboard daemon runs; several coding passes);
- ``qpv_decode``; ``jpeg_encode`` at its fixed quality; ``jpeg_decode``;
- ``qpv_packetize`` when the link package is installed: the frame to framed link
  packets within the same byte budget on the wire (or, below packet mode's floor,
  the wire size of its coarsest quality).

Our operations run under :func:`hil.stages.timed_stages`, which yields the per-stage
breakdown of the very same runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from firmware_py import metrics
from firmware_py.codec import RateControlError, decode
from firmware_py.codec.profiles import MAX_QUALITY, MIN_QUALITY

from .backends import encoder_for, packetizer_for, reachable_wire_budget
from .reference import JPEG_QUALITIES, closest_setting, jpeg_decode, jpeg_encode
from .stages import timed_stages

# Our quality knob over MIN_QUALITY..MAX_QUALITY in 2^(1/4) steps (ordered by increasing rate).
QPV_QUALITIES = tuple(float(q) for q in np.geomspace(MAX_QUALITY, MIN_QUALITY, 33))


def _bpp(data: bytes, pixels: int) -> float:
    return len(data) * 8 / pixels


def calibrate(frame: np.ndarray, job: dict) -> dict:
    """Byte budget, fixed settings of both codecs, and the rates and PSNRs they give."""
    pixels = frame.shape[0] * frame.shape[1]
    target_bytes = int(job["bpp"] * pixels / 8)
    reachable = True
    try:
        stream = encoder_for(job["backend"], job["profile"], max_bytes=target_bytes)(frame)
    except RateControlError:
        # Below the profile's floor: fall back to the lowest rate it can reach, and say so.
        reachable = False
        stream = encoder_for(job["backend"], job["profile"], quality=MAX_QUALITY)(frame)
    budget = target_bytes if reachable else len(stream)
    quality = closest_setting(
        lambda q: len(encoder_for(job["backend"], job["profile"], quality=q)(frame)), QPV_QUALITIES, len(stream)
    )
    fixed = encoder_for(job["backend"], job["profile"], quality=quality)(frame)
    jpeg_quality = int(closest_setting(lambda q: len(jpeg_encode(frame, q)), JPEG_QUALITIES, len(stream)))
    jpeg = jpeg_encode(frame, jpeg_quality)
    packet_budget, packet_reachable = None, None
    if packetizer_for(job["backend"], job["packet_size"], job["framing"], max_wire_bytes=budget) is not None:
        packet_budget, packet_reachable = reachable_wire_budget(frame, job["packet_size"], job["framing"], budget)
    return {
        "target_bpp": job["bpp"],
        "target_reachable": reachable,
        "budget_bytes": budget,
        "qpv_rate_control_bpp": _bpp(stream, pixels),
        "qpv_rate_control_psnr_db": metrics.psnr(frame, decode(stream)),
        "qpv_fixed_quality": quality,
        "qpv_fixed_bpp": _bpp(fixed, pixels),
        "jpeg_quality": jpeg_quality,
        "jpeg_bpp": _bpp(jpeg, pixels),
        "jpeg_psnr_db": metrics.psnr(frame, jpeg_decode(jpeg)),
        "packet_wire_budget_bytes": packet_budget,
        "packet_target_reachable": packet_reachable,
    }


def operations(frame: np.ndarray, job: dict, rate: dict) -> dict[str, Callable[[], object]]:
    """The timed operations, each a closure over its pre-made inputs."""
    backend, profile = job["backend"], job["profile"]
    encode_fixed = encoder_for(backend, profile, quality=rate["qpv_fixed_quality"])
    encode_budget = encoder_for(backend, profile, max_bytes=rate["budget_bytes"])
    stream = encode_budget(frame)
    jpeg = jpeg_encode(frame, rate["jpeg_quality"])
    ops = {
        "qpv_encode_fixed": lambda: encode_fixed(frame),
        "qpv_encode_rate_control": lambda: encode_budget(frame),
        "qpv_decode": lambda: decode(stream),
        "jpeg_encode": lambda: jpeg_encode(frame, rate["jpeg_quality"]),
        "jpeg_decode": lambda: jpeg_decode(jpeg),
    }
    if rate["packet_wire_budget_bytes"] is not None:
        packetize = packetizer_for(
            backend, job["packet_size"], job["framing"], max_wire_bytes=rate["packet_wire_budget_bytes"]
        )
        ops["qpv_packetize"] = lambda: packetize(frame)
    if job.get("stream_out"):
        Path(job["stream_out"]).write_bytes(stream)
    return ops


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _median_breakdown(runs: list[dict[str, float]]) -> dict[str, float]:
    stages = list(dict.fromkeys(stage for run in runs for stage in run))
    return {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in stages}


def measure(job: dict) -> dict:
    frame = np.load(job["frame"])
    megapixels = frame.shape[0] * frame.shape[1] / 1e6
    rate = calibrate(frame, job)
    ops = operations(frame, job, rate)
    seconds: dict[str, list[float]] = {name: [] for name in ops}
    breakdowns: dict[str, list[dict[str, float]]] = {name: [] for name in ops if name.startswith("qpv_")}
    for _ in range(job["repeat"]):
        for name, operation in ops.items():
            with timed_stages() as clock:
                start = time.perf_counter()
                operation()
                elapsed = time.perf_counter() - start
            seconds[name].append(elapsed)
            if name in breakdowns:
                breakdowns[name].append(clock.breakdown(elapsed))
    return {
        "rate": rate,
        "seconds": {name: _summary(values) for name, values in seconds.items()},
        "mpix_per_s": {name: _summary([megapixels / s for s in values]) for name, values in seconds.items()},
        "stages_s": {name: _median_breakdown(runs) for name, runs in breakdowns.items()},
    }
