"""vid2robot-import-bag on rosbag2 recordings written here with rosbags (sqlite3 and mcap), holding what the
sim loop publishes: raw rgb8 images, a jpeg CompressedImage camera, headerless Float32MultiArray actions,
a JointState, and Bool episode / success topics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ros_nodes.bag_import import main
from vid2robot.data.episode_dataset import EpisodeDataset

STORE = get_typestore(Stores.LATEST)
T = STORE.types
TICK_NS, BASE_NS = 100_000_000, 1_700_000_000 * 10**9


def header(ns: int):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id="sim_camera"
    )


def image(ns: int, level: int):
    data = np.full(32 * 32 * 3, level, np.uint8)
    return T["sensor_msgs/msg/Image"](header(ns), 32, 32, "rgb8", 0, 96, data)


def jpeg(ns: int, level: int):
    _, encoded = cv2.imencode(".jpg", np.full((64, 64, 3), level, np.uint8))
    return T["sensor_msgs/msg/CompressedImage"](header(ns), "rgb8; jpeg compressed bgr8", encoded.ravel())


def action(values: list[float]):
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return T["std_msgs/msg/Float32MultiArray"](layout, np.asarray(values, np.float32))


def joints(ns: int, k: int):
    return T["sensor_msgs/msg/JointState"](
        header(ns), ["elbow", "wrist"], np.array([k, -k], np.float64), np.zeros(2), np.zeros(2)
    )


def boolean(value: bool):
    return T["std_msgs/msg/Bool"](data=value)


TOPICS = {
    "/image": "sensor_msgs/msg/Image",
    "/wrist/image/compressed": "sensor_msgs/msg/CompressedImage",
    "/applied_action": "std_msgs/msg/Float32MultiArray",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/record": "std_msgs/msg/Bool",
    "/episode_success": "std_msgs/msg/Bool",
}


def write_bag(path: Path, storage: StoragePlugin, episodes: list[tuple[int, bool]], marked: bool) -> None:
    """Ticks as the lock-step sim loop makes them: frame at t (logged 2 ms later), joints, the action that
    answered it at t + 50 ms; ``marked`` brackets each episode by /record true ... false, with a tick
    outside any episode between them and /episode_success at each end."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {
            topic: writer.add_connection(topic, kind, typestore=STORE) for topic, kind in TOPICS.items()
        }

        def write(topic: str, ns: int, msg) -> None:
            writer.write(connections[topic], ns, STORE.serialize_cdr(msg, TOPICS[topic]))

        tick = 0

        def step() -> None:
            nonlocal tick
            t = BASE_NS + tick * TICK_NS
            write("/image", t + 2_000_000, image(t, tick))
            write("/wrist/image/compressed", t + 3_000_000, jpeg(t, 100 + tick))
            write("/joint_states", t + 4_000_000, joints(t + 1_000_000, tick))
            write("/applied_action", t + 50_000_000, action([tick, 0.5, -tick, 1.0]))
            tick += 1

        for length, success in episodes:
            if marked:
                step()  # outside the episode: not recorded
                write("/record", BASE_NS + tick * TICK_NS - 1, boolean(True))
            for _ in range(length):
                step()
            if marked:
                write("/episode_success", BASE_NS + tick * TICK_NS - 2, boolean(success))
                write("/record", BASE_NS + tick * TICK_NS - 1, boolean(False))
        if marked:
            write("/record", BASE_NS + tick * TICK_NS, boolean(True))  # still open at the end: dropped
            step()


ARGS = [
    "--camera", "robot=/image", "--camera", "wrist=/wrist/image/compressed", "--action", "/applied_action",
    "--action-names", "dx,dy,dz,gripper", "--state", "/joint_states", "--state-names", "wrist,elbow",
    "--task", "reach-v3", "--task-text", "reach the goal", "--fps", "80",
]  # fmt: skip


def check_episode(episode, first_tick: int, length: int) -> None:
    ticks = np.arange(first_tick, first_tick + length)
    assert episode.length == length
    np.testing.assert_array_equal(episode.actions[:, 0], ticks)
    np.testing.assert_array_equal(episode.states, np.stack([-ticks, ticks], 1))
    np.testing.assert_allclose(episode.frames("robot").mean((1, 2, 3)), ticks, atol=3)
    np.testing.assert_allclose(episode.frames("wrist").mean((1, 2, 3)), 100 + ticks, atol=4)  # jpeg, resized


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_episodes_from_a_bool_topic_with_success_from_another(tmp_path: Path, storage: StoragePlugin) -> None:
    write_bag(tmp_path / "bag", storage, [(5, True), (4, False)], marked=True)
    out = tmp_path / "episodes"
    code = main(
        [
            "--episodes-from",
            "/record",
            "--success-from",
            "/episode_success",
            *ARGS,
            str(tmp_path / "bag"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    dataset = EpisodeDataset(out)
    assert len(dataset) == 2 and dataset.info.fps == 80 and dataset.info.cameras == ("robot", "wrist")
    assert dataset.info.action_names == ("dx", "dy", "dz", "gripper") and dataset.info.state_names == (
        "wrist",
        "elbow",
    )
    assert (dataset.info.image_height, dataset.info.image_width) == (32, 32)
    assert [(r.task, r.task_text, r.success, r.length) for r in dataset.records] == [
        ("reach-v3", "reach the goal", True, 5),
        ("reach-v3", "reach the goal", False, 4),
    ]
    check_episode(dataset.episode(0), 1, 5)  # tick 0 came before /record true
    check_episode(dataset.episode(1), 7, 4)
    steps = pq.read_table(out / "data" / "chunk-000" / "episode_000001.parquet")
    ticks = BASE_NS + np.arange(7, 11) * TICK_NS
    np.testing.assert_array_equal(steps.column("stamp_ns.robot").to_numpy(), ticks)  # header stamps
    np.testing.assert_array_equal(steps.column("stamp_ns.action").to_numpy(), ticks + 50_000_000)  # log time
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats["action"]["count"] == 9


def test_one_episode_per_bag_and_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bags = [tmp_path / "first", tmp_path / "second"]
    write_bag(bags[0], StoragePlugin.MCAP, [(6, True)], marked=False)
    write_bag(bags[1], StoragePlugin.SQLITE3, [(3, True)], marked=False)
    out = tmp_path / "episodes"
    assert main([*ARGS, *map(str, bags), "--out", str(out), "--failure", "--split", "val"]) == 0
    dataset = EpisodeDataset(out)
    assert [(r.length, r.success, r.split) for r in dataset.records] == [(6, False, "val"), (3, False, "val")]
    check_episode(dataset.episode(1), 0, 3)

    assert main([*ARGS, str(bags[0]), "--out", str(out)]) == 2  # exists: --overwrite replaces it
    assert "already holds a dataset; pass overwrite=True" in capsys.readouterr().err
    assert main([*ARGS, "--camera", "top=/top/image", str(bags[0]), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "no topic /top/image; the bag has /applied_action (std_msgs/msg/Float32MultiArray)" in error
    assert main([*ARGS, "--action", "/record", str(bags[0]), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "topic /record holds std_msgs/msg/Bool, expected std_msgs/msg/Float32MultiArray" in error
    assert main([*ARGS, "--action", "/joint_states", str(bags[0]), "--out", str(tmp_path / "x")]) == 2
    assert "each topic can have one role only" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.import-*"))
