"""The codec entry points the harness times, per inference backend.

Backends are discovered at run time: every name ``firmware_py.codec.backends`` knows
is tried on one block of every model of the profile, which loads its runtime package
and its exported artifacts exactly as an encode would. Those that fail are reported
with the codec's own one-line reason (e.g. which extra to install), not timed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial

import numpy as np

from firmware_py.codec import QpvError, RateControlError, encode
from firmware_py.codec.backends import BACKENDS, DEFAULT_BACKEND, get_backend
from firmware_py.codec.blocking import BLOCK_PIXELS
from firmware_py.codec.profiles import MAX_QUALITY, get_profile

SOURCE_ID = "HIL"

__all__ = [
    "DEFAULT_BACKEND",
    "backend_status",
    "encoder_for",
    "packetizer_for",
    "reachable_wire_budget",
]


def backend_status(profile: str | None = None) -> dict[str, str | None]:
    """Each backend name -> None if it runs here, else why not."""
    models = get_profile(profile).models
    status: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            for model in models:
                get_backend(name).analyse(np.zeros((1, BLOCK_PIXELS)), model)
        except (QpvError, ImportError, OSError) as exc:
            status[name] = str(exc)
        else:
            status[name] = None
    return status


def encoder_for(
    backend: str, profile: str | None, *, quality: float | None = None, max_bytes: int | None = None
) -> Callable[[np.ndarray], bytes]:
    """frame -> stream with ``backend`` at a fixed ``quality`` or rate control to ``max_bytes``."""
    return partial(encode, quality=quality, max_bytes=max_bytes, profile=profile, backend=backend)


def packetizer_for(
    backend: str, packet_size: int, framing: str, *, max_wire_bytes: int | None = None, quality: float | None = None
) -> Callable[[np.ndarray], list[bytes]] | None:
    """frame -> framed link packets within ``max_wire_bytes`` (or at a fixed ``quality``);
    None without the link package, or for a backend the packetizer cannot use.

    Packets use packet mode's own profile (``packets.PACKET_PROFILE``): packet mode
    needs a profile with trained packet statistics, which not every profile has.
    """
    try:
        from firmware_py.link import framing as link_framing
        from firmware_py.link.packets import encode_frame_packets
    except ImportError:
        return None
    options = {"packet_size": packet_size, "max_wire_bytes": max_wire_bytes, "quality": quality, "framing": framing}
    if "backend" in inspect.signature(encode_frame_packets).parameters:
        options["backend"] = backend
    elif backend != DEFAULT_BACKEND:
        return None  # the packetizer would run the default backend: not this backend's figure

    def packetize(image: np.ndarray) -> list[bytes]:
        packets = encode_frame_packets(image, source=SOURCE_ID, frame_id=0, **options)
        # Looked up at call time, so that hil.stages can time the real function.
        return [link_framing.frame(packet, framing) for packet in packets]

    return packetize


def reachable_wire_budget(image: np.ndarray, packet_size: int, framing: str, max_wire_bytes: int) -> tuple[int, bool]:
    """(``max_wire_bytes``, True) if packet mode can fit the frame in it, else the wire
    size of its coarsest quality and False: like the codec, the nearest reachable rate."""
    try:
        packetizer_for(DEFAULT_BACKEND, packet_size, framing, max_wire_bytes=max_wire_bytes)(image)
    except RateControlError:
        coarsest = packetizer_for(DEFAULT_BACKEND, packet_size, framing, quality=MAX_QUALITY)(image)
        return sum(len(packet) for packet in coarsest), False
    return max_wire_bytes, True
