"""The camera input of policy_node and detector_node: raw ``sensor_msgs/Image`` on ``image`` or, with
``image_transport: compressed``, ``sensor_msgs/CompressedImage`` on ``<image>/compressed``. As in
image_transport, the compressed topic hangs off the (remapped) base topic, so one ``image:=/camera/...`` remap
serves both."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image

from ros_nodes.compressed_image import compressed_to_rgb
from ros_nodes.image_conversion import image_to_rgb

IMAGE_TRANSPORTS: dict[str, type] = {"raw": Image, "compressed": CompressedImage}


def check_transport(transport: str) -> None:
    if transport not in IMAGE_TRANSPORTS:
        raise ValueError(f"image_transport must be one of {sorted(IMAGE_TRANSPORTS)}, got {transport!r}")


def camera_topic(node: Node, transport: str) -> str:
    """The fully qualified topic ``node`` subscribes for ``transport`` (remappings of ``image`` applied)."""
    check_transport(transport)
    base = node.resolve_topic_name("image")
    return base if transport == "raw" else f"{base}/compressed"


def subscribe_camera(
    node: Node, transport: str, callback: Callable[[Image | CompressedImage], None]
) -> tuple[Subscription, str]:
    """Subscribe ``callback`` to the camera with SensorDataQoS; returns the subscription and its topic."""
    topic = camera_topic(node, transport)
    message_type = IMAGE_TRANSPORTS[transport]
    return node.create_subscription(message_type, topic, callback, qos_profile_sensor_data), topic


def to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """A raw or compressed image message as ``uint8 [H, W, 3]`` RGB; raises ``ImageConversionError``."""
    return compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
