"""Which spooled frame goes on the link next, and which are too stale to send.

A link of a few kilobytes per second cannot carry every frame a camera takes, and
an operator wants the newest view first. Policies:

- ``latest``: only the newest unsent frame is kept; a newer capture replaces it.
  For live previews.
- ``newest-first``: the newest frame goes next; older ones wait (up to
  ``max_pending``) and fill the link when nothing newer is waiting. Live view
  plus backfill.
- ``fifo``: frames go in capture order; the oldest are dropped beyond ``max_pending``.

In every policy a frame already started on the link is finished first and never
dropped (its sent packets would be wasted), and unsent frames older than
``max_age`` seconds (when non-zero) are dropped. Order is by frame id, which grows
with capture order even when the wall clock jumps (a Pi without RTC at NTP sync).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .config import QueueConfig


@dataclass(frozen=True)
class Pending:
    """What the policy needs to know of one spooled frame."""

    frame_id: int
    captured_at: float  # wall-clock seconds
    started: bool  # at least one packet is on the link


@dataclass(frozen=True)
class Decision:
    send: int | None  # frame id to send from next, None when nothing is waiting
    drop: tuple[tuple[int, str], ...]  # (frame id, reason) to drop now


def decide(pending: Sequence[Pending], queue: QueueConfig, now: float) -> Decision:
    """Apply ``queue``'s policy to the spooled frames at wall-clock time ``now``."""
    started = sorted((p for p in pending if p.started), key=lambda p: p.frame_id)
    waiting = sorted((p for p in pending if not p.started), key=lambda p: p.frame_id)
    drop: list[tuple[int, str]] = []
    if queue.max_age > 0:
        drop += [(p.frame_id, "max_age") for p in waiting if now - p.captured_at > queue.max_age]
        waiting = [p for p in waiting if now - p.captured_at <= queue.max_age]
    keep = 1 if queue.policy == "latest" else queue.max_pending
    surplus = max(0, len(waiting) - keep)
    reason = "superseded" if queue.policy == "latest" else "max_pending"
    drop += [(p.frame_id, reason) for p in waiting[:surplus]]
    waiting = waiting[surplus:]
    if started:
        send = started[0].frame_id
    elif waiting:
        send = waiting[0].frame_id if queue.policy == "fifo" else waiting[-1].frame_id
    else:
        send = None
    return Decision(send, tuple(drop))
