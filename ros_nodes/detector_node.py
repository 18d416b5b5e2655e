"""detector_node: Plain-DETR on the newest ``image`` (or ``image/compressed`` with ``image_transport:
compressed``, ros_nodes.camera_input), publishing ``detections`` (vision_msgs/Detection2DArray
where installed, else the documented Float32MultiArray of ros_nodes.detections) and ``detections_image``
(the frame with boxes drawn, rgb8, same stamp). Decoding and inference run on its own thread, newest frame
first."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from detection.plain_detr.detector import Detector
from ros_nodes.camera_input import check_transport, subscribe_camera, to_rgb
from ros_nodes.detections import HAVE_VISION_MSGS, annotate, as_array_message, as_vision_message
from ros_nodes.image_conversion import rgb_to_image
from ros_nodes.log_limiter import RepeatFilter
from ros_nodes.node_parameters import DETECTOR_NODE, declare
from ros_nodes.node_runner import run_node

if HAVE_VISION_MSGS:
    from vision_msgs.msg import Detection2DArray as DetectionsMsg
else:
    from std_msgs.msg import Float32MultiArray as DetectionsMsg


class DetectorNode(Node):
    """Runs a Plain-DETR checkpoint on incoming images; a bad image is logged and skipped."""

    def __init__(self, name: str = "detector_node", **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare(self, DETECTOR_NODE)
        p = {spec.name: self.get_parameter(spec.name).value for spec in DETECTOR_NODE}
        check_transport(p["image_transport"])
        options = {"score_threshold": p["score_threshold"], "top_k": p["top_k"], "device": p["device"]}
        if p["input_size"] > 0:
            options["input_size"] = p["input_size"]
        self._detector = Detector.from_checkpoint(p["checkpoint"], **options)
        self._names = Path(p["labels_file"]).read_text().split("\n") if p["labels_file"] else []
        self._names = [n.strip() for n in self._names if n.strip()]
        self._cond = threading.Condition()
        self._pending: Image | CompressedImage | None = None
        self._rejections = RepeatFilter()
        self._detections_pub = self.create_publisher(DetectionsMsg, "detections", QoSProfile(depth=10))
        self._image_pub = self.create_publisher(Image, "detections_image", qos_profile_sensor_data)
        _, self._camera_topic = subscribe_camera(self, p["image_transport"], self._on_image)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="detector", daemon=True)
        self._thread.start()
        kind = "vision_msgs/Detection2DArray" if HAVE_VISION_MSGS else "std_msgs/Float32MultiArray [N, 6]"
        self.get_logger().info(
            f"Plain-DETR from {p['checkpoint']} on {self._camera_topic} ({p['image_transport']}), publishing {kind}"
        )

    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self._cond:
            self._pending = msg  # newest wins: detection never queues behind the camera
            self._cond.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stop.is_set(), timeout=0.5)
                msg, self._pending = self._pending, None
            if msg is not None and self.context.ok():
                self._detect(msg)

    def _detect(self, msg: Image | CompressedImage) -> None:
        try:
            frame = to_rgb(msg)
            boxes, scores, labels = (t[0].numpy() for t in self._detector.predict([frame]))
        except Exception as error:  # bad encoding, size the model cannot take: log, keep serving
            if self._rejections.should_log(str(error), time.monotonic()):
                self.get_logger().error(f"rejected image on {self._camera_topic}: {error}")
            return
        if HAVE_VISION_MSGS:
            self._detections_pub.publish(as_vision_message(msg.header, boxes, scores, labels, self._names))
        else:
            self._detections_pub.publish(as_array_message(boxes, scores, labels))
        annotated = annotate(frame, boxes, scores, labels, self._names)
        self._image_pub.publish(rgb_to_image(annotated, msg.header.stamp, msg.header.frame_id))

    def destroy_node(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        self._thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vid2robot detector_node``: exit code 2 on invalid parameters or checkpoint."""
    return run_node(DetectorNode, "detector_node", args)


if __name__ == "__main__":
    sys.exit(main())
