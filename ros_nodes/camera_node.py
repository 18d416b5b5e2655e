"""camera_node: frames from an OpenCV source published as ``image`` (sensor_msgs/Image rgb8, SensorDataQoS)
at ``rate_hz``, stamped with the capture time and ``frame_id``, optionally resized to ``width`` x ``height``
(publish what the consumer needs: large frames are costly over DDS, see docs/benchmarks.md)."""

from __future__ import annotations

import sys

import cv2
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from ros_nodes.frame_source import FrameSource
from ros_nodes.image_conversion import rgb_to_image
from ros_nodes.node_parameters import CAMERA_NODE, declare
from ros_nodes.node_runner import run_node


class CameraNode(Node):
    """Publishes the newest frame of a device, file (optionally looped) or stream at a fixed rate."""

    def __init__(self, name: str = "camera_node", **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare(self, CAMERA_NODE)
        p = {spec.name: self.get_parameter(spec.name).value for spec in CAMERA_NODE}
        if not p["rate_hz"] > 0:
            raise ValueError(f"rate_hz must be > 0, got {p['rate_hz']}")
        if (p["width"] > 0) != (p["height"] > 0) or p["width"] < 0 or p["height"] < 0:
            raise ValueError(
                f"width and height must both be > 0 (resize) or both 0, got {p['width']}x{p['height']}"
            )
        self._size = (p["width"], p["height"]) if p["width"] > 0 else None
        self._frame_id = p["frame_id"]
        self._source = FrameSource(p["source"], p["loop"])
        self._failures = 0
        self._publisher = self.create_publisher(Image, "image", qos_profile_sensor_data)
        self.create_timer(1.0 / p["rate_hz"], self._publish)
        self.get_logger().info(f"publishing {p['source']!r} at {p['rate_hz']} Hz (loop={self._source.loop})")

    def _publish(self) -> None:
        frame = self._source.read()
        stamp = self.get_clock().now().to_msg()
        if frame is None:
            self._failures += 1
            if self._failures == 1 or self._failures % 100 == 0:
                what = "end of the video file" if self._source.is_file else "no frame from the source"
                self.get_logger().warning(f"{what} {self._source.source!r} ({self._failures} missed reads)")
            return
        self._failures = 0
        if self._size is not None and frame.shape[1::-1] != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._publisher.publish(rgb_to_image(frame, stamp, self._frame_id))

    def destroy_node(self) -> None:
        self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vid2robot camera_node``: exit code 2 when the source cannot be opened."""
    return run_node(CameraNode, "camera_node", args)


if __name__ == "__main__":
    sys.exit(main())
