"""Process entry point shared by the node executables: init, build, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run one node until shutdown. A node that cannot start (bad parameters, missing files) logs why and
    the process exits with status 2 instead of a traceback."""
    rclpy.init(args=args)
    try:
        try:
            node = factory()
        except Exception as error:  # startup validation: report clearly, never a bare traceback
            rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            executor.shutdown()
            node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()
