"""sim_robot_node: a Meta-World task as a ROS robot, so the whole control loop runs without hardware.

Publishes ``image`` (sensor_msgs/Image rgb8, SensorDataQoS), ``success`` (std_msgs/Bool, each step),
``applied_action`` (std_msgs/Float32MultiArray, the Meta-World action of each step) and ``episode_success``
(std_msgs/Bool, at each episode end); subscribes ``ee_twist_cmd`` (geometry_msgs/TwistStamped) and
``gripper_cmd`` (std_msgs/Float32), mapped back to Meta-World actions with the policy node's scale.

``lock_step`` (default): publish a frame, wait for the command answering it (twist stamped with the frame's
stamp, plus a gripper command received after the frame), step once. This makes the ROS loop reproduce the
in-process evaluator step for step. Otherwise the simulator free-runs at ``rate_hz`` with the newest command.
Either way a command older than ``command_timeout_s`` is replaced by zero velocity (gripper held).
Episode ``i`` uses the closed-loop evaluator's layout ``episode_seed(seed, task, i, EVAL_PURPOSE)``, so a run
is comparable with ``vid2robot.sim.closed_loop.evaluate_closed_loop(..., seed=seed)`` layout for layout.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time

import numpy as np
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, MultiArrayDimension, MultiArrayLayout
from std_srvs.srv import Trigger

from ros_nodes.action_mapping import command_to_action
from ros_nodes.image_conversion import rgb_to_image
from ros_nodes.node_parameters import SIM_ROBOT_NODE, declare
from ros_nodes.node_runner import run_node
from ros_nodes.safety import is_stale
from vid2robot.sim.expert_data import EVAL_PURPOSE, episode_seed
from vid2robot.sim.metaworld_env import CAMERA_VIEWS, MetaWorldEnv, check_task

RELIABLE = QoSProfile(depth=10)
POLICY_WAIT_S = 120.0  # lock-step: how long to wait for the policy to appear at start-up


class SimRobotNode(Node):
    """Meta-World episodes driven by velocity and gripper commands over ROS."""

    def __init__(self, name: str = "sim_robot_node", **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare(self, SIM_ROBOT_NODE)
        p = {spec.name: self.get_parameter(spec.name).value for spec in SIM_ROBOT_NODE}
        for key in ("rate_hz", "command_timeout_s", "max_linear_speed"):
            if not p[key] > 0:
                raise ValueError(f"{key} must be > 0, got {p[key]}")
        if p["num_episodes"] < 0:
            raise ValueError(f"num_episodes must be >= 0 (0 runs forever), got {p['num_episodes']}")
        self._p = p
        check_task(p["task"])
        if p["camera"] not in CAMERA_VIEWS:
            raise ValueError(f"camera must be one of {sorted(CAMERA_VIEWS)}, got {p['camera']!r}")
        self._env: MetaWorldEnv | None = None  # built on the simulation thread: its GL context is per thread
        self._cond = threading.Condition()
        self._twist: TwistStamped | None = None
        self._twist_received: float | None = None
        self._gripper = 0.0
        self._gripper_count = 0
        self.timeouts = 0

        self._image_pub = self.create_publisher(Image, "image", qos_profile_sensor_data)
        self._success_pub = self.create_publisher(Bool, "success", RELIABLE)
        self._episode_pub = self.create_publisher(Bool, "episode_success", RELIABLE)
        self._action_pub = self.create_publisher(Float32MultiArray, "applied_action", RELIABLE)
        self.create_subscription(TwistStamped, "ee_twist_cmd", self._on_twist, RELIABLE)
        self.create_subscription(Float32, "gripper_cmd", self._on_gripper, RELIABLE)
        self._reset_client = (
            self.create_client(Trigger, p["policy_reset_service"]) if p["policy_reset_service"] else None
        )
        self._stop = threading.Event()
        self.done = threading.Event()  # set when the episodes are over (the process then exits)
        self._thread = threading.Thread(target=self._run, name="sim_robot", daemon=True)
        self._thread.start()

    def _on_twist(self, msg: TwistStamped) -> None:
        with self._cond:
            self._twist, self._twist_received = msg, time.monotonic()
            self._cond.notify_all()

    def _on_gripper(self, msg: Float32) -> None:
        with self._cond:
            self._gripper = float(np.clip(msg.data, -1.0, 1.0)) if np.isfinite(msg.data) else self._gripper
            self._gripper_count += 1
            self._cond.notify_all()

    # -- episodes (own thread) -----------------------------------------------------------------------------
    def _run(self) -> None:
        p = self._p
        try:
            self._env = MetaWorldEnv(
                p["task"],
                seed=p["seed"],
                image_size=p["image_size"],
                cameras=(p["camera"],),
                max_steps=p["max_episode_steps"],
                hide_goal=p["hide_goal"],
                shared_start=p["shared_start"],
            )
            if self._p["lock_step"] and not self._wait_for_policy():
                return
            episodes = range(self._p["num_episodes"]) if self._p["num_episodes"] else itertools.count()
            for episode in episodes:
                if self._stop.is_set():
                    return
                self._run_episode(episode)
            self.get_logger().info(
                f"{self._p['num_episodes']} episodes done ({self.timeouts} command timeouts)"
            )
        except Exception as error:  # report, then end the process: a dead simulator must be visible
            if self.context.ok():
                self.get_logger().fatal(f"simulation failed: {error!r}")
        finally:
            if self._env is not None:
                self._env.close()
            self.done.set()

    def _wait_for_policy(self) -> bool:
        deadline = time.monotonic() + POLICY_WAIT_S
        while self._image_pub.get_subscription_count() == 0 or (
            self._reset_client is not None and not self._reset_client.service_is_ready()
        ):
            if self._stop.wait(0.05):
                return False
            if time.monotonic() > deadline:
                self.get_logger().fatal(f"no policy subscribed to the images within {POLICY_WAIT_S:.0f} s")
                return False
        return True

    def _run_episode(self, episode: int) -> None:
        seed = episode_seed(self._p["seed"], self._p["task"], episode, EVAL_PURPOSE)
        observation = self._env.reset(seed)
        self._reset_policy()
        with self._cond:
            self._gripper, self._twist = 0.0, None
        success = False
        period = 1.0 / self._p["rate_hz"]
        steps = 0
        while steps < self._p["max_episode_steps"]:
            if self._stop.is_set():
                return
            started = time.monotonic()
            frame = rgb_to_image(
                observation.frames[self._p["camera"]], self.get_clock().now().to_msg(), self._p["frame_id"]
            )
            with self._cond:
                gripper_count = self._gripper_count
            self._image_pub.publish(frame)
            if self._p["lock_step"]:
                action = self._wait_for_command(frame, gripper_count)
            else:
                self._stop.wait(max(0.0, period - (time.monotonic() - started)))
                action = self._latest_command()
            observation, step_success, done = self._env.step(action)
            steps += 1
            self._action_pub.publish(
                Float32MultiArray(
                    layout=MultiArrayLayout(dim=[MultiArrayDimension(label="action", size=4, stride=4)]),
                    data=[float(a) for a in action],
                )
            )
            self._success_pub.publish(Bool(data=step_success))
            success = success or step_success
            if step_success or done:
                break
        self.get_logger().info(
            f"episode {episode} (seed {seed}): {'success' if success else 'failure'} after {steps} steps"
        )
        self._episode_pub.publish(Bool(data=success))

    def _reset_policy(self) -> None:
        if self._reset_client is None or not self._reset_client.service_is_ready():
            return
        future = self._reset_client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline and not self._stop.wait(0.005):
            pass
        if not future.done():
            self.get_logger().error(f"{self._p['policy_reset_service']} did not answer in 10 s")

    def _wait_for_command(self, frame: Image, gripper_count: int) -> np.ndarray:
        """The command answering ``frame``; zero velocity (gripper held) after ``command_timeout_s``."""

        def answered() -> bool:
            twist = self._twist
            return (
                twist is not None
                and twist.header.stamp == frame.header.stamp
                and self._gripper_count > gripper_count
            )

        with self._cond:
            if self._cond.wait_for(answered, self._p["command_timeout_s"]):
                return self._action(self._twist)
            self.timeouts += 1
            self.get_logger().warning(f"no command within {self._p['command_timeout_s']} s: holding still")
            return self._action(None)

    def _latest_command(self) -> np.ndarray:
        with self._cond:
            stale = is_stale(time.monotonic(), self._twist_received, self._p["command_timeout_s"])
            return self._action(None if stale else self._twist)

    def _action(self, twist: TwistStamped | None) -> np.ndarray:
        """Meta-World action for a command (caller holds the lock); ``None`` is zero velocity."""
        linear = np.zeros(3)
        if twist is not None:
            v = twist.twist.linear
            linear = np.array([v.x, v.y, v.z])
        if not np.all(np.isfinite(linear)):
            self.get_logger().error(f"non-finite velocity {linear.tolist()}: holding still")
            linear = np.zeros(3)
        return command_to_action(linear, self._gripper, self._p["max_linear_speed"])

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vid2robot sim_robot_node``: exit code 2 on invalid parameters."""
    return run_node(SimRobotNode, "sim_robot_node", args)


if __name__ == "__main__":
    sys.exit(main())
