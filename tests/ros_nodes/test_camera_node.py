"""camera_node and its OpenCV frame source: a looped video file over real Fast DDS, and bad sources."""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_fixtures import wait_for
from sensor_msgs.msg import Image

from ros_nodes.frame_source import FrameSource
from ros_nodes.image_conversion import image_to_rgb
from vid2robot.data.video_io import write_video

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]], np.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five solid-colour 32x48 frames (red, green, blue, white, black) as H.264 mp4."""
    path = tmp_path_factory.mktemp("video") / "colours.mp4"
    write_video(
        path, np.broadcast_to(COLOURS[:, None, None, :], (5, 32, 48, 3)).copy(), fps=10, pix_fmt="yuv444p"
    )
    return path


def colour_index(frame: np.ndarray) -> int:
    """Which of COLOURS a decoded (lossy) frame shows."""
    return int(np.argmin(np.abs(COLOURS.astype(int) - frame.reshape(-1, 3).mean(0)).sum(1)))


def test_file_source_reads_rgb_in_order_and_loops(video: Path) -> None:
    once = FrameSource(str(video))
    frames = [once.read() for _ in range(6)]
    once.close()
    assert frames[5] is None, "without loop the file ends"
    assert [colour_index(f) for f in frames[:5]] == [0, 1, 2, 3, 4]
    assert frames[0].shape == (32, 48, 3) and frames[0].dtype == np.uint8
    np.testing.assert_allclose(frames[0].reshape(-1, 3).mean(0), COLOURS[0], atol=8)  # RGB, not BGR
    looped = FrameSource(str(video), loop=True)
    assert [colour_index(looped.read()) for _ in range(7)] == [0, 1, 2, 3, 4, 0, 1]
    looped.close()


def test_unopenable_sources_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("cannot open the device or stream '/nonexistent.mp4'")):
        FrameSource("/nonexistent.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot open the video file"):
        FrameSource(str(junk))


def test_camera_node_publishes_the_looped_file_at_its_rate(ros, launch, video: Path) -> None:
    received: list[tuple[float, Image]] = []
    lock = threading.Lock()

    def on_image(msg: Image) -> None:
        with lock:
            received.append((time.monotonic(), msg))

    ros.create_subscription(Image, "image", on_image, qos_profile_sensor_data)
    node = launch(
        "ros_nodes.camera_node",
        "camera_node",
        {"source": str(video), "rate_hz": 20.0, "loop": True, "frame_id": "cam_optical"},
    )
    wait_for(lambda: len(received) >= 25 or not node.alive(), 30, "25 images")
    assert node.alive(), node.log()
    with lock:
        msgs = [m for _, m in received]
        times = [t for t, _ in received]
    assert all(m.encoding == "rgb8" and (m.height, m.width) == (32, 48) for m in msgs)
    assert all(m.header.frame_id == "cam_optical" for m in msgs)
    stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in msgs]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    indices = [colour_index(image_to_rgb(m)) for m in msgs]
    start = indices[0]
    assert indices == [(start + i) % 5 for i in range(len(indices))], "frames in order, looping"
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 14.0 < rate < 26.0, f"published at {rate:.1f} Hz instead of 20"


def test_camera_node_resizes_to_the_requested_size(ros, launch, video: Path) -> None:
    received: list[Image] = []
    ros.create_subscription(Image, "image", received.append, qos_profile_sensor_data)
    node = launch(
        "ros_nodes.camera_node",
        "camera_node",
        {"source": str(video), "loop": True, "width": 24, "height": 20},
    )
    wait_for(lambda: len(received) >= 3 or not node.alive(), 30, "3 images")
    assert node.alive(), node.log()
    assert {(m.width, m.height, m.step) for m in received} == {(24, 20, 72)}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"source": "/nonexistent/video.mp4"},
            "OpenCV cannot open the device or stream '/nonexistent/video.mp4'",
        ),
        ({"source": "0", "width": 64}, "width and height must both be > 0 (resize) or both 0, got 64x0"),
    ],
)
def test_camera_node_exits_2_on_bad_parameters(launch, params: dict, message: str) -> None:
    node = launch("ros_nodes.camera_node", "camera_node", params)
    assert node.proc.wait(30) == 2
    assert f"cannot start: {message}" in node.log()
