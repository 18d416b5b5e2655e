"""CameraHealth: what policy_node reports about its camera, from arrival times, stamps and publisher counts."""

from __future__ import annotations

from ros_nodes.camera_health import LOSSY, NO_FRAMES, NO_PUBLISHER, OK, REJECTED, SLOW, CameraHealth

HINT = "FIX: set the transport"


def health() -> CameraHealth:
    return CameraHealth("/image", control_rate_hz=10.0, hint=HINT)


def stream(camera: CameraHealth, start: float, seconds: float, period: float, keep_every: int = 1) -> float:
    """Frames stamped every ``period`` from ``start``; only every ``keep_every``-th arrives. Returns the end."""
    t = start
    for i in range(round(seconds / period)):
        t = start + i * period
        if i % keep_every == 0:
            camera.on_frame(t + 0.01, t)
    return t + period


def test_a_steady_camera_at_the_control_rate_is_ok() -> None:
    camera = health()
    end = stream(camera, 0.0, 6.0, 1 / 30)
    status = camera.status(end, publishers=1)
    assert status.kind == OK and 29 <= status.frame_rate_hz <= 31
    assert status.last_frame_age_s < 0.1


def test_a_publisher_that_sends_nothing_is_named_with_the_fix() -> None:
    camera = health()
    assert camera.status(10.0, publishers=1).kind == OK  # just discovered: give it stall_s
    status = camera.status(12.5, publishers=1)
    assert status.kind == NO_FRAMES
    assert status.message == f"camera /image has 1 publisher but no frame for 2.5 s: {HINT}"
    end = stream(camera, 13.0, 1.0, 0.1)
    assert camera.status(end, publishers=2).kind == OK
    status = camera.status(end + 3.0, publishers=2)
    assert status.kind == NO_FRAMES and "has 2 publishers but no frame for 3.1 s" in status.message


def test_no_publisher_once_the_camera_had_time_to_start() -> None:
    camera = CameraHealth("/image", control_rate_hz=10.0, hint=HINT, started=4.0)
    assert camera.status(5.0, publishers=0).kind == OK
    status = camera.status(6.5, publishers=0)
    assert status.kind == NO_PUBLISHER and "no publisher on camera topic /image" in status.message


def test_rejected_frames_are_told_apart_from_missing_ones() -> None:
    camera = health()
    for i in range(5):
        camera.on_rejected(10.0 + 0.1 * i, "unsupported image encoding '16UC1'")
    status = camera.status(10.5, publishers=1)
    assert status.kind == REJECTED
    assert "5 frames rejected" in status.message and "'16UC1'" in status.message


def test_frames_lost_in_transport_show_in_the_stamps() -> None:
    camera = health()  # a 30 Hz camera of which about one frame in 12 arrives (2.5 Hz)
    end = stream(camera, 0.0, 8.0, 1 / 30, keep_every=12)
    camera.on_frame(end + 0.01, end)  # now and then two neighbours make it
    camera.on_frame(end + 0.05, end + 1 / 30)
    status = camera.status(end + 0.1, publishers=1)
    assert status.kind == LOSSY
    assert "delivers 2.8 frames/s, below control_rate_hz 10" in status.message
    assert "33 ms apart at the closest but 400 ms typically" in status.message and HINT in status.message


def test_a_camera_slower_than_the_control_rate_is_reported_without_the_transport_fix() -> None:
    camera = health()
    end = stream(camera, 0.0, 8.0, 0.2)  # 5 Hz, evenly spaced
    status = camera.status(end, publishers=1)
    assert status.kind == SLOW and HINT not in status.message
    assert "delivers 5.0 frames/s, below control_rate_hz 10 (stamps 200 ms apart)" in status.message


def test_the_rate_is_not_judged_before_a_full_window() -> None:
    camera = health()
    end = stream(camera, 0.0, 1.0, 0.2)
    assert camera.status(end, publishers=1).kind == OK
