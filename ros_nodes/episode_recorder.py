"""episode_recorder: a robot's camera images, actions and state over ROS -> episodes of the episode format.

Subscribes one or more cameras (``image_topics``: sensor_msgs/Image, or sensor_msgs/CompressedImage on a
topic ending in ``/compressed``; SensorDataQoS), ``action_topic`` (TwistStamped, Float32MultiArray or
JointState; reliable) and optionally ``state_topic`` (SensorDataQoS, which also matches reliable
publishers). Every action is a control tick: one row of the episode with the newest frame of each camera and
the newest state at or before the action's time (``vid2robot.data.stream_alignment``), the stamps of all
three kept as ``stamp_ns.*`` step columns.

Episodes start and stop through services, ``~/start_episode`` (std_srvs/Trigger), ``~/stop_episode``
(std_srvs/SetBool: ``data`` is the episode's success flag) and ``~/discard_episode`` (Trigger), or the
``record`` topic (std_msgs/Bool: true starts, false stops with ``default_success``). Task, text and split
are read from the (runtime-settable) parameters when an episode starts. A start is refused when a camera,
action or state topic has no publisher matched within 2 s (the refusal names the topic).

A finished episode is written by a background thread through ``EpisodeAppender``: its files first, then
the metadata, replaced atomically, so the dataset on disk is readable after every episode and a crash loses
at most the episode being written. At shutdown (SIGINT) the episode still recording is discarded and the
finished ones still queued are written before the process exits.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
import time
from dataclasses import dataclass

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.subscription import MessageInfo, Subscription
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32MultiArray
from std_srvs.srv import SetBool, Trigger

from ros_nodes.camera_input import IMAGE_TRANSPORTS, to_rgb
from ros_nodes.frame_sizing import FrameSizer
from ros_nodes.image_conversion import ImageConversionError
from ros_nodes.log_limiter import RepeatFilter
from ros_nodes.node_parameters import EPISODE_RECORDER, declare
from ros_nodes.node_runner import run_node
from ros_nodes.vector_messages import VectorMessageError, VectorReader, header_stamp_ns, split_names
from vid2robot.data.episode_appender import EpisodeAppender
from vid2robot.data.episode_format import SPLITS, DatasetInfo
from vid2robot.data.stream_alignment import AlignedEpisode, StreamAligner

RELIABLE = QoSProfile(depth=100)
MESSAGE_CLASSES = {
    "twist_stamped": TwistStamped,
    "float32_multi_array": Float32MultiArray,
    "joint_state": JointState,
}
TIME_REFERENCES = ("header", "arrival")
START_MATCH_WAIT_S = 2.0  # a start waits this long for each input's publisher to be discovered
WRITER_JOIN_S = 300.0  # at shutdown: how long to wait for queued episodes to be written


@dataclass(frozen=True)
class FinishedEpisode:
    """An episode handed to the writer thread."""

    info: DatasetInfo
    rows: AlignedEpisode
    task: str
    task_text: str
    split: str
    success: bool


def image_message_type(topic: str) -> type:
    """sensor_msgs/CompressedImage for a topic ending in ``/compressed`` (image_transport's naming), else Image."""
    return IMAGE_TRANSPORTS["compressed" if topic.rstrip("/").endswith("/compressed") else "raw"]


class EpisodeRecorder(Node):
    """Records control ticks into episodes, started and stopped by services or the ``record`` topic."""

    def __init__(self, name: str = "episode_recorder", **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare(self, EPISODE_RECORDER)
        p = {spec.name: self.get_parameter(spec.name).value for spec in EPISODE_RECORDER}
        self._cameras, topics = split_names(p["cameras"]), split_names(p["image_topics"])
        if not self._cameras or len(self._cameras) != len(topics):
            raise ValueError(
                f"cameras {list(self._cameras)} and image_topics {list(topics)} must name one camera per topic"
            )
        for key in ("image_width", "image_height", "min_episode_steps", "max_episode_steps"):
            if p[key] < 0:
                raise ValueError(f"{key} must be >= 0, got {p[key]}")
        if (p["image_width"] > 0) != (p["image_height"] > 0):
            raise ValueError(
                f"set both image_width and image_height or neither, got {p['image_width']}x{p['image_height']}"
            )
        if p["fps"] <= 0 or not p["max_age_s"] > 0:
            raise ValueError(f"fps and max_age_s must be > 0, got {p['fps']} and {p['max_age_s']}")
        if p["time_reference"] not in TIME_REFERENCES:
            raise ValueError(f"time_reference must be one of {TIME_REFERENCES}, got {p['time_reference']!r}")
        self._p = p
        self._action = VectorReader(p["action_type"], split_names(p["action_names"]), prefix="action")
        self._state = (
            VectorReader(p["state_type"], split_names(p["state_names"]), prefix="state")
            if p["state_topic"]
            else None
        )
        size = FrameSizer((p["image_height"], p["image_width"]) if p["image_width"] else None).size
        self._appender = EpisodeAppender(p["dataset"])  # refuses a foreign folder; locks the dataset
        try:
            self._sizer = FrameSizer(self._dataset_size(size))
        except ValueError:
            self._appender.close()
            raise

        self._aligner: StreamAligner | None = None  # the episode being recorded (executor thread only)
        self._latest: dict[str, tuple[int, object]] = {}  # newest sample per stream, seeds a new episode
        self._episode_params: dict[str, str] = {}  # task, task_text, split of the episode being recorded
        self._log_filters: dict[str, RepeatFilter] = {}
        self._queue: queue.Queue[FinishedEpisode | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_episodes, name="episode_writer", daemon=True)
        self._writer.start()

        self._inputs: dict[str, Subscription] = {}  # what an episode needs, by a name for messages
        for camera, topic in zip(self._cameras, topics, strict=True):
            self._inputs[f"camera {camera} ({topic})"] = self.create_subscription(
                image_message_type(topic), topic, functools.partial(self._on_image, camera),
                qos_profile_sensor_data,
            )  # fmt: skip
        self._inputs[f"actions ({p['action_topic']})"] = self.create_subscription(
            MESSAGE_CLASSES[self._action.kind], p["action_topic"], self._on_action, RELIABLE
        )
        if self._state is not None:
            self._inputs[f"state ({p['state_topic']})"] = self.create_subscription(
                MESSAGE_CLASSES[self._state.kind], p["state_topic"], self._on_state,
                qos_profile_sensor_data,
            )  # fmt: skip
        self.create_subscription(Bool, "record", self._on_record, RELIABLE)
        self.create_service(Trigger, "~/start_episode", self._on_start)
        self.create_service(SetBool, "~/stop_episode", self._on_stop)
        self.create_service(Trigger, "~/discard_episode", self._on_discard)
        self.get_logger().info(
            f"recording into {p['dataset']} ({len(self._appender.records)} episodes there): cameras "
            f"{dict(zip(self._cameras, topics, strict=True))}, actions {p['action_topic']} ({p['action_type']})"
            + (f", state {p['state_topic']} ({p['state_type']})" if self._state else ", no state")
        )

    def _dataset_size(self, size: tuple[int, int] | None) -> tuple[int, int] | None:
        """The stored frame size: an existing dataset fixes it, its cameras and rate (parameters must agree)."""
        info = self._appender.info
        if info is None:
            return size
        have = (info.image_height, info.image_width)
        if info.cameras != self._cameras or info.fps != self._p["fps"] or size not in (None, have):
            raise ValueError(
                f"{self._p['dataset']} holds cameras {list(info.cameras)} at {info.fps} fps, {have[1]}x{have[0]}; "
                f"these parameters give {list(self._cameras)} at {self._p['fps']} fps"
                + (f", {size[1]}x{size[0]}" if size else "")
                + ": match them or record into another dataset"
            )
        return have

    # -- inputs (executor thread) --------------------------------------------------------------------------
    def _time_ns(self, msg: object, info: MessageInfo) -> int:
        if self._p["time_reference"] == "arrival":
            return int(info["received_timestamp"])
        return header_stamp_ns(msg) or int(info["source_timestamp"])

    def _warn(self, key: str, message: str) -> None:
        if self._log_filters.setdefault(key, RepeatFilter(5.0)).should_log(message, time.monotonic()):
            self.get_logger().warning(message)

    def _on_image(self, camera: str, msg: object, info: MessageInfo) -> None:
        try:
            frame = to_rgb(msg)
        except ImageConversionError as error:
            self._warn(camera, f"camera {camera}: image dropped: {error}")
            return
        if self._sizer.size is None:
            self.get_logger().info(
                f"storing frames at the first frame's size ({frame.shape[1]}x{frame.shape[0]})"
            )
        self._sample(camera, self._time_ns(msg, info), self._sizer(frame))

    def _on_state(self, msg: object, info: MessageInfo) -> None:
        try:
            state = self._state(msg)
        except VectorMessageError as error:
            self._warn("state", f"state on {self._p['state_topic']} dropped: {error}")
            return
        self._sample("state", self._time_ns(msg, info), state)

    def _sample(self, stream: str, time_ns: int, value: object) -> None:
        self._latest[stream] = (time_ns, value)
        if self._aligner is None:
            return
        if stream == "state":
            self._aligner.add_state(time_ns, value)
        else:
            self._aligner.add_frame(stream, time_ns, value)

    def _on_action(self, msg: object, info: MessageInfo) -> None:
        try:
            action = self._action(msg)
        except VectorMessageError as error:
            self._warn("action", f"action on {self._p['action_topic']} dropped: {error}")
            return
        if self._aligner is None:
            return
        self._aligner.add_action(self._time_ns(msg, info), action)
        limit = self._p["max_episode_steps"]
        if limit and len(self._aligner) >= limit:
            self.get_logger().info(f"max_episode_steps={limit} reached")
            self._stop(bool(self.get_parameter("default_success").value))

    # -- episode control -----------------------------------------------------------------------------------
    def _on_record(self, msg: Bool) -> None:
        if msg.data and self._aligner is None:
            started, message = self._start()
            if not started:
                self.get_logger().warning(f"record: {message}")
        elif not msg.data and self._aligner is not None:
            self._stop(bool(self.get_parameter("default_success").value))

    def _on_start(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._start()
        return response

    def _on_stop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message = self._stop(bool(request.data))
        return response

    def _on_discard(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._aligner is None:
            response.success, response.message = False, "no episode is recording"
        else:
            steps, self._aligner = len(self._aligner), None
            response.success, response.message = True, f"episode discarded ({steps} steps)"
            self.get_logger().warning(response.message)
        return response

    def _start(self) -> tuple[bool, str]:
        if self._aligner is not None:
            return False, f"an episode is already recording ({len(self._aligner)} steps); stop it first"
        split = str(self.get_parameter("split").value)
        if split not in SPLITS:
            return False, f"parameter split is {split!r}; set it to one of {SPLITS}"
        if silent := self._inputs_without_publishers():  # an episode now would lose its first ticks, or all
            return False, (
                f"no publisher on {', '.join(silent)} yet: start the driver first, or check the topic names "
                "(`ros2 topic list`), then start again"
            )
        self._aligner = StreamAligner(self._cameras, self._state is not None, self._p["max_age_s"])
        for stream, (time_ns, value) in self._latest.items():  # what arrived just before the start
            self._sample(stream, time_ns, value)
        self._episode_params = {key: self.get_parameter(key).value for key in ("task", "task_text")}
        self._episode_params["split"] = split
        message = f"episode started: task {self._episode_params['task']!r}, split {split}"
        self.get_logger().info(message)
        return True, message

    def _inputs_without_publishers(self) -> list[str]:
        """The inputs no publisher is matched to, after waiting up to START_MATCH_WAIT_S for discovery (DDS
        threads match them; a start right after a driver came up waits instead of failing)."""
        deadline = time.monotonic() + START_MATCH_WAIT_S
        while True:
            silent = [name for name, inp in self._inputs.items() if inp.get_publisher_count() == 0]
            if not silent or time.monotonic() > deadline:
                return silent
            time.sleep(0.02)

    def _stop(self, success: bool) -> tuple[bool, str]:
        if self._aligner is None:
            return False, "no episode is recording"
        rows, self._aligner = self._aligner.finish(), None
        dropped = ", ".join(f"{n} {why}" for why, n in rows.dropped.items())
        dropped = f"; dropped: {dropped}" if dropped else ""
        if len(rows) < max(self._p["min_episode_steps"], 1):
            message = f"episode discarded: {len(rows)} steps, fewer than min_episode_steps{dropped}"
            self.get_logger().warning(message)
            return False, message
        info = DatasetInfo(
            fps=self._p["fps"], cameras=self._cameras, image_height=self._sizer.size[0], image_width=self._sizer.size[1],
            action_names=self._action.names, state_names=self._state.names if self._state else (),
            robot=self._p["robot"], extra={"recorded_by": "episode_recorder", "time_reference": self._p["time_reference"]},
        )  # fmt: skip
        params = self._episode_params
        self._queue.put(
            FinishedEpisode(info, rows, params["task"], params["task_text"], params["split"], success)
        )
        message = (
            f"episode stopped: {len(rows)} steps, {'success' if success else 'failure'}, queued{dropped}"
        )
        self.get_logger().info(message)
        return True, message

    # -- writing (own thread) ------------------------------------------------------------------------------
    def _write_episodes(self) -> None:
        while (episode := self._queue.get()) is not None:
            rows = episode.rows
            try:
                record = self._appender.append(
                    episode.info, rows.frames, rows.actions, rows.states, task=episode.task,
                    task_text=episode.task_text, success=episode.success, split=episode.split,
                    step_columns=rows.step_columns(),
                )  # fmt: skip
            except Exception as error:  # a failed episode is reported, the recorder keeps going
                self.get_logger().error(f"episode not saved ({len(rows)} steps): {error}")
                continue
            self.get_logger().info(
                f"saved episode {record.episode_index} ({record.length} steps, task {record.task!r}) to "
                f"{self._appender.root} ({len(self._appender.records)} episodes)"
            )

    def destroy_node(self) -> None:
        if self._aligner is not None:
            self.get_logger().warning(
                f"shutting down: the episode in progress ({len(self._aligner)} steps) is discarded"
            )
            self._aligner = None
        self._queue.put(None)
        self._writer.join(WRITER_JOIN_S)
        self._appender.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vid2robot episode_recorder``: exit code 2 on invalid parameters or a foreign dataset folder."""
    return run_node(EpisodeRecorder, "episode_recorder", args)


if __name__ == "__main__":
    sys.exit(main())
