"""The send-queue policies: newest first, stale frames dropped, started frames finished."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_py.onboard.config import POLICIES, QueueConfig
from firmware_py.onboard.policy import Pending, decide

NOW = 1_000_000.0


def waiting(*ids: int, age: float = 0.0) -> list[Pending]:
    return [Pending(i, NOW - age, started=False) for i in ids]


def test_latest_keeps_only_the_newest_frame():
    decision = decide(waiting(1, 2, 3, 4, 5), QueueConfig(policy="latest"), NOW)
    assert decision.send == 5
    assert decision.drop == tuple((i, "superseded") for i in (1, 2, 3, 4))


def test_newest_first_sends_the_newest_and_keeps_older_ones_for_later():
    decision = decide(waiting(1, 2, 3, 4, 5), QueueConfig(policy="newest-first", max_pending=3), NOW)
    assert decision.send == 5
    assert decision.drop == ((1, "max_pending"), (2, "max_pending"))


def test_fifo_sends_in_capture_order_and_drops_the_oldest_beyond_the_bound():
    decision = decide(waiting(5, 3, 1, 4, 2), QueueConfig(policy="fifo", max_pending=3), NOW)
    assert decision.send == 3
    assert decision.drop == ((1, "max_pending"), (2, "max_pending"))


def test_a_started_frame_is_finished_first_and_never_dropped():
    pending = [Pending(2, NOW - 10_000, started=True), *waiting(3, 4, 5)]
    for policy in POLICIES:
        decision = decide(pending, QueueConfig(policy=policy, max_pending=1, max_age=60), NOW)
        assert decision.send == 2
        assert 2 not in dict(decision.drop)


def test_frames_older_than_max_age_are_dropped_unless_started():
    pending = waiting(1, 2, age=120) + waiting(3, age=30)
    decision = decide(pending, QueueConfig(policy="fifo", max_age=60), NOW)
    assert decision.send == 3
    assert decision.drop == ((1, "max_age"), (2, "max_age"))


def test_max_age_zero_keeps_frames_of_any_age():
    decision = decide(waiting(1, age=1e9), QueueConfig(policy="fifo", max_age=0), NOW)
    assert decision == decide(waiting(1), QueueConfig(policy="fifo"), NOW)
    assert decision.send == 1 and decision.drop == ()


def test_nothing_pending_sends_nothing():
    decision = decide([], QueueConfig(), NOW)
    assert decision.send is None and decision.drop == ()


pending_sets = st.lists(
    st.tuples(st.floats(0, 1e4), st.booleans()), max_size=30
).map(lambda items: [Pending(i, NOW - age, started) for i, (age, started) in enumerate(items)])
queues = st.builds(
    QueueConfig,
    policy=st.sampled_from(POLICIES),
    max_pending=st.integers(1, 10),
    max_age=st.sampled_from([0.0, 10.0, 1000.0]),
)


@given(pending_sets, queues)
def test_policy_invariants(pending, queue):
    decision = decide(pending, queue, NOW)
    dropped = [frame_id for frame_id, _ in decision.drop]
    started = sorted(p.frame_id for p in pending if p.started)
    assert len(dropped) == len(set(dropped))
    assert not set(dropped) & set(started), "a started frame is never dropped"
    assert decision.send not in dropped
    kept_waiting = [p for p in pending if not p.started and p.frame_id not in dropped]
    assert len(kept_waiting) <= (1 if queue.policy == "latest" else queue.max_pending)
    if queue.max_age:
        assert all(NOW - p.captured_at <= queue.max_age for p in kept_waiting)
    if started:
        assert decision.send == started[0]
    elif kept_waiting:
        ids = [p.frame_id for p in kept_waiting]
        assert decision.send == (min(ids) if queue.policy == "fifo" else max(ids))
    else:
        assert decision.send is None
