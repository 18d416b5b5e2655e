"""Helpers of the ROS 2 node tests: a node executable in its own process, and waits for DDS to deliver.

A module of its own (not conftest) so test files import it by a unique name from any pytest invocation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")


def wait_matched(endpoint: Publisher | Subscription, process: NodeProcess, timeout: float = 60.0) -> None:
    """Wait until ``process`` holds the other end of ``endpoint``'s topic, then for the reverse match: DDS
    discovery is asymmetric and a sample sent before the reader has matched the writer is never delivered."""
    if isinstance(endpoint, Publisher):
        matched = endpoint.get_subscription_count
    else:
        matched = endpoint.get_publisher_count
    wait_for(
        lambda: matched() > 0 or not process.alive(), timeout, f"{process.name} on {endpoint.topic_name}"
    )
    assert process.alive(), process.log()
    time.sleep(0.5)


# What the test process (the camera driver's side, as the README tells drivers) sets for its own DDS transport;
# node processes start without it and set their defaults themselves (ros_nodes.node_runner).
HARNESS_TRANSPORT: dict[str, str] = {}


def node_environment() -> dict[str, str]:
    """The environment of a node process: this one's, less the test process's own transport settings."""
    return {k: v for k, v in os.environ.items() if k not in HARNESS_TRANSPORT}


class NodeProcess:
    """One node executable in its own process, parameters from a YAML file; stderr/stdout kept in a log."""

    def __init__(self, module: str, name: str, params: dict[str, Any], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        params_file = workdir / f"{name}.yaml"
        params_file.write_text(yaml.safe_dump({name: {"ros__parameters": params}}))
        cmd = [
            sys.executable,
            "-m",
            module,
            "--ros-args",
            "-r",
            f"__node:={name}",
            "--params-file",
            str(params_file),
        ]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=node_environment()
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
