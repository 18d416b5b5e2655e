"""policy_node: camera images + a prompt video -> end-effector velocity, gripper and raw action commands.

Subscribes ``image`` (sensor_msgs/Image, SensorDataQoS; or ``image/compressed``, sensor_msgs/CompressedImage,
with ``image_transport: compressed``) and ``estop`` (std_msgs/Bool, true latches); publishes ``ee_twist_cmd``
(geometry_msgs/TwistStamped), ``gripper_cmd`` (std_msgs/Float32), ``action`` (std_msgs/Float32MultiArray) and
``/diagnostics`` (control loop and camera health); services ``~/reset``, ``~/reload_prompt``,
``~/release_estop`` (std_srvs/Trigger). Images are decoded on the executor thread; the policy runs on its own
thread at ``control_rate_hz``, once per new image; every safety hold publishes zero velocity (see
ros_nodes.safety and the README).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, Header, MultiArrayDimension, MultiArrayLayout
from std_srvs.srv import Trigger

from ros_nodes.camera_health import OK, PROBLEMS, SLOW, CameraHealth, CameraStatus
from ros_nodes.camera_input import check_transport, subscribe_camera, to_rgb
from ros_nodes.dds_transport import transport_hint
from ros_nodes.image_conversion import ImageConversionError
from ros_nodes.log_limiter import RepeatFilter
from ros_nodes.node_parameters import POLICY_NODE, declare
from ros_nodes.node_runner import run_node
from ros_nodes.prompt import ShortPromptWarning, prompt_tensor
from ros_nodes.rate_stats import RollingStats
from ros_nodes.safety import ESTOP, SafetyGate
from vid2robot.policy.deployment import DeployablePolicy, load_policy
from vid2robot.policy.preprocess import frames_to_tensor

COMMAND_QOS = QoSProfile(depth=10)


class PolicyNode(Node):
    """Runs a video-prompted policy on the newest camera image at a fixed rate, behind a safety gate."""

    def __init__(self, name: str = "policy_node", **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare(self, POLICY_NODE)
        get = lambda key: self.get_parameter(key).value  # noqa: E731
        if not get("control_rate_hz") > 0:
            raise ValueError(f"control_rate_hz must be > 0, got {get('control_rate_hz')}")
        check_transport(get("image_transport"))
        self._policy: DeployablePolicy = load_policy(get("checkpoint"), map_location=get("device"))
        if self._policy.prompt_kind != "video":
            raise ValueError(
                f"{get('checkpoint')} holds a {type(self._policy).__name__} prompted by "
                f"{self._policy.prompt_kind!r}; policy_node needs a video-prompted policy"
            )
        coeff = float(get("temporal_ensemble_coeff"))
        self._policy.set_temporal_ensembling(None if coeff < 0 else coeff)
        self._image_size = int(self._policy.config.image_size)
        self._gate = SafetyGate(get("image_timeout_s"), get("max_linear_speed"), get("max_speed_norm"))
        self._gate.enabled = bool(get("enabled"))
        self._frame_id = str(get("command_frame_id"))
        self._period = 1.0 / float(get("control_rate_hz"))
        self._policy_lock = threading.Lock()  # the policy's state: prompt, frame history, action queue
        self._set_prompt(str(get("prompt_video")))

        self._frame_lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_stamp = None
        self._frame_received: float | None = None
        self._frame_seq = 0
        self._used_seq = 0
        self._hold: str | None = "starting"
        self._images_rejected = 0
        self._rejections = RepeatFilter()
        self._control_stats = RollingStats()
        self._inference_stats = RollingStats()

        self._twist_pub = self.create_publisher(TwistStamped, "ee_twist_cmd", COMMAND_QOS)
        self._gripper_pub = self.create_publisher(Float32, "gripper_cmd", COMMAND_QOS)
        self._action_pub = self.create_publisher(Float32MultiArray, "action", COMMAND_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", COMMAND_QOS)
        _, self._camera_topic = subscribe_camera(self, get("image_transport"), self._on_image)
        self._camera = CameraHealth(
            self._camera_topic, 1.0 / self._period, transport_hint(os.environ), started=time.monotonic()
        )
        self._camera_kind = OK
        self._camera_warnings = RepeatFilter(period_s=10.0)  # a camera problem: warned about every 10 s
        self._camera_notes = RepeatFilter(period_s=30.0)  # a camera slower than the control rate: info
        self.create_subscription(Bool, "estop", self._on_estop, COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/reload_prompt", self._on_reload_prompt)
        self.create_service(Trigger, "~/release_estop", self._on_release_estop)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(1.0, self._publish_diagnostics)

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._control_loop, name="policy_control", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"policy {type(self._policy).__name__} from {get('checkpoint')} at {1 / self._period:.1f} Hz, "
            f"prompt {get('prompt_video')}, camera {self._camera_topic} ({get('image_transport')})"
        )

    # -- inputs (executor thread) --------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        try:
            frame = to_rgb(msg)
        except ImageConversionError as error:
            self._images_rejected += 1
            self._camera.on_rejected(time.monotonic(), str(error))
            if self._rejections.should_log(str(error), time.monotonic()):
                self.get_logger().error(f"rejected image on {self._camera_topic}: {error}")
            return
        now = time.monotonic()
        self._camera.on_frame(now, Time.from_msg(msg.header.stamp).nanoseconds * 1e-9)
        with self._frame_lock:
            self._frame, self._frame_stamp = frame, msg.header.stamp
            self._frame_received = now
            self._frame_seq += 1

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self._gate.estop_latched:
            self._gate.latch_estop()
            self.get_logger().error("E-STOP latched: zero velocity until ~/release_estop is called")

    def _on_release_estop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        was = self._gate.estop_latched
        self._gate.release_estop()
        self._reset_policy()
        response.success, response.message = True, "e-stop released" if was else "e-stop was not latched"
        self.get_logger().warning(response.message)
        return response

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_policy()
        response.success, response.message = True, "episode reset: frame history and action queue cleared"
        return response

    def _on_reload_prompt(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        path = str(self.get_parameter("prompt_video").value)
        try:
            self._set_prompt(path)
        except (OSError, ValueError) as error:
            response.success, response.message = False, f"prompt {path} not loaded, old prompt kept: {error}"
            self.get_logger().error(response.message)
        else:
            response.success, response.message = True, f"prompt reloaded from {path}"
        return response

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "prompt_video":
                try:
                    self._set_prompt(str(param.value))
                except (OSError, ValueError) as error:
                    message = f"prompt_video {param.value!r} rejected, old prompt kept: {error}"
                    self.get_logger().error(message)
                    return SetParametersResult(successful=False, reason=message)
            elif param.name == "enabled":
                self._gate.enabled = bool(param.value)
                self.get_logger().warning(f"enabled = {self._gate.enabled}")
        return SetParametersResult(successful=True)

    def _set_prompt(self, path: str) -> None:
        """Encode the prompt at ``path`` and swap it in (a new episode); raises without touching the old one."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ShortPromptWarning)
            video = prompt_tensor(path, self._policy.config.prompt_frames, self._image_size)
        for warning in caught:
            self.get_logger().warning(str(warning.message))
        with self._policy_lock:
            self._policy.set_prompt(video.to(self._policy.device))
            self._policy.reset()
        self.get_logger().info(f"prompt set from {path} ({len(video)} frames)")

    def _reset_policy(self) -> None:
        with self._policy_lock:
            self._policy.reset()

    # -- control loop (own thread) -------------------------------------------------------------------------
    def _control_loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            try:
                self._tick()
            except Exception as error:  # a bad step must never take the robot's command stream down
                if not self.context.ok():
                    return
                self.get_logger().error(f"control step failed, holding: {error!r}")
                self._publish_hold("control step failed")
            next_tick += self._period
            delay = next_tick - time.monotonic()
            if delay < 0:  # overran: do not try to catch up with a burst of ticks
                next_tick, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _tick(self) -> None:
        with self._frame_lock:
            frame, stamp, received, seq = (
                self._frame,
                self._frame_stamp,
                self._frame_received,
                self._frame_seq,
            )
        reason = self._gate.hold_reason(time.monotonic(), received)
        if reason is not None:
            self._publish_hold(reason)
            return
        if seq == self._used_seq:
            return  # one action per new image
        self._used_seq = seq
        with self._policy_lock:
            if self._hold is not None:  # the frame history would span the hold: start a new episode
                self._policy.reset()
            start = time.perf_counter()
            action = self._policy.select_action(frames_to_tensor(frame, self._image_size))
            self._inference_stats.add(time.monotonic(), time.perf_counter() - start)
        action = action.detach().to("cpu", torch.float32).numpy()
        reason = self._gate.hold_reason(time.monotonic(), received)  # e-stop may have latched meanwhile
        command = self._gate.command(action)
        if reason is not None or command.hold is not None:
            if command.hold is not None:
                self.get_logger().error(
                    f"policy returned a non-finite action {action.tolist()}: not published"
                )
            self._publish_hold(reason or command.hold)
            return
        self._set_hold(None)
        self._gripper_pub.publish(Float32(data=float(command.gripper)))
        self._action_pub.publish(
            Float32MultiArray(
                layout=_layout(len(action)), data=[float(x) for x in np.clip(action, -1.0, 1.0)]
            )
        )
        self._twist_pub.publish(self._twist(command.linear, stamp))
        latency = (self.get_clock().now() - Time.from_msg(stamp)).nanoseconds * 1e-9
        self._control_stats.add(time.monotonic(), latency)

    def _twist(self, linear: np.ndarray, stamp) -> TwistStamped:
        msg = TwistStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self._frame_id
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in linear)
        return msg

    def _publish_hold(self, reason: str) -> None:
        self._set_hold(reason)
        self._twist_pub.publish(self._twist(np.zeros(3), self.get_clock().now().to_msg()))

    def _set_hold(self, reason: str | None) -> None:
        if reason != self._hold:
            if reason is None:
                self.get_logger().info("running: publishing policy actions")
            else:
                self.get_logger().warning(f"holding (zero velocity): {reason}")
            self._hold = reason

    # -- diagnostics ---------------------------------------------------------------------------------------
    def _check_camera(self) -> CameraStatus:
        """The camera's status now; a change, or a problem that persists, is logged (rate-limited)."""
        now = time.monotonic()
        camera = self._camera.status(now, self.count_publishers(self._camera_topic))
        if camera.kind in PROBLEMS:
            if self._camera_warnings.should_log(camera.kind, now):
                self.get_logger().warning(camera.message)
        elif camera.kind == SLOW:
            if self._camera_notes.should_log(camera.kind, now):
                self.get_logger().info(camera.message)
        elif self._camera_kind != camera.kind:
            self.get_logger().info(f"{camera.message} (was: {self._camera_kind})")
        self._camera_kind = camera.kind
        return camera

    def _publish_diagnostics(self) -> None:
        try:
            self._publish_diagnostics_once()
        except Exception as error:  # reporting must never take the node (and its command stream) down
            if self.context.ok():
                self.get_logger().error(f"diagnostics failed: {error!r}")

    def _publish_diagnostics_once(self) -> None:
        hold = self._hold
        camera = self._check_camera()
        level = DiagnosticStatus.OK if hold is None and camera.kind not in PROBLEMS else DiagnosticStatus.WARN
        if hold == ESTOP:
            level = DiagnosticStatus.ERROR
        values = {
            "control_rate_hz": f"{self._control_stats.rate_hz():.2f}",
            "latency_p50_ms": f"{1e3 * self._control_stats.latency_percentile(50):.2f}",
            "latency_p99_ms": f"{1e3 * self._control_stats.latency_percentile(99):.2f}",
            "inference_p50_ms": f"{1e3 * self._inference_stats.latency_percentile(50):.2f}",
            "actions_published": str(self._control_stats.count),
            "images_rejected": str(self._images_rejected),
            "estop_latched": str(self._gate.estop_latched),
            "enabled": str(self._gate.enabled),
            "camera_topic": self._camera_topic,
            "camera_status": camera.kind,
            "camera_publishers": str(camera.publishers),
            "camera_frame_rate_hz": f"{camera.frame_rate_hz:.2f}",
            "camera_last_frame_age_s": f"{camera.last_frame_age_s:.2f}",
            "frames_received": str(self._camera.frames),
        }
        message = hold or "running"
        if camera.kind != OK:
            message = f"{message}; {camera.message}"
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: control loop",
            message=message,
            hardware_id=self.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        self._diag_pub.publish(
            DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])
        )

    def destroy_node(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        super().destroy_node()


def _layout(size: int) -> MultiArrayLayout:
    return MultiArrayLayout(dim=[MultiArrayDimension(label="action", size=size, stride=size)])


def main(args: list[str] | None = None) -> int:
    """``ros2 run vid2robot policy_node``: exit code 2 on invalid parameters or checkpoint."""
    return run_node(PolicyNode, "policy_node", args)


if __name__ == "__main__":
    sys.exit(main())
