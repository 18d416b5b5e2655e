"""StreamAligner: one row per action, the newest frame / state at or before it, late samples waited for."""

from __future__ import annotations

import numpy as np
import pytest

from vid2robot.data.stream_alignment import StreamAligner

MS = 1_000_000


def frame(level: int) -> np.ndarray:
    return np.full((4, 4, 3), level, np.uint8)


def test_each_action_gets_the_newest_frame_and_state_at_or_before_it_even_when_they_arrive_late() -> None:
    aligner = StreamAligner(("front", "wrist"), with_state=True, max_age_s=0.5)
    for t in range(5):  # 10 Hz ticks; the frame of the next tick often arrives before this tick's action
        aligner.add_frame("front", 100 * t * MS, frame(t))
        aligner.add_state(100 * t * MS + 5 * MS, np.array([t, -t]))
        aligner.add_frame("front", (100 * t + 60) * MS, frame(100 + t))  # a second camera frame per tick
        aligner.add_frame("wrist", (100 * t + 1) * MS, frame(200 + t))
        if t:
            aligner.add_action((100 * (t - 1) + 90) * MS, np.array([t - 1, 0.5]))
    episode = aligner.finish()
    assert len(episode) == 4 and not episode.dropped
    np.testing.assert_array_equal(episode.actions[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(episode.frames["front"][:, 0, 0, 0], [100, 101, 102, 103])
    np.testing.assert_array_equal(episode.frames["wrist"][:, 0, 0, 0], [200, 201, 202, 203])
    np.testing.assert_array_equal(episode.states[:, 0], [0, 1, 2, 3])
    columns = episode.step_columns()
    np.testing.assert_array_equal(columns["stamp_ns.front"], [(100 * t + 60) * MS for t in range(4)])
    np.testing.assert_array_equal(columns["stamp_ns.action"], [(100 * t + 90) * MS for t in range(4)])
    assert set(columns) == {"stamp_ns.action", "stamp_ns.front", "stamp_ns.wrist", "stamp_ns.state"}


def test_an_action_waits_for_a_late_frame_of_its_own_time() -> None:
    aligner = StreamAligner(("cam",), with_state=False, max_age_s=1.0)
    aligner.add_frame("cam", 0, frame(1))
    aligner.add_action(50 * MS, np.zeros(2))
    aligner.add_frame("cam", 40 * MS, frame(2))  # another publisher's sample, late
    aligner.add_frame("cam", 80 * MS, frame(3))
    episode = aligner.finish()
    assert len(episode) == 1 and episode.frames["cam"][0, 0, 0, 0] == 2


def test_a_stale_or_missing_camera_drops_the_row_and_says_why() -> None:
    aligner = StreamAligner(("cam",), with_state=True, max_age_s=0.2)
    aligner.add_action(0, np.zeros(1))  # nothing yet
    aligner.add_frame("cam", 10 * MS, frame(1))
    aligner.add_state(10 * MS, np.zeros(3))
    aligner.add_action(20 * MS, np.ones(1))
    aligner.add_state(500 * MS, np.zeros(3))
    aligner.add_action(600 * MS, np.full(1, 2.0))  # the camera stalled at 10 ms: its frame is 590 ms old
    episode = aligner.finish()
    assert len(episode) == 1 and episode.actions[0, 0] == 1
    assert episode.dropped == {"no cam yet": 1, "cam older than 0.2 s": 1}


def test_a_stalled_stream_does_not_hold_the_others_back() -> None:
    aligner = StreamAligner(("a", "b"), with_state=False, max_age_s=0.3)
    aligner.add_frame("a", 0, frame(1))
    aligner.add_frame("b", 0, frame(2))
    aligner.add_action(10 * MS, np.zeros(1))
    aligner.add_frame("a", 200 * MS, frame(3))
    aligner.add_frame("b", 5 * MS, frame(5))  # b is late, but still before the action: it is waited for
    aligner.add_frame("a", 400 * MS, frame(4))  # 390 ms past the action: resolved with what b has
    aligner.add_frame("b", 8 * MS, frame(6))  # too late for it
    episode = aligner.finish()
    assert episode.frames["b"][0, 0, 0, 0] == 5 and episode.frames["a"][0, 0, 0, 0] == 1


@pytest.mark.parametrize("cameras", [(), ("a", "a"), ("state",)])
def test_camera_names_must_be_distinct_and_not_reserved(cameras: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="cameras must be distinct"):
        StreamAligner(cameras, with_state=False, max_age_s=1.0)
