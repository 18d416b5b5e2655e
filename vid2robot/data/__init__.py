"""Episode storage (mp4 + parquet, docs/episode_format.md) and the paired prompt/robot training dataset.

Modules: ``episode_format`` (layout, ``EpisodeWriter``), ``episode_dataset`` (lazy ``EpisodeDataset``),
``video_io`` (H.264 mp4 read/write), ``paired_dataset`` (``PairedVideoDataset``, imports torch),
``augment`` (per-video crop and colour jitter), ``lerobot_import`` (LeRobot v3 folders).
"""
