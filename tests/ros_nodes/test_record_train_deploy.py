"""From recordings to a policy, over real DDS between processes: sim_robot_node (lock-step) is driven by the
scripted expert as a teleoperator, episode_recorder records what it publishes (images and applied actions),
a tiny policy trains on the recorded dataset through the training CLI's ``run()``, and policy_node with that
policy then drives the simulator closed loop."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from hydra import compose, initialize_config_module
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from recorder_client import RecorderClient, wait_for_episodes
from ros_fixtures import wait_for, wait_matched
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray
from std_srvs.srv import Trigger

from ros_nodes.image_conversion import image_to_rgb
from vid2robot.cli.train import register_configs, run
from vid2robot.sim.expert_data import EVAL_PURPOSE, episode_seed
from vid2robot.sim.metaworld_env import MetaWorldEnv

TASK, SEED, STEPS, SPEED, SIZE = (
    "reach-v3",
    3,
    60,
    0.25,
    32,
)  # SPEED: a power of two, so m/s <-> action is exact
TRAIN, VAL = 2, 2
TINY_POLICY = [
    "data.num_workers=0", "data.batch_size=4", "data.prompt_camera=robot", f"module.policy_config.image_size={SIZE}",
    "module.policy_config.prompt_frames=4", "module.policy_config.state_frames=2", "module.policy_config.d_model=32",
    "module.policy_config.embed_dim=32", "module.policy_config.prompt_latents=4", "module.policy_config.state_latents=2",
    "module.policy_config.fusion_depth=1", "module.policy_config.decoder_depth=1", "module.policy_config.tcc_weight=0",
    "module.policy_config.vvcl_weight=0", "module.use_task_text=false", "module.warmup_steps=2",
    "trainer.accelerator=cpu", "trainer.devices=1", "trainer.enable_progress_bar=false", "trainer.max_steps=6",
    "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1",
]  # fmt: skip


@pytest.fixture
def ros_threads():
    """A test node on a multi-threaded executor: a service callback can wait for other services' answers."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"teleop_{os.getpid()}", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(5)


class ExpertTeleop:
    """The scripted expert as the teleoperator: a MetaWorldEnv of its own replays the simulator's layouts
    (same task and seed stream, the same actions: MuJoCo is deterministic), each sim image is answered with
    the expert's action as velocity (stamped with the image) and gripper commands, and each episode the
    simulator starts (its reset call) closes the previous recording and opens the next."""

    def __init__(self, node: Node, recorder: RecorderClient) -> None:
        self.recorder, self.lock = recorder, threading.Lock()
        self.env = MetaWorldEnv(TASK, seed=SEED, image_size=8, cameras=(), max_steps=STEPS)
        self.episode, self.success, self.active = -1, False, True
        self.images: list[list[Image]] = []
        self.applied: list[list[float]] = []
        self.outcomes: list[bool] = []
        serial, parallel = MutuallyExclusiveCallbackGroup(), ReentrantCallbackGroup()
        self.twist = node.create_publisher(TwistStamped, "ee_twist_cmd", 10)
        self.gripper = node.create_publisher(Float32, "gripper_cmd", 10)
        node.create_service(Trigger, "/teleop/new_episode", self._on_new_episode, callback_group=serial)
        node.create_subscription(
            Image, "image", self._on_image, qos_profile_sensor_data, callback_group=serial
        )
        self.applied_subscription = node.create_subscription(
            Float32MultiArray, "applied_action", self._on_applied, 100, callback_group=parallel
        )

    def _on_new_episode(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.finish_episode()
        self.episode += 1
        if self.episode == TRAIN:
            self.recorder.set_param("split", "val")
        started = self.recorder.start()
        deadline = time.monotonic() + 8  # inside the simulator's 10 s reset call
        while not started.success and "no publisher" in started.message and time.monotonic() < deadline:
            time.sleep(0.1)  # the simulator's publishers are new: the recorder may not have matched them yet
            started = self.recorder.start()
        assert started.success, started.message
        if self.episode == 0:
            # the recorder has matched the simulator's new publishers; the simulator's side of that match
            # (which decides whether its first images reach the recorder) may come a little later
            time.sleep(1.0)
        self.env.reset(episode_seed(SEED, TASK, self.episode, EVAL_PURPOSE))
        self.success = False
        self.images.append([])
        response.success = True
        return response

    def finish_episode(self) -> None:
        if self.episode >= 0:
            # Every action the simulator applied this episode is published before it asks for the next
            # episode, but on another channel than this call: wait until they have reached this process, and
            # a little longer for the recorder's copies, before stopping (CI once lost an episode's last row).
            answered = sum(len(images) for images in self.images)
            wait_for(lambda: len(self.applied) >= answered, 10, "the episode's applied actions")
            time.sleep(0.3)
            stopped = self.recorder.stop(self.success)
            assert stopped.success, stopped.message
            self.outcomes.append(self.success)

    def _on_image(self, msg: Image) -> None:
        if not self.active:  # the policy drives now
            return
        action = self.env.expert_action()
        self.gripper.publish(Float32(data=float(action[3])))
        command = TwistStamped()
        command.header.stamp = msg.header.stamp
        command.twist.linear.x, command.twist.linear.y, command.twist.linear.z = (
            float(v) * SPEED for v in action[:3]
        )
        self.twist.publish(command)
        _, success, _ = self.env.step(action)
        self.success = self.success or success
        self.images[-1].append(msg)

    def _on_applied(self, msg: Float32MultiArray) -> None:
        with self.lock:
            self.applied.append(list(msg.data))


@pytest.mark.slow
def test_record_the_expert_train_and_deploy(ros_threads: Node, launch, tmp_path: Path) -> None:
    dataset = tmp_path / "recorded"
    recorder = launch(
        "ros_nodes.episode_recorder", "episode_recorder",
        {"dataset": str(dataset), "cameras": "robot", "image_topics": "image", "action_topic": "applied_action",
         "action_type": "float32_multi_array", "action_names": "dx,dy,dz,gripper", "fps": 80, "task": TASK,
         "task_text": "reach the goal", "robot": "metaworld-sawyer", "max_age_s": 5.0},
    )  # fmt: skip
    client = RecorderClient(ros_threads, callback_group=ReentrantCallbackGroup())
    teleop = ExpertTeleop(ros_threads, client)
    client.clients["start_episode"].wait_for_service(60)
    wait_for(
        lambda: ros_threads.count_subscribers("/applied_action") >= 2 and ros_threads.count_subscribers("/image") >= 2,
        60, "the recorder's subscriptions",
    )  # fmt: skip
    sim = launch(
        "ros_nodes.sim_robot_node", "sim_robot_node",
        {"task": TASK, "seed": SEED, "num_episodes": TRAIN + VAL, "max_episode_steps": STEPS, "image_size": SIZE,
         "max_linear_speed": SPEED, "command_timeout_s": 5.0, "policy_reset_service": "/teleop/new_episode"},
    )  # fmt: skip
    assert sim.proc.wait(240) == 0, sim.log()
    assert f"{TRAIN + VAL} episodes done (0 command timeouts)" in sim.log(), sim.log()
    teleop.finish_episode()  # the last recording: the simulator has exited
    teleop.active = False
    episodes = re.findall(r"episode \d+ \(seed \d+\): (success|failure) after (\d+) steps", sim.log())
    assert [(o == "success", int(n)) for o, n in episodes] == [
        (success, len(images)) for success, images in zip(teleop.outcomes, teleop.images, strict=True)
    ]

    recorded = wait_for_episodes(dataset, TRAIN + VAL)
    assert recorder.alive(), recorder.log()
    assert [(r.length, r.success, r.split) for r in recorded.records] == [
        (len(images), success, "train" if i < TRAIN else "val")
        for i, (images, success) in enumerate(zip(teleop.images, teleop.outcomes, strict=True))
    ], recorder.log()  # a lock-step round trip can exceed the default 0.5 s max_age_s on a loaded machine
    assert all(teleop.outcomes), "the scripted expert reaches the goal"
    assert recorded.info.action_names == ("dx", "dy", "dz", "gripper") and recorded.info.fps == 80
    with teleop.lock:
        applied = np.array(teleop.applied, np.float32)
    np.testing.assert_array_equal(
        np.concatenate([recorded.episode(i).actions for i in range(TRAIN + VAL)]), applied
    )
    for index, images in enumerate(teleop.images):
        # each row holds the frame its action answered (the action came after that frame, before the next)
        steps = pq.read_table(dataset / "data" / "chunk-000" / f"episode_{index:06d}.parquet")
        stamps = [Time.from_msg(m.header.stamp).nanoseconds for m in images]
        assert steps.column("stamp_ns.robot").to_pylist() == stamps
        sent = np.stack([image_to_rgb(m) for m in images]).astype(np.float32)
        frames = recorded.episode(index).frames("robot").astype(np.float32)
        error, shifted = np.abs(frames - sent).mean(), np.abs(frames[1:] - sent[:-1]).mean()
        print(f"episode {index}: codec error {error:.2f} levels, against the previous frames {shifted:.2f}")
        assert error < 8 and error < shifted, f"episode {index}: {error:.1f} levels from the published frames"

    register_configs()
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        config = compose("train", overrides=[f"data.root={dataset}", *TINY_POLICY])
    run(config, tmp_path / "run")
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()

    policy_actions: list[list[float]] = []
    action_subscription = ros_threads.create_subscription(
        Float32MultiArray, "action", lambda m: policy_actions.append(list(m.data)), 100
    )
    with teleop.lock:
        before = len(teleop.applied)
    # The simulator starts stepping once the service it calls at each episode start exists; the test offers
    # it only after its subscriptions to the simulator's applied actions and to the policy's actions are
    # matched, so none of either is missed.
    deploy = launch(
        "ros_nodes.sim_robot_node", "sim_robot_node",
        {"task": TASK, "seed": SEED + 1, "num_episodes": 1, "max_episode_steps": 20, "image_size": SIZE,
         "max_linear_speed": SPEED, "command_timeout_s": 5.0, "policy_reset_service": "/teleop/deploy_go"},
    )  # fmt: skip
    policy = launch(
        "ros_nodes.policy_node", "policy_node",
        {"checkpoint": str(checkpoint), "prompt_video": str(recorded.episode(TRAIN).video_path("robot")),
         "control_rate_hz": 100.0, "image_timeout_s": 2.0, "max_linear_speed": SPEED},
    )  # fmt: skip
    wait_matched(teleop.applied_subscription, deploy)
    wait_for(lambda: action_subscription.get_publisher_count() >= 1, 60, "the policy's action publisher")
    assert ros_threads.create_client(Trigger, "/policy_node/reset").wait_for_service(60), policy.log()
    time.sleep(1.0)  # and the policy's command publishers and the simulator's subscriptions match each other

    def go(_request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        return response

    ros_threads.create_service(Trigger, "/teleop/deploy_go", go)
    assert deploy.proc.wait(180) == 0, deploy.log()
    assert "1 episodes done (0 command timeouts)" in deploy.log(), deploy.log() + "\n" + policy.log()
    assert policy.alive(), policy.log()
    [steps] = re.findall(r"episode 0 \(seed \d+\): (?:success|failure) after (\d+) steps", deploy.log())
    wait_for(lambda: len(teleop.applied) - before >= int(steps), 10, "the applied actions")
    with teleop.lock:
        applied = np.array(teleop.applied[before:], np.float32)
    # the simulator applied the trained policy's actions, one for one
    wait_for(lambda: len(policy_actions) >= int(steps), 10, "the policy's actions")
    received = np.array(policy_actions, np.float32)
    assert len(applied) == len(received) == int(steps)
    np.testing.assert_array_equal(applied, received)
