"""policy_node in its own process over real Fast DDS: image in -> action out, encodings, bad input, stale
timeout, e-stop latch, enable switch, prompt swap, startup validation."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from ros_fixtures import NodeProcess, wait_for, wait_matched
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray
from std_srvs.srv import Trigger

from ros_nodes.image_conversion import rgb_to_image
from ros_nodes.prompt import prompt_tensor
from vid2robot.policy import frames_to_tensor, load_policy

MAX_SPEED = 0.5
FRAME = np.random.default_rng(1).integers(0, 256, (24, 30, 3), dtype=np.uint8)


class PolicyClient:
    """The test's side of one policy_node: publishers, recorded outputs, service and parameter calls."""

    def __init__(self, ros: Node, name: str = "policy_node") -> None:
        self.ros, self.name = ros, name
        self.lock = threading.Lock()
        self.twists: list[tuple[float, TwistStamped]] = []
        self.actions: list[tuple[float, list[float]]] = []
        self.grippers: list[float] = []
        self.image_pub = ros.create_publisher(Image, "image", qos_profile_sensor_data)
        self.estop_pub = ros.create_publisher(Bool, "estop", 10)
        ros.create_subscription(TwistStamped, "ee_twist_cmd", self._record(self.twists), 10)
        ros.create_subscription(
            Float32MultiArray, "action", self._record(self.actions, lambda m: list(m.data)), 10
        )
        ros.create_subscription(Float32, "gripper_cmd", lambda m: self.grippers.append(m.data), 10)

    def _record(self, into: list, convert=lambda m: m):
        def callback(msg) -> None:
            with self.lock:
                into.append((time.monotonic(), convert(msg)))

        return callback

    def wait_ready(self, process: NodeProcess, timeout: float = 60.0) -> None:
        wait_matched(self.image_pub, process, timeout)
        # A zero-velocity hold is published while no image has arrived: proof the command path is matched.
        wait_for(lambda: self.twists, 10, "the first (hold) command")

    def send(self, pixels: np.ndarray, encoding: str = "rgb8") -> Image:
        msg = rgb_to_image(
            np.ascontiguousarray(pixels[..., :3]) if pixels.ndim == 3 else pixels,
            self.ros.get_clock().now().to_msg(),
            "cam",
        )
        if encoding != "rgb8":
            msg = encode(pixels, encoding, msg)
        self.image_pub.publish(msg)
        return msg

    def call(self, service: str, timeout: float = 10.0) -> Trigger.Response:
        client = self.ros.create_client(Trigger, f"/{self.name}/{service}")
        assert client.wait_for_service(timeout), f"no service /{self.name}/{service}"
        future = client.call_async(Trigger.Request())
        wait_for(future.done, timeout, service)
        return future.result()

    def set_param(self, name: str, value) -> tuple[bool, str]:
        client = self.ros.create_client(SetParameters, f"/{self.name}/set_parameters")
        assert client.wait_for_service(10)
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        future = client.call_async(request)
        wait_for(future.done, 20, f"set {name}")
        result = future.result().results[0]
        return result.successful, result.reason

    def actions_since(self, t: float) -> list[list[float]]:
        with self.lock:
            return [a for when, a in self.actions if when >= t]

    def twists_since(self, t: float) -> list[TwistStamped]:
        with self.lock:
            return [m for when, m in self.twists if when >= t]

    def twist_for(self, image: Image) -> TwistStamped | None:
        """The command computed from ``image`` (its header carries the image's stamp)."""
        with self.lock:
            return next((m for _, m in self.twists if m.header.stamp == image.header.stamp), None)

    def action_for(self, pixels: np.ndarray, encoding: str = "rgb8", timeout: float = 10.0) -> list[float]:
        start = time.monotonic()
        self.send(pixels, encoding)
        return wait_for(lambda: self.actions_since(start), timeout, f"an action for a {encoding} image")[0]


def encode(pixels: np.ndarray, encoding: str, msg: Image) -> Image:
    """Re-encode the rgb8 message ``msg`` (of ``pixels``) into another encoding."""
    channels = {
        "bgr8": pixels[:, :, ::-1],
        "rgba8": np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)]),
    }
    channels["bgra8"] = np.dstack([pixels[:, :, ::-1], np.full(pixels.shape[:2], 255, np.uint8)])
    channels["mono8"] = pixels[:, :, :1]
    data = np.ascontiguousarray(channels[encoding])
    msg.encoding, msg.step = encoding, data.shape[1] * data.shape[2]
    msg.data = data.tobytes()
    return msg


def linear(msg: TwistStamped) -> np.ndarray:
    return np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z])


def params(checkpoint: Path, prompt: Path, /, **overrides) -> dict:
    values = dict(
        checkpoint=str(checkpoint),
        prompt_video=str(prompt),
        control_rate_hz=50.0,
        image_timeout_s=1.0,
        max_linear_speed=MAX_SPEED,
    )
    values.update(overrides)
    return values


def offline_action(policy, prompt: Path, pixels: np.ndarray) -> np.ndarray:
    """What the in-process policy does with one frame at the start of an episode."""
    size = policy.config.image_size
    policy.set_prompt(prompt_tensor(prompt, policy.config.prompt_frames, size))
    policy.reset()
    return policy.select_action(frames_to_tensor(pixels, size)).numpy()


class Streamer:
    """Publish ``FRAME`` at ``rate_hz`` from a thread until stopped."""

    def __init__(self, client: PolicyClient, rate_hz: float = 20.0) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, 1 / rate_hz), daemon=True)
        self._thread.start()

    def _run(self, client: PolicyClient, period: float) -> None:
        while not self._stop.wait(period):
            client.send(FRAME)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def test_each_encoding_gives_the_offline_action(
    ros, launch, tiny_checkpoint, prompts, offline_policy
) -> None:
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0]))
    client = PolicyClient(ros)
    client.wait_ready(node)
    grey = np.repeat(FRAME[:, :, :1], 3, axis=2)
    for encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        assert client.call("reset").success
        start = time.monotonic()
        sent = client.send(FRAME, encoding)
        got = np.array(wait_for(partial(client.actions_since, start), 10, encoding)[0], np.float32)
        expected = offline_action(offline_policy, prompts[0], grey if encoding == "mono8" else FRAME)
        np.testing.assert_array_equal(got, expected, err_msg=encoding)
        twist = wait_for(partial(client.twist_for, sent), 5, "the twist answering the image")
        assert twist.header.frame_id == "base_link"
        np.testing.assert_allclose(linear(twist), expected[:3] * MAX_SPEED, rtol=1e-6)
        assert client.grippers[-1] == pytest.approx(float(expected[3]))
    assert node.alive()


@pytest.mark.slow
def test_temporal_ensembling_parameter_blends_chunks_as_offline(
    ros, launch, chunked_checkpoint, prompts
) -> None:
    node = launch(
        "ros_nodes.policy_node",
        "policy_node",
        params(chunked_checkpoint, prompts[0], temporal_ensemble_coeff=0.5),
    )
    client = PolicyClient(ros)
    client.wait_ready(node)
    frames = np.random.default_rng(2).integers(0, 256, (4, *FRAME.shape), dtype=np.uint8)
    got = np.array([client.action_for(frame) for frame in frames], np.float32)
    policy = load_policy(chunked_checkpoint)
    size = policy.config.image_size
    policy.set_prompt(prompt_tensor(prompts[0], policy.config.prompt_frames, size))
    policy.set_temporal_ensembling(0.5)
    expected = np.stack([policy.select_action(frames_to_tensor(f, size)).numpy() for f in frames])
    np.testing.assert_array_equal(got, expected)


def test_bad_encodings_and_sizes_are_logged_and_survived(ros, launch, tiny_checkpoint, prompts) -> None:
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0]))
    client = PolicyClient(ros)
    client.wait_ready(node)
    start = time.monotonic()
    bad = []
    for mutate in (
        lambda m: setattr(m, "encoding", "16UC1"),
        lambda m: setattr(m, "encoding", "yuv422"),
        lambda m: setattr(m, "height", m.height + 1),
        lambda m: setattr(m, "step", 3),
        lambda m: setattr(m, "data", b""),
        lambda m: setattr(m, "width", 0),
    ):
        msg = rgb_to_image(FRAME, ros.get_clock().now().to_msg(), "cam")
        mutate(msg)
        client.image_pub.publish(msg)
        bad.append(msg)
        time.sleep(0.05)  # SensorDataQoS keeps the last 5: do not overrun the subscriber's queue
    wait_for(lambda: node.log().count("rejected image") >= len(bad), 10, "six logged rejections")
    assert not client.actions_since(start), "a malformed image produced an action"
    log = node.log()
    assert "unsupported image encoding '16UC1'" in log and "unsupported image encoding 'yuv422'" in log
    assert "expected step*height" in log and "empty size" in log
    assert node.alive()
    client.action_for(FRAME)  # still serving


def test_stale_images_give_zero_velocity_and_no_actions(ros, launch, tiny_checkpoint, prompts) -> None:
    node = launch(
        "ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0], image_timeout_s=0.3)
    )
    client = PolicyClient(ros)
    client.wait_ready(node)
    assert all(not linear(m).any() for m in client.twists_since(0)), "no image yet must mean zero velocity"
    streamer = Streamer(client)
    moving = wait_for(lambda: [m for m in client.twists_since(0) if linear(m).any()], 10, "a moving command")
    assert moving
    streamer.stop()
    stopped = time.monotonic()
    time.sleep(0.6)
    late = client.twists_since(stopped + 0.45)
    assert len(late) >= 3, "the node must keep publishing zero velocity while images are stale"
    assert all(not linear(m).any() for m in late)
    assert not client.actions_since(stopped + 0.45)
    assert "holding (zero velocity): image stale" in node.log()
    client.action_for(FRAME)  # images return -> actions resume


def test_estop_latches_until_released(ros, launch, tiny_checkpoint, prompts) -> None:
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0]))
    client = PolicyClient(ros)
    client.wait_ready(node)
    streamer = Streamer(client)
    try:
        wait_for(lambda: client.actions_since(0), 10, "actions")
        client.estop_pub.publish(Bool(data=True))
        wait_for(lambda: "E-STOP latched" in node.log(), 5, "the e-stop log")
        time.sleep(0.1)
        latched = time.monotonic()
        client.estop_pub.publish(Bool(data=False))  # does not release a latched e-stop
        time.sleep(0.6)
        assert not client.actions_since(latched)
        held = client.twists_since(latched)
        assert len(held) >= 10 and all(not linear(m).any() for m in held)
        response = client.call("release_estop")
        assert response.success and response.message == "e-stop released"
        wait_for(lambda: client.actions_since(time.monotonic() - 0.05), 5, "actions after release")
    finally:
        streamer.stop()


def test_enabled_switch(ros, launch, tiny_checkpoint, prompts) -> None:
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0]))
    client = PolicyClient(ros)
    client.wait_ready(node)
    streamer = Streamer(client)
    try:
        wait_for(lambda: client.actions_since(0), 10, "actions")
        assert client.set_param("enabled", False) == (True, "")
        time.sleep(0.1)
        disabled = time.monotonic()
        time.sleep(0.5)
        assert not client.actions_since(disabled)
        assert all(not linear(m).any() for m in client.twists_since(disabled))
        assert client.set_param("enabled", True)[0]
        wait_for(lambda: client.actions_since(time.monotonic() - 0.05), 5, "actions after enabling")
    finally:
        streamer.stop()


def test_prompt_swap_by_parameter_and_service(ros, launch, tiny_checkpoint, prompts, offline_policy) -> None:
    first, second = prompts
    expected = {p: offline_action(offline_policy, p, FRAME) for p in prompts}
    assert not np.array_equal(expected[first], expected[second]), "precondition: the prompts must matter"
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, first))
    client = PolicyClient(ros)
    client.wait_ready(node)
    np.testing.assert_array_equal(client.action_for(FRAME), expected[first])
    assert client.set_param("prompt_video", str(second)) == (True, "")
    np.testing.assert_array_equal(client.action_for(FRAME), expected[second])
    ok, reason = client.set_param("prompt_video", "/nonexistent/prompt.npy")
    assert not ok and "does not exist" in reason and "old prompt kept" in reason
    assert client.call("reset").success
    np.testing.assert_array_equal(client.action_for(FRAME), expected[second])
    response = client.call("reload_prompt")
    assert response.success, response.message
    np.testing.assert_array_equal(client.action_for(FRAME), expected[second])
    assert node.alive()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checkpoint": ""}, "parameter 'checkpoint' is required"),
        ({"checkpoint": "/nonexistent/ckpt"}, "no policy checkpoint at /nonexistent/ckpt"),
        ({"prompt_video": "/nonexistent/p.npy"}, "prompt video /nonexistent/p.npy does not exist"),
    ],
)
def test_invalid_startup_parameters_exit_2_with_a_clear_error(
    launch, tiny_checkpoint, prompts, overrides, message
) -> None:
    node = launch("ros_nodes.policy_node", "policy_node", params(tiny_checkpoint, prompts[0], **overrides))
    assert node.proc.wait(60) == 2
    assert "cannot start" in node.log() and message in node.log()
