"""ROS 2 control-loop benchmark: image publish -> action received latency and achieved control rate.

A camera-like publisher (this process) streams rgb8 frames at ``--camera-hz`` to ``policy_node`` (its own
process) over Fast DDS; latency is the receive time of each TwistStamped minus the stamp of the image it
answers (the node stamps commands with their image's stamp). Without ``--checkpoint`` a freshly initialised
default ``Vid2RobotPolicy`` (96 px, the CPU config) is used: timing does not depend on training.

    python -m ros_nodes.benchmark --control-hz 10 200 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image

from ros_nodes.image_conversion import rgb_to_image


def _default_checkpoint(folder: Path) -> tuple[Path, Path]:
    import torch

    from vid2robot.policy import Vid2RobotConfig, Vid2RobotPolicy, save_policy

    torch.manual_seed(0)
    checkpoint = save_policy(Vid2RobotPolicy(Vid2RobotConfig.small()), folder / "policy")
    prompt = folder / "prompt.npy"
    np.save(prompt, np.random.default_rng(0).integers(0, 256, (32, 96, 96, 3), dtype=np.uint8))
    return checkpoint, prompt


def measure(
    node: Node, folder: Path, checkpoint: Path, prompt: Path, frame: np.ndarray, camera_hz: float,
    control_hz: float, seconds: float, warmup: float = 3.0,
) -> dict[str, float]:  # fmt: skip
    """Run one policy_node at ``control_hz`` against a ``camera_hz`` stream; latency stats over ``seconds``."""
    params = {
        "checkpoint": str(checkpoint),
        "prompt_video": str(prompt),
        "control_rate_hz": float(control_hz),
    }
    params_file = folder / f"policy_{control_hz}.yaml"
    params_file.write_text(yaml.safe_dump({"policy_node": {"ros__parameters": params}}))
    log = (folder / f"policy_{control_hz}.log").open("w")
    cmd = [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "--params-file", str(params_file)]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    sent: dict[tuple[int, int], float] = {}
    received: list[tuple[float, float]] = []  # (receive time, latency)
    diagnostics: dict[str, str] = {}
    lock = threading.Lock()

    def on_twist(msg: TwistStamped) -> None:
        now = node.get_clock().now()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with lock:
            if key in sent:
                received.append(
                    (time.monotonic(), (now - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9)
                )

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("control loop"):
                diagnostics.update({kv.key: kv.value for kv in status.values})

    publisher = node.create_publisher(Image, "image", qos_profile_sensor_data)
    subscriptions = [
        node.create_subscription(TwistStamped, "ee_twist_cmd", on_twist, 50),
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10),
    ]
    try:
        deadline = time.monotonic() + 120
        while publisher.get_subscription_count() == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"policy_node did not come up: see {log.name}")
            time.sleep(0.05)
        time.sleep(0.5)
        start = time.monotonic()
        next_frame = start
        while time.monotonic() < start + warmup + seconds:
            msg = rgb_to_image(frame, node.get_clock().now().to_msg(), "camera")
            with lock:
                sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
            publisher.publish(msg)
            next_frame += 1.0 / camera_hz
            time.sleep(max(0.0, next_frame - time.monotonic()))
        time.sleep(1.5)  # the last actions and one more /diagnostics
        with lock:
            window = [lat for t, lat in received if start + warmup <= t < start + warmup + seconds]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
        log.close()
        node.destroy_publisher(publisher)
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
    latencies = np.array(window) * 1e3
    if not len(latencies):  # every frame lost (see docs/benchmarks.md on large images)
        latencies = np.array([np.nan])
    return {
        "camera_hz": camera_hz,
        "control_hz": control_hz,
        "rate_hz": len(window) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "inference_p50_ms": float(diagnostics.get("inference_p50_ms", "nan")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="policy checkpoint (default: fresh default-size model)"
    )
    parser.add_argument("--prompt", type=Path, help="prompt video (required with --checkpoint)")
    parser.add_argument("--camera-hz", type=float, default=30.0)
    parser.add_argument("--control-hz", type=float, nargs="+", default=[10.0, 200.0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    frame = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    rclpy.init()
    node = rclpy.create_node(f"benchmark_{os.getpid()}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            checkpoint, prompt = (
                (args.checkpoint, args.prompt) if args.checkpoint else _default_checkpoint(folder)
            )
            for control_hz in args.control_hz:
                rows.append(
                    measure(node, folder, checkpoint, prompt, frame, args.camera_hz, control_hz, args.seconds)
                )
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"{args.width}x{args.height} rgb8 at {args.camera_hz:g} Hz, {args.seconds:g} s per row\n")
    print(
        "| control_rate_hz | achieved rate (Hz) | latency p50 (ms) | latency p99 (ms) | inference p50 (ms) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['control_hz']:g} | {r['rate_hz']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['inference_p50_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
