"""vid2robot-bringup: start the nodes of a config/*.yaml in one process (multi-threaded executor), for
machines without ``ros2 launch``. Every top-level node section of the YAML starts that node; the file is
passed to ROS as ``--params-file`` (the same parser as ``ros2 launch``, ``/**`` included).

    vid2robot-bringup sim_loop.yaml --set policy_node.checkpoint=/ckpt --set policy_node.prompt_video=/p.mp4

``--set NODE.PARAM=VALUE`` (VALUE parsed as YAML) overrides the file's node section; a plain
``--ros-args -p PARAM:=VALUE`` applies to every node but loses to a value the file gives that node. Before ROS
starts, the DDS transport defaults for large images are set (ros_nodes.dds_transport), as in the launch files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import import_module
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from ros_nodes.dds_transport import apply_transport_defaults
from ros_nodes.node_runner import log_transport_defaults, spin_until_done
from ros_nodes.share import config_dirs, find_config

# executable / node name -> the node class, imported only when that node is started.
NODE_CLASSES = {
    "camera_node": "ros_nodes.camera_node:CameraNode",
    "policy_node": "ros_nodes.policy_node:PolicyNode",
    "sim_robot_node": "ros_nodes.sim_robot_node:SimRobotNode",
    "detector_node": "ros_nodes.detector_node:DetectorNode",
    "episode_recorder": "ros_nodes.episode_recorder:EpisodeRecorder",
}


def resolve_config(name: str) -> Path:
    """A YAML path, or the name of a config installed in ``share/vid2robot/config`` (see ros_nodes.share)."""
    path = Path(name)
    if path.is_file():
        return path
    found = find_config(name)
    if found is None:
        raise FileNotFoundError(f"no config {name!r}: not a file, nor in {[str(d) for d in config_dirs()]}")
    return found


def nodes_in(config: Path) -> list[str]:
    """The node sections of a parameter YAML, in file order; unknown sections are an error."""
    sections = yaml.safe_load(config.read_text()) or {}
    names = [key.lstrip("/") for key in sections if key != "/**"]
    unknown = [n for n in names if n not in NODE_CLASSES]
    if unknown:
        raise ValueError(f"{config}: unknown node sections {unknown}; known: {sorted(NODE_CLASSES)}")
    if not names:
        raise ValueError(f"{config} names no nodes")
    return names


def with_overrides(config: Path, overrides: list[str], folder: Path) -> Path:
    """``config`` with ``NODE.PARAM=VALUE`` overrides applied, written to ``folder`` (unchanged if none)."""
    if not overrides:
        return config
    sections = yaml.safe_load(config.read_text()) or {}
    for item in overrides:
        target, sep, value = item.partition("=")
        node, dot, param = target.partition(".")
        if not (sep and dot and node and param):
            raise ValueError(f"--set expects NODE.PARAM=VALUE, got {item!r}")
        if node not in sections:
            raise ValueError(f"--set {item!r}: {config} has no node section {node!r}")
        sections[node].setdefault("ros__parameters", {})[param] = yaml.safe_load(value)
    merged = folder / config.name
    merged.write_text(yaml.safe_dump(sections))
    return merged


def _node_class(name: str) -> type[Node]:
    module, _, cls = NODE_CLASSES[name].partition(":")
    return getattr(import_module(module), cls)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args") :] if "--ros-args" in argv else []
    parser = argparse.ArgumentParser(prog="vid2robot-bringup", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="parameter YAML (path, or name of an installed config)")
    parser.add_argument("--nodes", nargs="+", help="start only these node sections")
    parser.add_argument(
        "--set", "-s", action="append", default=[], metavar="NODE.PARAM=VALUE", help="override a parameter"
    )
    args = parser.parse_args(argv[: len(argv) - len(ros_args)])
    config = resolve_config(args.config)
    names = nodes_in(config)
    if args.nodes:
        missing = sorted(set(args.nodes) - set(names))
        if missing:
            parser.error(f"{config} has no sections {missing}")
        names = [n for n in names if n in args.nodes]
    with tempfile.TemporaryDirectory(prefix="vid2robot-bringup-") as folder:
        try:
            params = with_overrides(config, args.set, Path(folder))
        except ValueError as error:
            parser.error(str(error))
        return _run(names, params, ros_args[1:])


def _run(names: list[str], params: Path, extra_ros_args: list[str]) -> int:
    added = apply_transport_defaults()
    rclpy.init(args=["vid2robot-bringup", "--ros-args", "--params-file", str(params), *extra_ros_args])
    log_transport_defaults("vid2robot_bringup", added)
    # Import every node module before any node starts its threads (imports racing across threads break).
    classes = [_node_class(name) for name in names]
    nodes: list[Node] = []
    executor = MultiThreadedExecutor()
    try:
        for name, cls in zip(names, classes, strict=True):
            try:
                nodes.append(cls())
            except Exception as error:  # report which node and why, like the single-node executables
                rclpy.logging.get_logger("vid2robot_bringup").fatal(f"cannot start {name}: {error}")
                return 2
            executor.add_node(nodes[-1])
        rclpy.logging.get_logger("vid2robot_bringup").info(f"running {names} with {params}")
        spin_until_done(executor, nodes)
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
