"""ROS 2 control-loop benchmark: image publish -> action received latency and achieved control rate.

A camera-like publisher (this process) streams frames at ``--camera-hz`` to ``policy_node`` (its own process)
over Fast DDS, raw rgb8 on ``image`` or jpeg on ``image/compressed``; latency is the receive time of each
TwistStamped minus the stamp of the image it answers (the node stamps commands with their image's stamp).
Without ``--checkpoint`` a freshly initialised default ``Vid2RobotPolicy`` (96 px, the CPU config) is used:
timing does not depend on training. The frame is a synthetic scene (gradients, shapes, mild noise), so jpeg
sizes are camera-like; it is encoded once and re-sent with new stamps.

``--transport`` sets the DDS transport of both processes (``--camera-transport`` of this one alone):
``default`` is Fast DDS's own (FASTDDS_BUILTIN_TRANSPORTS=DEFAULT), ``shipped`` the profile that the launch
files, vid2robot-bringup and the node executables set (ros_nodes.dds_transport), ``large-data``
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA, ``env`` whatever the environment says.

    python -m ros_nodes.benchmark --size 96x96 640x480 1280x720 --image-transport raw compressed \\
        --control-hz 10 --seconds 10 --transport shipped
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time

from ros_nodes.camera_input import IMAGE_TRANSPORTS
from ros_nodes.compressed_image import rgb_to_compressed
from ros_nodes.dds_transport import BUILTIN_TRANSPORTS, PROFILE_VARIABLE, USER_SETTINGS, shipped_profile
from ros_nodes.image_conversion import rgb_to_image

TRANSPORT_CHOICES = ("default", "shipped", "large-data", "env")


def transport_environment(choice: str, base: dict[str, str]) -> dict[str, str]:
    """``base`` with the Fast DDS transport variables of ``choice`` (``env``: unchanged)."""
    if choice == "env":
        return dict(base)
    env = {k: v for k, v in base.items() if k not in USER_SETTINGS}
    if choice == "default":
        env[BUILTIN_TRANSPORTS] = "DEFAULT"
    elif choice == "large-data":
        env[BUILTIN_TRANSPORTS] = "LARGE_DATA"
    else:
        env[PROFILE_VARIABLE] = str(shipped_profile())
    return env


def describe(env: dict[str, str]) -> str:
    """The Fast DDS transport settings in ``env``, for the table."""
    set_ = [
        f"{k}={Path(v).name if k == PROFILE_VARIABLE else v}" for k, v in env.items() if k in USER_SETTINGS
    ]
    return ", ".join(set_) or "nothing set (Fast DDS defaults)"


def _default_checkpoint(folder: Path) -> tuple[Path, Path]:
    import torch

    from vid2robot.policy import Vid2RobotConfig, Vid2RobotPolicy, save_policy

    torch.manual_seed(0)
    checkpoint = save_policy(Vid2RobotPolicy(Vid2RobotConfig.small()), folder / "policy")
    prompt = folder / "prompt.npy"
    np.save(prompt, np.random.default_rng(0).integers(0, 256, (32, 96, 96, 3), dtype=np.uint8))
    return checkpoint, prompt


def camera_frame(height: int, width: int) -> np.ndarray:
    """A camera-like RGB scene: colour gradients, a few solid shapes, sensor noise (seeded)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([255 * x / width, 255 * y / height, 128 + 60 * np.sin(x / 37 + y / 53)], axis=-1)
    for _ in range(12):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(max(2, min(height, width) // 20), max(3, min(height, width) // 5)))
        cv2.circle(frame, centre, radius, tuple(float(c) for c in rng.integers(0, 256, 3)), -1)
    frame += rng.normal(0, 3, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def measure(
    node: Node, folder: Path, checkpoint: Path, prompt: Path, frame: np.ndarray, image_transport: str,
    camera_hz: float, control_hz: float, seconds: float, node_env: dict[str, str], warmup: float = 3.0,
) -> dict[str, float | str | bool]:  # fmt: skip
    """Run one policy_node at ``control_hz`` against a ``camera_hz`` stream; latency stats over ``seconds``."""
    params = {
        "checkpoint": str(checkpoint),
        "prompt_video": str(prompt),
        "control_rate_hz": float(control_hz),
        "image_transport": image_transport,
    }
    tag = f"{frame.shape[1]}x{frame.shape[0]}_{image_transport}_{control_hz:g}"
    params_file = folder / f"policy_{tag}.yaml"
    params_file.write_text(yaml.safe_dump({"policy_node": {"ros__parameters": params}}))
    log = (folder / f"policy_{tag}.log").open("w")
    cmd = [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "--params-file", str(params_file)]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=node_env)
    sent: set[tuple[int, int]] = set()
    received: list[tuple[float, float]] = []  # (receive time, latency)
    diagnostics: dict[str, str] = {}
    camera_status: list[tuple[float, str]] = []  # (time, camera_status) from each /diagnostics
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
                camera_status.append((time.monotonic(), diagnostics.get("camera_status", "?")))

    compressed = image_transport == "compressed"
    encode = rgb_to_compressed if compressed else rgb_to_image
    msg = encode(frame, Time().to_msg(), "camera")
    topic = "image/compressed" if compressed else "image"
    publisher = node.create_publisher(IMAGE_TRANSPORTS[image_transport], topic, qos_profile_sensor_data)
    subscriptions = [
        node.create_subscription(TwistStamped, "ee_twist_cmd", on_twist, 50),
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10),
    ]
    try:
        deadline = time.monotonic() + 60  # then stream anyway: transports that never match are measured too
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"policy_node exited: see {log.name}")
            time.sleep(0.05)
        matched = publisher.get_subscription_count() > 0
        time.sleep(0.5)
        start = time.monotonic()
        next_frame = start
        while time.monotonic() < start + warmup + seconds:
            msg.header.stamp = node.get_clock().now().to_msg()
            with lock:
                sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            publisher.publish(msg)
            next_frame += 1.0 / camera_hz
            time.sleep(max(0.0, next_frame - time.monotonic()))
        time.sleep(1.5)  # the last actions and one more /diagnostics
        with lock:
            window = [lat for t, lat in received if start + warmup <= t < start + warmup + seconds]
        statuses = [kind for t, kind in camera_status if start + warmup <= t < start + warmup + seconds]
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
        "frame": f"{frame.shape[1]}x{frame.shape[0]}",
        "image": "jpeg" if compressed else "rgb8",
        "bytes": len(msg.data),
        "control_hz": control_hz,
        "rate_hz": len(window) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "inference_p50_ms": float(diagnostics.get("inference_p50_ms", "nan")),
        # the most frequent camera_status of the node's /diagnostics
        "camera": max(set(statuses), key=statuses.count) if statuses else "no diagnostics",
        "matched": matched,
    }


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="policy checkpoint (default: fresh default-size model)"
    )
    parser.add_argument("--prompt", type=Path, help="prompt video (required with --checkpoint)")
    parser.add_argument("--camera-hz", type=float, default=30.0)
    parser.add_argument("--control-hz", type=float, nargs="+", default=[10.0])
    parser.add_argument("--size", type=_size, nargs="+", default=[(640, 480)], metavar="WxH")
    parser.add_argument("--image-transport", nargs="+", choices=sorted(IMAGE_TRANSPORTS), default=["raw"])
    parser.add_argument("--transport", choices=TRANSPORT_CHOICES, default="shipped", help="both processes")
    parser.add_argument(
        "--camera-transport", choices=TRANSPORT_CHOICES, help="this process (default: --transport)"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    base = dict(os.environ)
    node_env = transport_environment(args.transport, base)
    camera_env = transport_environment(args.camera_transport or args.transport, base)
    os.environ.clear()
    os.environ.update(camera_env)  # before rclpy.init: Fast DDS reads it when the participant is created
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
            for (width, height), image_transport, control_hz in itertools.product(
                args.size, args.image_transport, args.control_hz
            ):
                frame = camera_frame(height, width)
                row = measure(
                    node, folder, checkpoint, prompt, frame, image_transport, args.camera_hz, control_hz,
                    args.seconds, node_env,
                )  # fmt: skip
                rows.append(row)
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"camera at {args.camera_hz:g} Hz, {args.seconds:g} s per row")
    print(f"policy_node transport: {describe(node_env)}; camera transport: {describe(camera_env)}\n")
    print(
        "| frame | image | bytes | control_rate_hz | achieved rate (Hz) | latency p50 (ms) | latency p99 (ms) "
        "| inference p50 (ms) | camera status |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['frame']} | {r['image']} | {r['bytes']} | {r['control_hz']:g} | {r['rate_hz']:.1f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['inference_p50_ms']:.1f} | {r['camera']} "
            f"{'' if r['matched'] else '(never matched) '}|"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
