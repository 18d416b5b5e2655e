"""Full-resolution camera images over real Fast DDS between processes, raw and compressed: policy_node acts at
its control rate with the shipped transport defaults (this process sets them as a camera driver would, the
node process sets its own); its /diagnostics name a camera that stops sending; bad compressed images are
logged and dropped. Rates are checked as counts of commands in a window, never as timings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from ros_fixtures import NodeProcess, wait_for, wait_matched
from std_msgs.msg import Float32MultiArray

from ros_nodes.benchmark import camera_frame
from ros_nodes.camera_input import IMAGE_TRANSPORTS
from ros_nodes.compressed_image import compressed_to_rgb, rgb_to_compressed
from ros_nodes.image_conversion import rgb_to_image
from ros_nodes.prompt import prompt_tensor
from vid2robot.policy import frames_to_tensor

CONTROL_HZ = 10.0
WINDOW_S = 3.0
CAMERA_HZ = 20.0


class Camera:
    """This process's side: an image publisher for one transport, recorded actions and diagnostics."""

    def __init__(self, ros: Node, transport: str) -> None:
        self.ros, self.transport = ros, transport
        topic = "image" if transport == "raw" else "image/compressed"
        self.pub = ros.create_publisher(IMAGE_TRANSPORTS[transport], topic, qos_profile_sensor_data)
        self.lock = threading.Lock()
        self.actions: list[tuple[float, list[float]]] = []
        self.statuses: list[DiagnosticStatus] = []
        ros.create_subscription(Float32MultiArray, "action", self._on_action, 50)
        ros.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_action(self, msg: Float32MultiArray) -> None:
        with self.lock:
            self.actions.append((time.monotonic(), list(msg.data)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.statuses += [s for s in msg.status if s.name.endswith("control loop")]

    def message(self, frame: np.ndarray, kind: str = "jpeg"):
        stamp = self.ros.get_clock().now().to_msg()
        if self.transport == "raw":
            return rgb_to_image(frame, stamp, "cam")
        return rgb_to_compressed(frame, stamp, "cam", kind)

    def stream(self, msg, seconds: float, rate_hz: float = CAMERA_HZ) -> None:
        """Publish ``msg`` with a fresh stamp at ``rate_hz`` for ``seconds`` (encoded once, like the benchmark)."""
        start = time.monotonic()
        for i in range(round(seconds * rate_hz)):
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
            msg.header.stamp = self.ros.get_clock().now().to_msg()
            self.pub.publish(msg)

    def actions_between(self, start: float, end: float) -> list[list[float]]:
        with self.lock:
            return [a for t, a in self.actions if start <= t < end]

    def latest_status(self) -> DiagnosticStatus | None:
        with self.lock:
            return self.statuses[-1] if self.statuses else None


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def start_policy(launch, checkpoint: Path, prompt: Path, **overrides) -> NodeProcess:
    params = dict(checkpoint=str(checkpoint), prompt_video=str(prompt), control_rate_hz=CONTROL_HZ)
    return launch("ros_nodes.policy_node", "policy_node", {**params, **overrides})


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_full_resolution_frames_reach_the_policy_at_its_control_rate(
    ros, launch, tiny_checkpoint, prompts, transport: str
) -> None:
    node = start_policy(launch, tiny_checkpoint, prompts[0], image_transport=transport, image_timeout_s=1.0)
    camera = Camera(ros, transport)
    wait_matched(camera.pub, node)
    expected = CONTROL_HZ * WINDOW_S
    for width, height in ((640, 480), (1280, 720)):
        msg = camera.message(camera_frame(height, width))
        camera.stream(msg, 1.0)  # the node sees frames again, and resumes acting
        start = time.monotonic()
        camera.stream(msg, WINDOW_S)
        got = len(camera.actions_between(start, start + WINDOW_S))
        assert got >= 0.8 * expected, (
            f"{width}x{height} {transport} ({len(msg.data)} bytes): {got} actions in {WINDOW_S:g} s at "
            f"control_rate_hz {CONTROL_HZ:g}, expected about {expected:g}\n{node.log()}"
        )
    assert "DDS transport for large images: FASTDDS_DEFAULT_PROFILES_FILE=" in node.log()
    assert node.alive()


@pytest.mark.slow
def test_diagnostics_name_a_publisher_whose_frames_stop_arriving(
    ros, launch, tiny_checkpoint, prompts
) -> None:
    node = start_policy(launch, tiny_checkpoint, prompts[0], image_timeout_s=0.5)
    camera = Camera(ros, "raw")
    wait_matched(camera.pub, node)
    camera.stream(camera.message(camera_frame(24, 32)), 1.0)
    assert camera.actions_between(0, time.monotonic()), node.log()
    stopped = time.monotonic()  # the publisher stays, its frames stop (as when DDS drops large samples)

    def silent():
        status = camera.latest_status()
        return status if status is not None and values(status)["camera_status"] == "no frames" else None

    status = wait_for(silent, 10, "a 'no frames' diagnostic")
    assert time.monotonic() - stopped >= 2.0, "reported before stall_s"
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith("image stale; camera /image has 1 publisher but no frame for ")
    assert "FASTDDS_DEFAULT_PROFILES_FILE=" in status.message and "BOTH processes" in status.message
    assert values(status)["camera_topic"] == "/image" and values(status)["camera_publishers"] == "1"
    wait_for(lambda: "has 1 publisher but no frame for" in node.log(), 5, "the warning in the log")
    assert node.log().count("has 1 publisher but no frame for") == 1, "rate-limited: once per 10 s"

    ros.destroy_publisher(camera.pub)
    gone = wait_for(
        lambda: (s := camera.latest_status()) and values(s)["camera_status"] == "no publisher" and s,
        10,
        "a 'no publisher' diagnostic",
    )
    assert "no publisher on camera topic /image" in gone.message and values(gone)["camera_publishers"] == "0"


def offline_action(policy, prompt: Path, pixels: np.ndarray) -> np.ndarray:
    size = policy.config.image_size
    policy.set_prompt(prompt_tensor(prompt, policy.config.prompt_frames, size))
    policy.reset()
    return policy.select_action(frames_to_tensor(pixels, size)).numpy()


@pytest.mark.slow
def test_bad_compressed_images_are_logged_and_dropped(
    ros, launch, tiny_checkpoint, prompts, offline_policy
) -> None:
    node = start_policy(
        launch, tiny_checkpoint, prompts[0], image_transport="compressed", control_rate_hz=50.0
    )
    camera = Camera(ros, "compressed")
    wait_matched(camera.pub, node)
    frame = np.random.default_rng(1).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    png, jpeg = camera.message(frame, "png"), camera.message(frame, "jpeg")
    bad = [
        ("tiff", png.data, "unsupported compressed format 'tiff'"),
        ("16UC1; compressedDepth png", png.data, "compressedDepth images are not supported"),
        ("png", jpeg.data, "format says png but"),
        ("jpeg", jpeg.data[:40], "OpenCV cannot decode the 40-byte jpeg"),
        ("jpeg", b"", "format says jpeg but the 0 bytes"),
    ]
    start = time.monotonic()
    for fmt, data, _ in bad:
        msg = camera.message(frame)
        msg.format, msg.data = fmt, data
        camera.pub.publish(msg)
        time.sleep(0.05)  # SensorDataQoS keeps the last 5: do not overrun the subscriber's queue
    wait_for(
        lambda: node.log().count("rejected image on /image/compressed") >= len(bad), 10, "the rejections"
    )
    for _, _, error in bad:
        assert error in node.log()
    time.sleep(0.3)
    assert not camera.actions_between(start, time.monotonic()), "a bad image produced an action"
    assert node.alive()

    for msg, decoded in ((png, frame), (jpeg, compressed_to_rgb(jpeg))):
        time.sleep(0.8)  # past image_timeout_s: the node holds, so this frame starts a new episode
        sent = time.monotonic()
        msg.header.stamp = ros.get_clock().now().to_msg()
        camera.pub.publish(msg)
        got = wait_for(lambda t=sent: camera.actions_between(t, time.monotonic()), 10, "an action")[0]
        np.testing.assert_array_equal(
            np.array(got, np.float32), offline_action(offline_policy, prompts[0], decoded)
        )
