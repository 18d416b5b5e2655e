"""Real ROS 2 over Fast DDS on loopback: nodes under test run in their own processes; the test talks to them
from a node of its own. Every session gets its own ROS_DOMAIN_ID so parallel runs do not cross-talk."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Must be set before rclpy and torch initialise (here, and inherited by the node processes).
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import rclpy
import ros_fixtures
import torch
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_fixtures import NodeProcess

from ros_nodes.dds_transport import apply_transport_defaults
from vid2robot.policy import Vid2RobotConfig, Vid2RobotPolicy, load_policy, save_policy

# This process publishes the test images, like a camera driver: it sets the shipped transport defaults for
# itself before any participant exists, as the README tells drivers to.
ros_fixtures.HARNESS_TRANSPORT.update(apply_transport_defaults())

TINY = dict(
    image_size=32,
    d_model=32,
    num_heads=2,
    prompt_frames=4,
    state_frames=2,
    prompt_latents=4,
    state_latents=4,
    embed_dim=16,
    fusion_depth=1,
    decoder_depth=1,
)


@pytest.fixture
def ros() -> Iterator[Node]:
    """A node of the test's own, spun on a background thread."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"test_harness_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(5)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """``launch(module, name, params)`` starts a node process; all are stopped (SIGINT) after the test."""
    started: list[NodeProcess] = []

    def start(module: str, name: str, params: dict[str, Any]) -> NodeProcess:
        started.append(NodeProcess(module, name, params, tmp_path))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (untrained, seeded) Vid2RobotPolicy written with save_policy."""
    torch.manual_seed(0)
    return save_policy(
        Vid2RobotPolicy(Vid2RobotConfig.small(**TINY)), tmp_path_factory.mktemp("ckpt") / "tiny"
    )


@pytest.fixture(scope="session")
def chunked_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``tiny_checkpoint``, predicting 3-action chunks."""
    torch.manual_seed(0)
    return save_policy(
        Vid2RobotPolicy(Vid2RobotConfig.small(**TINY, horizon=3)), tmp_path_factory.mktemp("ckpt") / "chunked"
    )


@pytest.fixture(scope="session")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different prompt videos as .npy uint8 [T, H, W, 3]."""
    folder = tmp_path_factory.mktemp("prompts")
    rng = np.random.default_rng(0)
    first, second = folder / "noise.npy", folder / "black.npy"
    np.save(first, rng.integers(0, 256, (10, 40, 40, 3), dtype=np.uint8))
    np.save(second, np.zeros((6, 40, 40, 3), np.uint8))
    return first, second


@pytest.fixture
def offline_policy(tiny_checkpoint: Path):
    return load_policy(tiny_checkpoint)
