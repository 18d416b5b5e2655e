"""episode_recorder in its own process over real Fast DDS: a raw and a compressed camera, a JointState state and
TwistStamped actions from the test; episodes by service and by topic; rows paired by stamp; runtime task;
shutdown and kill mid-episode; a dataset that disagrees with the parameters."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from recorder_client import RecorderClient, episodes_on_disk, wait_for_episodes
from ros_fixtures import NodeProcess, wait_for, wait_matched
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool

from ros_nodes.compressed_image import rgb_to_compressed
from ros_nodes.image_conversion import rgb_to_image
from vid2robot.data.episode_format import DatasetInfo, EpisodeWriter

FRONT, WRIST = (24, 32), (48, 64)  # wrist frames are stored resized to the front camera's (the first) size
TICK_NS = 100_000_000
BASE_NS = 1_700_000_000 * 10**9


def stamp(ns: int) -> Time:
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def recorder_params(dataset: Path, **overrides) -> dict:
    return {
        "dataset": str(dataset), "cameras": "front,wrist", "image_topics": "front/image,wrist/image/compressed",
        "action_topic": "cmd", "action_type": "twist_stamped", "action_names": "linear.x,angular.z",
        "state_topic": "joints", "state_type": "joint_state", "state_names": "j3,j1", "fps": 10,
        "max_age_s": 1.0, "task": "pick", "task_text": "pick up the cube", **overrides,
    }  # fmt: skip


class Robot:
    """The test as the robot: two cameras, joint states and velocity commands with chosen stamps."""

    def __init__(self, ros: Node) -> None:
        self.front = ros.create_publisher(Image, "front/image", qos_profile_sensor_data)
        self.wrist = ros.create_publisher(CompressedImage, "wrist/image/compressed", qos_profile_sensor_data)
        self.joints = ros.create_publisher(JointState, "joints", 10)
        self.cmd = ros.create_publisher(TwistStamped, "cmd", 10)
        self.record = ros.create_publisher(Bool, "record", 10)
        self.tick = 0

    def wait_ready(self, process: NodeProcess) -> None:
        for publisher in (self.front, self.wrist, self.joints, self.cmd, self.record):
            wait_matched(publisher, process)

    def step(self, count: int) -> None:
        """``count`` control ticks; tick ``k``: frames (front level k, wrist 100 + k), joints, a command at
        +50 ms, and before the command a newer front frame (+60 ms, level 200 + k) that must not be paired."""
        for _ in range(count):
            k, t = self.tick, BASE_NS + self.tick * TICK_NS
            self.front.publish(rgb_to_image(np.full((*FRONT, 3), k, np.uint8), stamp(t), "front"))
            self.wrist.publish(
                rgb_to_compressed(np.full((*WRIST, 3), 100 + k, np.uint8), stamp(t), "wrist", "png")
            )
            joints = JointState(name=["j1", "j2", "j3"], position=[float(k), 0.5, -float(k)])
            joints.header.stamp = stamp(t + 1_000_000)
            self.joints.publish(joints)
            time.sleep(0.02)
            self.front.publish(
                rgb_to_image(np.full((*FRONT, 3), 200 + k, np.uint8), stamp(t + 60_000_000), "f")
            )
            time.sleep(0.02)
            command = TwistStamped()
            command.header.stamp = stamp(t + 50_000_000)
            command.twist.linear.x, command.twist.angular.z = float(k), -float(k)
            self.cmd.publish(command)
            time.sleep(0.02)
            self.tick += 1


def check_rows(episode, first_tick: int, length: int) -> None:
    ticks = np.arange(first_tick, first_tick + length)
    assert episode.length == length
    np.testing.assert_array_equal(episode.actions, np.stack([ticks, -ticks], 1))
    np.testing.assert_array_equal(episode.states, np.stack([-ticks, ticks], 1))  # j3, j1
    front, wrist = episode.frames("front"), episode.frames("wrist")
    assert front.shape == (length, *FRONT, 3) and wrist.shape == (length, *FRONT, 3)
    np.testing.assert_allclose(
        front.mean((1, 2, 3)), ticks, atol=3
    )  # the frame at the tick, not the newer one
    np.testing.assert_allclose(wrist.mean((1, 2, 3)), 100 + ticks, atol=3)


@pytest.mark.slow
def test_recorder_writes_episodes_paired_by_stamp_and_survives_shutdown_and_kill(
    ros: Node, launch, tmp_path: Path
) -> None:
    dataset = tmp_path / "recorded"
    robot, client = Robot(ros), RecorderClient(ros)
    recorder = launch("ros_nodes.episode_recorder", "episode_recorder", recorder_params(dataset))
    robot.wait_ready(recorder)

    assert client.start().success
    assert not client.start().success  # one episode at a time
    robot.step(6)
    stopped = client.stop(False)
    assert stopped.success and "6 steps, failure" in stopped.message, stopped.message

    client.set_param("task", "stack")  # runtime: the next episode's task
    client.set_param("task_text", "")
    robot.record.publish(Bool(data=True))
    wait_for(lambda: "episode started: task 'stack'" in recorder.log(), 20, "a start by the record topic")
    robot.step(4)
    robot.record.publish(Bool(data=False))  # saved with default_success (true)

    assert client.start().success
    robot.step(3)
    assert client.discard().success  # not written
    assert not client.stop(True).success  # nothing recording any more

    recorded = wait_for_episodes(dataset, 2)
    info = recorded.info
    assert info.cameras == ("front", "wrist") and (info.image_height, info.image_width) == FRONT
    assert info.action_names == ("linear.x", "angular.z") and info.state_names == ("j3", "j1")
    first, second = recorded.episode(0), recorded.episode(1)
    assert (first.record.task, first.record.task_text, first.record.success) == (
        "pick",
        "pick up the cube",
        False,
    )
    assert (second.record.task, second.record.task_text, second.record.success) == ("stack", "stack", True)
    assert (first.record.task_index, second.record.task_index) == (0, 1)
    check_rows(first, 0, 6)
    check_rows(second, 6, 4)
    steps = pq.read_table(dataset / "data" / "chunk-000" / "episode_000000.parquet")
    ticks = BASE_NS + np.arange(6) * TICK_NS
    np.testing.assert_array_equal(steps.column("stamp_ns.action").to_numpy(), ticks + 50_000_000)
    np.testing.assert_array_equal(steps.column("stamp_ns.front").to_numpy(), ticks)
    np.testing.assert_array_equal(steps.column("stamp_ns.state").to_numpy(), ticks + 1_000_000)
    stats = json.loads((dataset / "meta" / "stats.json").read_text())
    assert stats["action"]["count"] == 10 and stats["action"]["max"] == [9.0, 0.0]

    # A stop immediately followed by SIGINT: the queued episode is written, the one recording is dropped.
    assert client.start().success
    robot.step(3)
    assert client.stop(True).success
    assert client.start().success
    robot.step(2)
    assert recorder.stop() == 0, recorder.log()
    assert re.search(r"the episode in progress \(\d steps\) is discarded", recorder.log()), recorder.log()
    assert episodes_on_disk(dataset) == 3
    check_rows(wait_for_episodes(dataset, 3).episode(2), 13, 3)

    # The next session appends; a kill in the middle of an episode loses only that episode.
    recorder = launch("ros_nodes.episode_recorder", "episode_recorder", recorder_params(dataset))
    robot.wait_ready(recorder)
    assert client.start().success
    robot.step(3)
    recorder.proc.send_signal(signal.SIGKILL)
    recorder.proc.wait(10)
    survivors = wait_for_episodes(dataset, 3)
    assert len(survivors) == 3
    check_rows(survivors.episode(1), 6, 4)


def test_recorder_refuses_to_start_before_its_topics_have_publishers(
    ros: Node, launch, tmp_path: Path
) -> None:
    client = RecorderClient(ros)
    recorder = launch(
        "ros_nodes.episode_recorder", "episode_recorder", recorder_params(tmp_path / "recorded")
    )
    refused = client.start()
    assert not refused.success
    for name in (
        "camera front (front/image)",
        "camera wrist (wrist/image/compressed)",
        "actions (cmd)",
        "state (joints)",
    ):
        assert name in refused.message, refused.message
    robot = Robot(ros)
    robot.wait_ready(recorder)
    assert client.start().success, "the same start once the robot publishes"
    assert client.discard().success
    assert recorder.alive(), recorder.log()


@pytest.mark.slow
def test_recorder_refuses_parameters_that_disagree_with_the_dataset(launch, tmp_path: Path) -> None:
    dataset = tmp_path / "recorded"
    dataset.mkdir()
    (dataset / "notes.txt").write_text("not a dataset")
    foreign = launch("ros_nodes.episode_recorder", "episode_recorder", recorder_params(dataset))
    assert foreign.proc.wait(60) == 2
    assert "is not empty and is not a vid2robot episode dataset" in foreign.log()
    assert (dataset / "notes.txt").read_text() == "not a dataset"
    other = tmp_path / "other"
    info = DatasetInfo(
        fps=10, cameras=("robot",), image_height=8, image_width=8, action_names=("a",), state_names=()
    )
    with EpisodeWriter(other, info) as writer:
        writer.add_episode(
            {"robot": np.zeros((2, 8, 8, 3), np.uint8)}, np.zeros((2, 1)), np.zeros((2, 0)), "t", 0
        )
    mismatched = launch("ros_nodes.episode_recorder", "episode_recorder", recorder_params(other))
    assert mismatched.proc.wait(60) == 2
    assert (
        "holds cameras ['robot'] at 10 fps, 8x8; these parameters give ['front', 'wrist']" in mismatched.log()
    )
