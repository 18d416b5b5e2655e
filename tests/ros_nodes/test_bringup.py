"""vid2robot-bringup: the sim_loop graph from config/sim_loop.yaml in one process, and its argument checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ros_fixtures import node_environment

from ros_nodes.bringup import nodes_in, resolve_config, with_overrides

REPO = Path(__file__).resolve().parents[2]
SIM_LOOP = REPO / "config" / "sim_loop.yaml"


def bringup(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ros_nodes.bringup", *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, check=False, env={**node_environment(), **env},
    )  # fmt: skip


def test_overrides_go_into_the_node_section(tmp_path: Path) -> None:
    merged = with_overrides(
        SIM_LOOP, ["policy_node.checkpoint=/c", "sim_robot_node.num_episodes=2"], tmp_path
    )
    sections = yaml.safe_load(merged.read_text())
    assert sections["policy_node"]["ros__parameters"]["checkpoint"] == "/c"
    assert sections["sim_robot_node"]["ros__parameters"]["num_episodes"] == 2
    assert sections["/**"] == yaml.safe_load(SIM_LOOP.read_text())["/**"]
    assert with_overrides(SIM_LOOP, [], tmp_path) == SIM_LOOP
    for bad in ("checkpoint=/c", "policy_node.checkpoint", "camera_node.source=0"):
        with pytest.raises(ValueError, match=r"NODE\.PARAM=VALUE|no node section"):
            with_overrides(SIM_LOOP, [bad], tmp_path)


def test_nodes_and_config_resolution(tmp_path: Path) -> None:
    assert nodes_in(SIM_LOOP) == ["sim_robot_node", "policy_node"]
    unknown = tmp_path / "x.yaml"
    unknown.write_text("talker:\n  ros__parameters: {}\n")
    with pytest.raises(ValueError, match="unknown node sections"):
        nodes_in(unknown)
    with pytest.raises(FileNotFoundError, match=r"no config 'nope\.yaml'"):
        resolve_config("nope.yaml")


def test_bringup_runs_the_sim_loop_graph_in_one_process(
    tiny_checkpoint: Path, prompts: tuple[Path, Path]
) -> None:
    result = bringup(
        str(SIM_LOOP),
        "-s", f"policy_node.checkpoint={tiny_checkpoint}",
        "-s", f"policy_node.prompt_video={prompts[0]}",
        "-s", "sim_robot_node.num_episodes=2",
        "-s", "sim_robot_node.max_episode_steps=8",
        "-s", "sim_robot_node.image_size=32",
        # the robot default (0.5 s) is a safety limit; a loaded CI box can miss it on the first inference
        "-s", "sim_robot_node.command_timeout_s=5.0",
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "running ['sim_robot_node', 'policy_node']" in log
    assert "episode 1 (seed" in log and "2 episodes done (0 command timeouts)" in log


def test_bringup_reports_a_node_that_cannot_start() -> None:
    result = bringup(str(SIM_LOOP), "--nodes", "policy_node")
    assert result.returncode == 2
    assert "cannot start policy_node: parameter 'checkpoint' is required" in result.stderr
    profile = REPO / "config" / "fastdds_large_images.xml"
    assert f"DDS transport for large images: FASTDDS_DEFAULT_PROFILES_FILE={profile}" in result.stderr


def test_bringup_keeps_a_transport_the_user_set() -> None:
    result = bringup(str(SIM_LOOP), "--nodes", "policy_node", FASTDDS_BUILTIN_TRANSPORTS="UDPv4")
    assert result.returncode == 2 and "cannot start policy_node" in result.stderr
    assert "DDS transport for large images" not in result.stderr
