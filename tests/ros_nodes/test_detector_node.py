"""detector_node in its own process: Plain-DETR detections equal the in-process Detector's (raw and compressed
input), the annotated image keeps the stamp, and bad images are logged and survived. (vision_msgs is not installable here: the
documented Float32MultiArray fallback is what runs.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from rclpy.qos import qos_profile_sensor_data
from ros_fixtures import wait_for, wait_matched
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32MultiArray

from detection.plain_detr import Detector, PlainDETR, tiny_config
from ros_nodes.compressed_image import rgb_to_compressed
from ros_nodes.detections import FIELDS, HAVE_VISION_MSGS
from ros_nodes.image_conversion import image_to_rgb, rgb_to_image

FRAME = np.random.default_rng(2).integers(0, 256, (96, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    detector = Detector(PlainDETR(tiny_config(3)), input_size=128)
    return detector.save(tmp_path_factory.mktemp("detr") / "tiny")


def test_detector_node_matches_the_in_process_detector(
    ros, launch, detector_checkpoint: Path, tmp_path: Path
) -> None:
    assert not HAVE_VISION_MSGS, "vision_msgs appeared: test the Detection2DArray path too"
    labels = tmp_path / "labels.txt"
    labels.write_text("cube\nball\ncup\n")
    got: list[Float32MultiArray] = []
    images: list[Image] = []
    lock = threading.Lock()

    def keep(into: list):
        def callback(msg) -> None:
            with lock:
                into.append(msg)

        return callback

    detections = ros.create_subscription(Float32MultiArray, "detections", keep(got), 10)
    annotated_images = ros.create_subscription(
        Image, "detections_image", keep(images), qos_profile_sensor_data
    )
    publisher = ros.create_publisher(Image, "image", qos_profile_sensor_data)
    node = launch(
        "ros_nodes.detector_node", "detector_node",
        {"checkpoint": str(detector_checkpoint), "score_threshold": 0.0, "top_k": 7, "labels_file": str(labels)},
    )  # fmt: skip
    for endpoint in (publisher, detections, annotated_images):
        wait_matched(endpoint, node)

    for bad in (
        rgb_to_image(FRAME[:1].copy(), ros.get_clock().now().to_msg(), "cam"),
        Image(encoding="32FC1", height=2, width=2, step=8, data=bytes(16)),
    ):
        publisher.publish(bad)
        time.sleep(0.1)
    wait_for(lambda: node.log().count("rejected image") >= 2, 10, "two logged rejections")
    assert "too small" in node.log() and "unsupported image encoding '32FC1'" in node.log()

    sent = rgb_to_image(FRAME, ros.get_clock().now().to_msg(), "cam")
    publisher.publish(sent)
    wait_for(lambda: got and images, 20, "detections and the annotated image")
    assert node.alive()
    msg = got[0]
    assert [d.label for d in msg.layout.dim] == ["detections", FIELDS]
    rows = np.array(msg.data, np.float32).reshape(-1, 6)
    boxes, scores, classes = (
        t[0].numpy()
        for t in Detector.from_checkpoint(detector_checkpoint, score_threshold=0.0, top_k=7).predict([FRAME])
    )
    assert len(rows) == 7
    np.testing.assert_allclose(rows[:, :4], boxes, atol=1e-3)
    np.testing.assert_allclose(rows[:, 4], scores, atol=1e-5)
    np.testing.assert_array_equal(rows[:, 5], classes)
    annotated = images[0]
    assert annotated.header.stamp == sent.header.stamp and annotated.header.frame_id == "cam"
    drawn = image_to_rgb(annotated)
    assert drawn.shape == FRAME.shape and (drawn != FRAME).any(), "boxes are drawn on the frame"


def test_detector_node_takes_compressed_images(ros, launch, detector_checkpoint: Path) -> None:
    got: list[Float32MultiArray] = []
    detections = ros.create_subscription(Float32MultiArray, "detections", got.append, 10)
    publisher = ros.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
    node = launch(
        "ros_nodes.detector_node", "detector_node",
        {"checkpoint": str(detector_checkpoint), "score_threshold": 0.0, "top_k": 5, "image_transport": "compressed"},
    )  # fmt: skip
    for endpoint in (publisher, detections):
        wait_matched(endpoint, node)
    png = rgb_to_compressed(FRAME, ros.get_clock().now().to_msg(), "cam", "png")  # lossless: same pixels
    bad = rgb_to_compressed(FRAME, ros.get_clock().now().to_msg(), "cam", "png")
    bad.format = "bmp"
    publisher.publish(bad)
    wait_for(
        lambda: "rejected image on /image/compressed: unsupported compressed format 'bmp'" in node.log(),
        10,
        "the rejection",
    )
    publisher.publish(png)
    wait_for(lambda: got, 20, "detections")
    rows = np.array(got[0].data, np.float32).reshape(-1, 6)
    boxes, scores, _ = (
        t[0].numpy()
        for t in Detector.from_checkpoint(detector_checkpoint, score_threshold=0.0, top_k=5).predict([FRAME])
    )
    np.testing.assert_allclose(rows[:, :4], boxes, atol=1e-3)
    np.testing.assert_allclose(rows[:, 4], scores, atol=1e-5)
    assert len(got) == 1 and node.alive()
