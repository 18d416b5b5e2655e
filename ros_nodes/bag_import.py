"""vid2robot-import-bag: rosbag2 recordings (sqlite3 or mcap) -> an episode dataset, with the PyPI ``rosbags``
reader (no ROS installation; the ``ros`` extra).

Topics are mapped by arguments: ``--camera NAME=TOPIC`` (sensor_msgs/Image or CompressedImage, decoded by the
same code as the nodes), ``--action TOPIC`` and ``--state TOPIC`` (TwistStamped, Float32MultiArray or
JointState, see ros_nodes.vector_messages). Rows are paired exactly as ``episode_recorder`` pairs them: one per
action, with the newest frame of each camera and the newest state at or before the action's time (header
stamps; the bag's log time for messages without one, or for all with ``--time-reference log``).
Episodes are one per bag, or, with ``--episodes-from TOPIC`` (std_msgs/Bool), from each true to the next
false; an episode still open at a bag's end is dropped (an interrupted recording), as the recorder drops one
at shutdown. ``--success-from TOPIC`` (std_msgs/Bool) sets an episode's success flag from the last value
seen during it.

The dataset is built in a hidden folder beside ``--out`` and moved into place when every bag is imported:
it is complete or absent; ``--overwrite`` replaces an existing episode dataset (never anything else).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.typesys import Stores, get_typestore

from detection.safe_files import replace_directory
from ros_nodes.compressed_image import compressed_to_rgb
from ros_nodes.frame_sizing import FrameSizer
from ros_nodes.image_conversion import ImageConversionError, image_to_rgb
from ros_nodes.vector_messages import VectorMessageError, VectorReader, header_stamp_ns, split_names
from vid2robot.data.episode_appender import EpisodeAppender
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import SPLITS, DatasetInfo, check_replaceable
from vid2robot.data.stream_alignment import AlignedEpisode, StreamAligner

log = logging.getLogger("vid2robot.import_bag")

IMAGE_DECODERS = {"sensor_msgs/msg/Image": image_to_rgb, "sensor_msgs/msg/CompressedImage": compressed_to_rgb}
BOOL_TYPE = "std_msgs/msg/Bool"
TIME_REFERENCES = ("header", "log")


@dataclass
class TopicMap:
    """Which bag topics make a recording, and how rows are paired."""

    cameras: dict[str, str]
    action: VectorReader
    action_topic: str
    state: VectorReader | None = None
    state_topic: str = ""
    episodes_from: str = ""
    success_from: str = ""
    max_age_s: float = 0.5
    time_reference: str = "header"
    default_success: bool = True
    sizer: FrameSizer = field(default_factory=FrameSizer)

    def aligner(self) -> StreamAligner:
        """A new episode's row pairing."""
        return StreamAligner(tuple(self.cameras), self.state is not None, self.max_age_s)

    def topics(self) -> dict[str, str]:
        """topic -> the message type it must have; a topic mapped to two roles is refused."""
        roles = [(topic, "image") for topic in self.cameras.values()]
        roles.append((self.action_topic, self.action.message_type))
        if self.state is not None:
            roles.append((self.state_topic, self.state.message_type))
        roles += [(topic, BOOL_TYPE) for topic in (self.episodes_from, self.success_from) if topic]
        wanted = dict(roles)
        if len(wanted) != len(roles):
            raise ValueError(f"each topic can have one role only, got {[topic for topic, _ in roles]}")
        return wanted


@dataclass
class BagEpisode:
    rows: AlignedEpisode
    success: bool
    source: str


def _connections(reader: AnyReader, bag: Path, topics: TopicMap) -> dict[str, Connection]:
    """The bag's connection of every mapped topic, its type checked; a missing or mistyped topic is named."""
    found: dict[str, Connection] = {}
    present = {c.topic: c.msgtype for c in reader.connections}
    for topic, wanted in topics.topics().items():
        msgtype = present.get(topic)
        if msgtype is None:
            raise ValueError(
                f"{bag}: no topic {topic}; the bag has {', '.join(f'{t} ({m})' for t, m in sorted(present.items()))}"
            )
        allowed = tuple(IMAGE_DECODERS) if wanted == "image" else (wanted,)
        if msgtype not in allowed:
            raise ValueError(f"{bag}: topic {topic} holds {msgtype}, expected {' or '.join(allowed)}")
        found[topic] = next(c for c in reader.connections if c.topic == topic)
    return found


def read_bag(bag: Path, topics: TopicMap) -> Iterator[BagEpisode]:
    """The episodes of one bag, in the order they were recorded."""
    camera_of = {topic: name for name, topic in topics.cameras.items()}
    per_bag = not topics.episodes_from
    with AnyReader([bag], default_typestore=get_typestore(Stores.LATEST)) as reader:
        connections = _connections(reader, bag, topics)
        aligner = topics.aligner() if per_bag else None
        latest: dict[str, tuple[int, object]] = {}  # newest frame / state, seeds an episode that starts
        success = topics.default_success
        skipped: Counter = Counter()
        for connection, log_time, raw in reader.messages(connections=list(connections.values())):
            msg = reader.deserialize(raw, connection.msgtype)
            topic = connection.topic
            stamp = log_time if topics.time_reference == "log" else header_stamp_ns(msg) or log_time
            if topic == topics.episodes_from:
                if msg.data and aligner is None:
                    aligner, success = topics.aligner(), topics.default_success
                    for name, (time_ns, value) in latest.items():
                        _feed(aligner, name, time_ns, value)
                elif not msg.data and aligner is not None:
                    yield BagEpisode(aligner.finish(), success, f"{bag} @ {log_time}")
                    aligner = None
                continue
            if topic == topics.success_from:
                success = bool(msg.data)
                continue
            try:
                if topic in camera_of:
                    name, value = camera_of[topic], topics.sizer(IMAGE_DECODERS[connection.msgtype](msg))
                elif topic == topics.state_topic:
                    name, value = "state", topics.state(msg)
                else:
                    name, value = "action", topics.action(msg)
            except (ImageConversionError, VectorMessageError) as error:
                skipped[f"{topic}: {error}"] += 1
                continue
            if name == "action":
                if aligner is not None:
                    aligner.add_action(stamp, value)
                continue
            latest[name] = (stamp, value)
            if aligner is not None:
                _feed(aligner, name, stamp, value)
        for key, count in skipped.items():
            log.warning("%s: %d messages skipped: %s", bag, count, key)
        if per_bag:
            yield BagEpisode(aligner.finish(), success, str(bag))
        elif aligner is not None:
            log.warning(
                "%s: the episode still open at the end of the bag is dropped (%d steps)", bag, len(aligner)
            )


def _feed(aligner: StreamAligner, name: str, time_ns: int, value: object) -> None:
    if name == "state":
        aligner.add_state(time_ns, value)
    else:
        aligner.add_frame(name, time_ns, value)


def import_bags(
    bags: Sequence[str | Path],
    out: str | Path,
    topics: TopicMap,
    task: str,
    task_text: str = "",
    split: str = "train",
    fps: int = 10,
    robot: str = "",
    min_steps: int = 2,
    overwrite: bool = False,
) -> EpisodeDataset:
    """Import ``bags`` into a new dataset at ``out`` (see the module doc); returns it."""
    out = Path(out)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent)) / out.name
    try:
        with EpisodeAppender(staging) as appender:
            for bag in bags:
                for episode in read_bag(Path(bag), topics):
                    rows = episode.rows
                    dropped = ", ".join(f"{n} {why}" for why, n in rows.dropped.items())
                    if len(rows) < max(min_steps, 1):
                        log.warning(
                            "%s: episode of %d steps skipped (min_steps=%d) %s",
                            episode.source,
                            len(rows),
                            min_steps,
                            dropped,
                        )
                        continue
                    info = DatasetInfo(
                        fps=fps, cameras=tuple(topics.cameras), image_height=topics.sizer.size[0],
                        image_width=topics.sizer.size[1], action_names=topics.action.names,
                        state_names=topics.state.names if topics.state else (), robot=robot,
                        extra={"imported_from": [str(b) for b in bags], "time_reference": topics.time_reference},
                    )  # fmt: skip
                    record = appender.append(
                        info, rows.frames, rows.actions, rows.states, task=task, task_text=task_text,
                        success=episode.success, split=split, step_columns=rows.step_columns(),
                    )  # fmt: skip
                    log.info(
                        "%s: episode %d, %d steps%s",
                        episode.source,
                        record.episode_index,
                        record.length,
                        f" (dropped: {dropped})" if dropped else "",
                    )
            if not appender.records:
                raise ValueError(f"no episode of at least {min_steps} steps in {[str(b) for b in bags]}")
        replace_directory(staging, out)
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    return EpisodeDataset(out)


def parse_cameras(items: Sequence[str]) -> dict[str, str]:
    cameras = {}
    for item in items:
        name, sep, topic = item.partition("=")
        if not (sep and name and topic) or name in cameras:
            raise ValueError(f"--camera expects distinct NAME=TOPIC, got {item!r}")
        cameras[name] = topic
    return cameras


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vid2robot-import-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("bags", nargs="+", help="rosbag2 folders (metadata.yaml + .db3 or .mcap), in order")
    parser.add_argument("--out", required=True, help="the dataset to create")
    parser.add_argument(
        "--camera", action="append", required=True, metavar="NAME=TOPIC", help="a camera (repeat)"
    )
    parser.add_argument("--action", required=True, metavar="TOPIC", help="the control ticks")
    parser.add_argument(
        "--action-type",
        default="float32_multi_array",
        help="twist_stamped, float32_multi_array, joint_state[:field]",
    )
    parser.add_argument(
        "--action-names", default="", help="comma-separated entries to keep (see the recorder)"
    )
    parser.add_argument("--state", default="", metavar="TOPIC", help="robot state topic (optional)")
    parser.add_argument("--state-type", default="joint_state")
    parser.add_argument("--state-names", default="")
    parser.add_argument(
        "--episodes-from",
        default="",
        metavar="TOPIC",
        help="std_msgs/Bool: true starts an episode, false ends it (default: one episode per bag)",
    )
    parser.add_argument(
        "--success-from",
        default="",
        metavar="TOPIC",
        help="std_msgs/Bool: an episode's success flag is the last value during it",
    )
    parser.add_argument(
        "--failure",
        action="store_true",
        help="episodes without a success topic are failures (default: successes)",
    )
    parser.add_argument("--task", required=True, help="task id of the episodes")
    parser.add_argument("--task-text", default="", help="instruction text (default: the task id)")
    parser.add_argument("--split", default="train", choices=SPLITS)
    parser.add_argument("--fps", type=int, default=10, help="nominal control rate written to info.json")
    parser.add_argument(
        "--image-size", default="", metavar="WxH", help="stored frame size (default: the first frame's)"
    )
    parser.add_argument(
        "--max-age", type=float, default=0.5, help="seconds: an older frame or state drops the row"
    )
    parser.add_argument("--time-reference", default="header", choices=TIME_REFERENCES)
    parser.add_argument("--robot", default="")
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing episode dataset at --out"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        size = None
        if args.image_size:
            width, _, height = args.image_size.partition("x")
            size = (int(height), int(width))
        topics = TopicMap(
            cameras=parse_cameras(args.camera),
            action=VectorReader(args.action_type, split_names(args.action_names), prefix="action"),
            action_topic=args.action,
            state=VectorReader(args.state_type, split_names(args.state_names), prefix="state") if args.state else None,
            state_topic=args.state, episodes_from=args.episodes_from, success_from=args.success_from,
            max_age_s=args.max_age, time_reference=args.time_reference, default_success=not args.failure,
            sizer=FrameSizer(size),
        )  # fmt: skip
        dataset = import_bags(
            args.bags, args.out, topics, args.task, args.task_text, args.split, args.fps, args.robot,
            args.min_steps, args.overwrite,
        )  # fmt: skip
    except (ValueError, OSError, AnyReaderError) as error:
        print(f"vid2robot-import-bag: {error}", file=sys.stderr)
        return 2
    frames = sum(r.length for r in dataset.records)
    print(f"wrote {args.out}: {len(dataset)} episodes, {frames} steps, cameras {list(dataset.info.cameras)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
