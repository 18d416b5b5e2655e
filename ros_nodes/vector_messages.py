"""Action and state vectors from ROS messages, for the episode recorder and the rosbag importer.

Kinds (the ``action_type`` / ``state_type`` parameters and the importer's ``--action-type``):

- ``twist_stamped`` (geometry_msgs/TwistStamped): ``linear.x linear.y linear.z angular.x angular.y angular.z``
- ``float32_multi_array`` (std_msgs/Float32MultiArray): ``data``, entries named ``<prefix>_<i>``
- ``joint_state`` (sensor_msgs/JointState): ``position`` per joint, named after ``name``;
  ``joint_state:velocity`` and ``joint_state:effort`` read those fields instead

``names`` (comma-separated) select and order the entries by name; for ``float32_multi_array`` they label the
entries instead (one name per entry). Without names every entry is kept, and the names of the first message
fix the vector: a JointState with other joints is refused with both lists named. Messages are read by field
name only, so rclpy's messages and rosbags' deserialised ones both work.
"""

from __future__ import annotations

import numpy as np

# kind -> ROS 2 message type
MESSAGE_TYPES = {
    "twist_stamped": "geometry_msgs/msg/TwistStamped",
    "float32_multi_array": "std_msgs/msg/Float32MultiArray",
    "joint_state": "sensor_msgs/msg/JointState",
}
JOINT_FIELDS = ("position", "velocity", "effort")
TWIST_NAMES = tuple(f"{part}.{axis}" for part in ("linear", "angular") for axis in "xyz")


class VectorMessageError(ValueError):
    """A message that does not give the vector this recording stores (the message says why)."""


def parse_kind(kind: str) -> tuple[str, str]:
    """``"joint_state:velocity"`` -> (``"joint_state"``, ``"velocity"``); other kinds have no field."""
    base, _, joint_field = kind.partition(":")
    if base not in MESSAGE_TYPES:
        raise ValueError(f"message kind must be one of {sorted(MESSAGE_TYPES)}, got {kind!r}")
    if base == "joint_state":
        joint_field = joint_field or "position"
        if joint_field not in JOINT_FIELDS:
            raise ValueError(f"joint_state field must be one of {JOINT_FIELDS}, got {kind!r}")
    elif joint_field:
        raise ValueError(f"only joint_state takes a field (joint_state:velocity), got {kind!r}")
    return base, joint_field


def split_names(text: str) -> tuple[str, ...]:
    """A comma-separated parameter as a tuple of names ('' -> ())."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {text!r}")
    return names


class VectorReader:
    """Turns messages of one kind into ``float32`` vectors with fixed names (see the module doc)."""

    def __init__(self, kind: str, names: tuple[str, ...] = (), prefix: str = "value") -> None:
        self.kind, self.joint_field = parse_kind(kind)
        self.message_type = MESSAGE_TYPES[self.kind]
        if self.kind == "twist_stamped" and set(names) - set(TWIST_NAMES):
            raise ValueError(f"twist_stamped entries are {TWIST_NAMES}, got {names}")
        self.names: tuple[str, ...] = names
        self.prefix = prefix

    def __call__(self, msg: object) -> np.ndarray:
        if self.kind == "twist_stamped":
            linear, angular = msg.twist.linear, msg.twist.angular
            values = dict(
                zip(TWIST_NAMES, (linear.x, linear.y, linear.z, angular.x, angular.y, angular.z), strict=True)
            )
            return self._select(values, "TwistStamped")
        if self.kind == "float32_multi_array":
            data = np.asarray(msg.data, np.float32)
            if not self.names:
                self.names = tuple(f"{self.prefix}_{i}" for i in range(len(data)))
            if len(data) != len(self.names):
                raise VectorMessageError(
                    f"Float32MultiArray has {len(data)} entries, this recording stores {len(self.names)} "
                    f"({', '.join(self.names)})"
                )
            return data
        values_of_field = np.asarray(getattr(msg, self.joint_field), np.float64)
        if len(values_of_field) != len(msg.name):
            raise VectorMessageError(
                f"JointState has {len(msg.name)} names but {len(values_of_field)} {self.joint_field} values"
            )
        return self._select(
            dict(zip(msg.name, values_of_field, strict=True)), f"JointState {self.joint_field}"
        )

    def _select(self, values: dict[str, float], what: str) -> np.ndarray:
        if not self.names:
            self.names = tuple(values)
        missing = [name for name in self.names if name not in values]
        if missing:
            raise VectorMessageError(
                f"{what} lacks {missing}: it has {sorted(values)}, this recording stores {list(self.names)}"
            )
        return np.array([values[name] for name in self.names], np.float32)


def header_stamp_ns(msg: object) -> int | None:
    """``header.stamp`` in nanoseconds, or None for a message without a header or with a zero stamp."""
    header = getattr(msg, "header", None)
    if header is None:
        return None
    stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
    return stamp or None
