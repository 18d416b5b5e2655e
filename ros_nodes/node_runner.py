"""Process entry point shared by the node executables: DDS transport defaults, init, build, spin, shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from ros_nodes.dds_transport import apply_transport_defaults


def log_transport_defaults(logger_name: str, added: dict[str, str]) -> None:
    """Say which transport defaults this process set (so a user knows what to copy or override)."""
    for name, value in added.items():
        rclpy.logging.get_logger(logger_name).info(
            f"DDS transport for large images: {name}={value} (export it, or FASTDDS_BUILTIN_TRANSPORTS, "
            "to choose your own; the camera driver's process needs the same)"
        )


def spin_until_done(executor: Executor, nodes: Sequence[Node]) -> None:
    """Spin until shutdown (Ctrl-C) or until a node with a ``done`` event (sim_robot_node) sets it."""
    events = [n.done for n in nodes if isinstance(getattr(n, "done", None), threading.Event)]
    try:
        while rclpy.ok(context=executor.context) and not any(e.is_set() for e in events):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run one node until shutdown. A node that cannot start (bad parameters, missing files) logs why and
    the process exits with status 2 instead of a traceback."""
    added = apply_transport_defaults()
    rclpy.init(args=args)
    log_transport_defaults(name, added)
    try:
        try:
            node = factory()
        except Exception as error:  # startup validation: report clearly, never a bare traceback
            rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            spin_until_done(executor, [node])
        finally:
            executor.shutdown()
            node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()
