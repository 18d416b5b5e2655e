"""(prompt video, robot episode) pairs of the same task, sampled the way Vid2Robot trains.

Each item is one robot timestep ``t``: the robot camera's last ``state_frames`` frames up to ``t`` (padded by
repeating frame 0, the window ``select_action`` builds online), the actions ``t .. t+horizon-1`` (padded with
the last action), and a prompt video of the same task - from another episode by default (the paper pairs
different episodes, e.g. a human video with a robot episode) - subsampled to ``prompt_frames`` frames with the
first and last kept. Shuffling over all timesteps gives the paper's random ``t``. With
``robot_trajectory_frames`` an item also carries the robot episode itself, subsampled like a prompt: the robot
video that the alignment losses (TCC, video-video contrastive) compare with the prompt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vid2robot.data.augment import VideoAugmentation, crop_frames, jitter_video
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.policy.frame_sampling import sample_prompt_frames, state_window_indices
from vid2robot.policy.preprocess import frames_to_tensor

PROMPT_SOURCES = ("other", "same")


class FrameCache:
    """Least-recently-used frames, bounded by a number of entries and/or bytes (per worker process).

    The most recent entry is always kept, so one episode larger than the byte budget still serves its reads.
    """

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        frames = load()
        self._entries[key] = frames
        self._bytes += frames.nbytes
        while len(self._entries) > 1 and (
            (self.max_entries is not None and len(self._entries) > self.max_entries)
            or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            self._bytes -= self._entries.popitem(last=False)[1].nbytes
        return frames


# What a policy reads from a dataset item: frame size, prompt and state frames, action horizon.
WINDOW_FIELDS = ("image_size", "prompt_frames", "state_frames", "horizon")


class PairedVideoDataset(Dataset):
    """Torch dataset of prompt/robot pairs over one split of an episode dataset.

    Items (collated by the default collate): ``prompt_video`` float ``[Tp, 3, S, S]``, ``robot_video`` float
    ``[Ts, 3, S, S]``, ``actions`` float ``[horizon, action_dim]``, ``action_is_pad`` bool ``[horizon]``,
    ``task_index`` int, ``task`` str (task text), ``episode_index``, ``prompt_episode_index``, ``prompt_camera``,
    ``timestep``. With several ``prompt_camera`` names each item draws one (mixed robot-robot and
    demonstrator-robot pairs). With ``robot_trajectory_frames > 0`` also ``robot_trajectory`` float
    ``[Tr, 3, S, S]``: the item's own robot episode, first and last frames kept.

    Randomness (prompt episode, augmentation) comes from ``seed``, the item index and, when augmenting, the
    process's torch seed (which Lightning sets per worker and epoch): runs repeat given the seeds, epochs and
    workers differ. Without augmentation an index always gives the same item. Video files are opened per
    read, so worker processes never share decoder state.
    """

    def __init__(
        self,
        root: str | Path | EpisodeDataset,
        split: str = "train",
        image_size: int = 96,
        prompt_frames: int = 16,
        state_frames: int = 8,
        horizon: int = 1,
        prompt_camera: str | Sequence[str] = "demonstrator",
        robot_camera: str = "robot",
        prompt_source: str = "other",
        augment: bool | None = None,
        augmentation: VideoAugmentation | None = None,
        successful_only: bool = True,
        seed: int = 0,
        prompt_cache_size: int = 256,
        robot_cache_mb: float = 0.0,
        robot_trajectory_frames: int = 0,
    ) -> None:
        self.episodes = root if isinstance(root, EpisodeDataset) else EpisodeDataset(root)
        cameras = self.episodes.info.cameras
        prompt_cameras = (prompt_camera,) if isinstance(prompt_camera, str) else tuple(prompt_camera)
        if not prompt_cameras:
            raise ValueError("prompt_camera needs at least one camera")
        for name, cam in [("prompt_camera", c) for c in prompt_cameras] + [("robot_camera", robot_camera)]:
            if cam not in cameras:
                raise ValueError(
                    f"{name}={cam!r} is not a camera of {self.episodes.root}; choose from {list(cameras)}"
                )
        if prompt_source not in PROMPT_SOURCES:
            raise ValueError(f"prompt_source must be one of {PROMPT_SOURCES}, got {prompt_source!r}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        sample_prompt_frames(1, prompt_frames)  # validates prompt_frames
        state_window_indices(0, state_frames)  # validates state_frames
        if robot_trajectory_frames:
            sample_prompt_frames(1, robot_trajectory_frames)  # validates robot_trajectory_frames
        self.robot_trajectory_frames = robot_trajectory_frames
        self.split, self.image_size = split, image_size
        self.prompt_frames, self.state_frames, self.horizon = prompt_frames, state_frames, horizon
        self.prompt_cameras = prompt_cameras
        self.robot_camera, self.prompt_source = robot_camera, prompt_source
        self.augment = split == "train" if augment is None else augment
        self.augmentation = augmentation or VideoAugmentation()
        self.seed = seed
        # A prompt episode always gives the same frame indices, so its raw frames are cached (per worker
        # process; 256 prompts of 16 frames at 96x96 take 110 MB); augmentation still differs per draw.
        self._prompt_cache = FrameCache(max_entries=prompt_cache_size) if prompt_cache_size > 0 else None
        # Robot windows are drawn at random timesteps, so each read seeks and decodes a GOP; with a budget,
        # whole robot-camera episodes are decoded once and kept (per worker), which keeps a GPU fed.
        if robot_cache_mb < 0:
            raise ValueError(f"robot_cache_mb must be >= 0, got {robot_cache_mb}")
        self._robot_cache = FrameCache(max_bytes=int(robot_cache_mb * 2**20)) if robot_cache_mb > 0 else None

        selected = self.episodes.select(split=split, success=True if successful_only else None)
        if not selected:
            raise ValueError(
                f"{self.episodes.root} has no {'successful ' if successful_only else ''}{split!r} episodes"
            )
        self.prompt_pool: dict[str, list[int]] = {}
        for index in selected:
            self.prompt_pool.setdefault(self.episodes.episode(index).record.task, []).append(index)
        if prompt_source == "other":
            lonely = [task for task, pool in self.prompt_pool.items() if len(pool) < 2]
            if lonely:
                raise ValueError(
                    f"prompt_source='other' needs at least 2 {split!r} episodes per task; {lonely} have one "
                    "(generate more episodes or use prompt_source='same')"
                )
        self.items = [(index, t) for index in selected for t in range(self.episodes.episode(index).length)]

    @classmethod
    def for_policy(cls, config: Any, root: str | Path | EpisodeDataset, **options: Any) -> PairedVideoDataset:
        """A dataset with ``config``'s ``WINDOW_FIELDS`` (a policy config, or the datamodule's hyperparameters,
        which Hydra fills from it): items shaped as that policy reads them."""
        return cls(root, **{name: getattr(config, name) for name in WINDOW_FIELDS}, **options)

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, index: int) -> np.random.Generator:
        stream = torch.initial_seed() % (2**63) if self.augment else 0
        return np.random.default_rng([self.seed, stream, index])

    def _prompt_frames(self, episode_index: int, camera: str) -> np.ndarray:
        episode = self.episodes.episode(episode_index)

        def load() -> np.ndarray:
            return episode.frames(camera, sample_prompt_frames(episode.length, self.prompt_frames))

        return load() if self._prompt_cache is None else self._prompt_cache.get((episode_index, camera), load)

    def _robot_frames(self, episode_index: int, indices: list[int]) -> np.ndarray:
        episode = self.episodes.episode(episode_index)
        if self._robot_cache is None:
            return episode.frames(self.robot_camera, indices)
        return self._robot_cache.get(episode_index, lambda: episode.frames(self.robot_camera))[indices]

    def _video(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        if not self.augment:
            return frames_to_tensor(frames, self.image_size)
        box = self.augmentation.sample_crop(rng, frames.shape[1], frames.shape[2])
        video = frames_to_tensor(np.ascontiguousarray(crop_frames(frames, box)), self.image_size)
        return jitter_video(video, self.augmentation.sample_color(rng))

    def __getitem__(self, index: int) -> dict:
        return self.get_item(index, self._rng(index))

    def get_item(self, index: int, rng: np.random.Generator) -> dict:
        """The item at ``index`` with its random draws (prompt episode, augmentation) taken from ``rng``.

        ``detection.training.resumable_loader`` passes a seed per (epoch, position) here, so a resumed run
        draws exactly what an uninterrupted one would.
        """
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} items")
        episode_index, t = self.items[index]
        episode = self.episodes.episode(episode_index)
        task = episode.record.task
        if self.prompt_source == "same":
            prompt_index = episode_index
        else:
            pool = [i for i in self.prompt_pool[task] if i != episode_index]
            prompt_index = pool[int(rng.integers(len(pool)))]
        # Several prompt cameras mix pair kinds (robot-robot and demonstrator-robot, as the paper trains).
        camera = (
            self.prompt_cameras[int(rng.integers(len(self.prompt_cameras)))]
            if len(self.prompt_cameras) > 1
            else self.prompt_cameras[0]
        )
        prompt_raw = self._prompt_frames(prompt_index, camera)
        robot_raw = self._robot_frames(episode_index, state_window_indices(t, self.state_frames))
        steps = np.arange(t, t + self.horizon)
        actions = episode.actions[np.minimum(steps, episode.length - 1)]
        item = {
            "prompt_video": self._video(prompt_raw, rng),
            "robot_video": self._video(robot_raw, rng),
            "actions": torch.from_numpy(np.ascontiguousarray(actions, np.float32)),
            "action_is_pad": torch.from_numpy(steps >= episode.length),
            "task_index": episode.record.task_index,
            "task": episode.record.task_text,
            "episode_index": episode_index,
            "prompt_episode_index": prompt_index,
            "prompt_camera": camera,
            "timestep": t,
        }
        if self.robot_trajectory_frames:
            indices = sample_prompt_frames(episode.length, self.robot_trajectory_frames)
            item["robot_trajectory"] = self._video(self._robot_frames(episode_index, indices), rng)
        return item
