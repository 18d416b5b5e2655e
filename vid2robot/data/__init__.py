"""Episode storage (mp4 + parquet, docs/episode_format.md) and the paired prompt/robot training dataset."""

from vid2robot.data.episode_dataset import Episode, EpisodeDataset
from vid2robot.data.episode_format import DatasetInfo, EpisodeRecord, EpisodeWriter, write_episode, write_meta
from vid2robot.data.paired_dataset import PairedVideoDataset
from vid2robot.data.video_io import VideoDecodeError

__all__ = [
    "DatasetInfo",
    "Episode",
    "EpisodeDataset",
    "EpisodeRecord",
    "EpisodeWriter",
    "PairedVideoDataset",
    "VideoDecodeError",
    "write_episode",
    "write_meta",
]
