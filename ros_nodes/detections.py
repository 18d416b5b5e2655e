"""Detections as ROS messages, and the annotated frame.

Where ``vision_msgs`` is installed (ROS 2 robots) detections are ``vision_msgs/Detection2DArray``. Without it
(the PyPI wheels) the detector publishes the equivalent ``std_msgs/Float32MultiArray``: shape ``[N, 6]``,
``dim[0].label == "detections"``, ``dim[1].label == FIELDS``, one row ``x_min, y_min, x_max, y_max, score,
class_id`` per detection in image pixels; the frame's stamp is on the annotated image of the same frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension, MultiArrayLayout

try:
    from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:  # vision_msgs has no PyPI wheel: use the documented fallback
    Detection2DArray = None

FIELDS = "x_min,y_min,x_max,y_max,score,class_id"
HAVE_VISION_MSGS = Detection2DArray is not None


def as_array_message(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> Float32MultiArray:
    """``[N, 6]`` rows ``x_min, y_min, x_max, y_max, score, class_id`` (the fallback format)."""
    rows = np.column_stack([boxes, scores, labels]).astype(np.float32).reshape(-1, 6)
    layout = MultiArrayLayout(
        dim=[
            MultiArrayDimension(label="detections", size=len(rows), stride=rows.size),
            MultiArrayDimension(label=FIELDS, size=6, stride=6),
        ]
    )
    return Float32MultiArray(layout=layout, data=rows.reshape(-1).tolist())


def as_vision_message(
    header: Header, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, names: list[str]
) -> Detection2DArray:
    """``vision_msgs/Detection2DArray`` (vision_msgs >= 4: bbox centre in ``center.position``)."""
    out = Detection2DArray(header=header)
    for (x0, y0, x1, y1), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
        detection = Detection2D(header=header)
        detection.bbox = BoundingBox2D(size_x=x1 - x0, size_y=y1 - y0)
        detection.bbox.center.position.x, detection.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = class_name(int(label), names)
        hypothesis.hypothesis.score = float(score)
        detection.results.append(hypothesis)
        out.detections.append(detection)
    return out


def class_name(label: int, names: list[str]) -> str:
    return names[label] if 0 <= label < len(names) else str(label)


def annotate(
    frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, names: list[str]
) -> np.ndarray:
    """A copy of the RGB frame with each box and ``name score`` drawn on it."""
    out = frame.copy()
    for (x0, y0, x1, y1), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
        p0, p1 = (round(x0), round(y0)), (round(x1), round(y1))
        cv2.rectangle(out, p0, p1, (0, 255, 0), 1)
        text = f"{class_name(int(label), names)} {score:.2f}"
        cv2.putText(out, text, (p0[0], max(8, p0[1] - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 255, 0), 1)
    return out
