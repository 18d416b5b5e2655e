"""``vid2robot-lerobot``: LeRobot v3.0 datasets to and from the episode format.

vid2robot-lerobot import LEROBOT_DIR DATASET [--split train] [--overwrite]
vid2robot-lerobot export DATASET LEROBOT_DIR [--data-file-mb 100] [--video-file-mb 200] [--overwrite]
"""

from __future__ import annotations

import argparse
import logging

from vid2robot.cli.errors import report_user_errors
from vid2robot.data.episode_format import SPLITS
from vid2robot.data.lerobot_export import export_lerobot_v3
from vid2robot.data.lerobot_import import import_lerobot_v3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vid2robot-lerobot", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("import", help="a LeRobot v3 folder -> a new episode dataset")
    read.add_argument("src", help="LeRobot v3 dataset folder (meta/info.json, data/, videos/)")
    read.add_argument("dst", help="episode dataset to create")
    read.add_argument(
        "--split", default="train", choices=SPLITS, help="split of episodes without a vid2robot/split"
    )
    read.add_argument("--overwrite", action="store_true", help="replace an existing episode dataset at dst")
    write = commands.add_parser("export", help="an episode dataset -> a new LeRobot v3 folder")
    write.add_argument("src", help="episode dataset folder")
    write.add_argument("dst", help="LeRobot v3 folder to create")
    write.add_argument(
        "--data-file-mb", type=float, default=100.0, help="start a new data parquet at this size"
    )
    write.add_argument(
        "--video-file-mb", type=float, default=200.0, help="start a new mp4 per camera at this size"
    )
    write.add_argument("--overwrite", action="store_true", help="replace an existing LeRobot dataset at dst")
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    with report_user_errors("vid2robot-lerobot"):
        if args.command == "import":
            dataset = import_lerobot_v3(args.src, args.dst, split=args.split, overwrite=args.overwrite)
            frames = sum(r.length for r in dataset.records)
            print(
                f"wrote {args.dst}: {len(dataset)} episodes, {frames} steps, cameras {list(dataset.info.cameras)}"
            )
        else:
            export_lerobot_v3(
                args.src,
                args.dst,
                args.overwrite,
                data_file_mb=args.data_file_mb,
                video_file_mb=args.video_file_mb,
            )
            print(f"wrote {args.dst} (LeRobot v3.0)")


if __name__ == "__main__":
    main()
