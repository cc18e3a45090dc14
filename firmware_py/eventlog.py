"""Structured log lines of the onboard daemon and the ground receiver.

One JSON object per line on stderr (systemd's journal keeps them as they are):
``{"ts": "2025-01-01T12:00:00.123Z", "level": "info", "event": "frame_sent", ...}``.
``ts`` is UTC, ``event`` a fixed snake_case name, the other keys depend on the event.
JSON lines survive any field content (paths with spaces, error messages) and load
with one call in any tool; docs/OPERATIONS.md lists the events.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")


def utc_timestamp(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2025-01-01T12:00:00.123Z``."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1000):03d}Z"


class EventLog:
    """Writes one JSON object per event to ``stream`` (stderr unless given)."""

    def __init__(self, stream: TextIO | None = None, *, clock=time.time) -> None:
        self._stream = stream
        self._clock = clock

    def __call__(self, event: str, *, level: str = "info", **fields: Any) -> None:
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {LEVELS}, got {level!r}")
        record = {"ts": utc_timestamp(self._clock()), "level": level, "event": event, **fields}
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(json.dumps(record, default=str) + "\n")
        stream.flush()
