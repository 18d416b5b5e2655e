"""Scripted-expert demonstrations from Meta-World, recorded from both views into the episode format.

Every attempt is a pure function of ``(seed, task, attempt)``: its layout seed comes from a SeedSequence, so
the dataset is identical for any number of workers. Workers only simulate and render; the main process
encodes and writes in a fixed order, so episode indices and bytes repeat run to run.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detection.safe_files import atomic_write_json
from vid2robot.data.episode_format import DatasetInfo, EpisodeRecord, EpisodeWriter
from vid2robot.sim.hand_demonstrator import (
    HAND_CAMERA,
    HAND_POOLS,
    HandAppearance,
    pace_indices,
    sample_appearance,
)
from vid2robot.sim.metaworld_env import (
    ACTION_NAMES,
    CAMERA_VIEWS,
    CONTROL_FPS,
    MAX_PATH_LENGTH,
    SHARED_STARTS,
    STATE_NAMES,
    VIEW_CAMERAS,
    MetaWorldEnv,
    check_task,
    task_index,
    task_text,
)

DEMO_TASKS = ("reach-v3", "push-v3", "drawer-open-v3", "button-press-topdown-v3", "door-open-v3")
# Separate seed streams: demonstration layouts, closed-loop evaluation layouts, hand demonstrator appearances.
DATAGEN_PURPOSE, EVAL_PURPOSE, HAND_PURPOSE = 0, 1, 2
HAND_APPEARANCES_FILE = "hand_appearances.json"


def episode_seed(seed: int, task_name: str, attempt: int, purpose: int = DATAGEN_PURPOSE) -> int:
    """The layout seed of one attempt; distinct per (seed, task, attempt, purpose)."""
    sequence = np.random.SeedSequence([seed, task_index(task_name), attempt, purpose])
    return int(sequence.generate_state(1, np.uint32)[0])


@dataclass
class DatagenConfig:
    """Options of ``vid2robot-datagen`` (``vid2robot/conf/datagen.yaml``)."""

    out_dir: str = "outputs/datagen/metaworld"
    tasks: list[str] = field(default_factory=lambda: list(DEMO_TASKS))
    episodes_per_task: int = 20
    val_episodes_per_task: int = 4  # held out: validation prompts and closed-loop prompt videos
    seed: int = 0
    image_size: int = 96
    cameras: list[str] = field(default_factory=lambda: ["robot", "demonstrator"])  # the views recorded
    # View name -> Meta-World camera, or "hand_view" for the hand demonstrator. Views named demonstrator* show
    # the re-coloured arm. Another camera for a view records the same episodes (same seed and counts) from
    # another viewpoint.
    camera_views: dict[str, str] = field(default_factory=lambda: dict(CAMERA_VIEWS))
    # Hand views: the appearance pool ("seen" for training data, "held_out" for evaluation prompts only) and
    # whether each episode draws its own look from it (false: one canonical look, no path noise or pace).
    hand_pool: str = "seen"
    hand_variation: bool = True
    hide_goal: bool = False  # no goal marker in any view: only the prompt can say where to go
    shared_start: bool = False  # opposite-task pairs start from one scene (SHARED_STARTS)
    workers: int = 2
    stop_after_success: int = 10  # steps recorded after the first success
    successful_only: bool = True
    max_steps: int = MAX_PATH_LENGTH
    max_attempts_per_episode: int = 3  # give up on a task after this many attempts per wanted episode
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for task in self.tasks:
            check_task(task)
        if len(set(self.tasks)) != len(self.tasks) or not self.tasks:
            raise ValueError(f"tasks must be a non-empty list without repeats, got {self.tasks}")
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {self.episodes_per_task}")
        if not 0 <= self.val_episodes_per_task < self.episodes_per_task:
            raise ValueError(
                f"val_episodes_per_task must be in [0, episodes_per_task={self.episodes_per_task}), "
                f"got {self.val_episodes_per_task}"
            )
        if self.shared_start and (unpaired := [t for t in self.tasks if t not in SHARED_STARTS]):
            raise ValueError(
                f"shared_start needs tasks of opposite pairs ({sorted(SHARED_STARTS)}); got {unpaired}"
            )
        if unmapped := [c for c in self.cameras if c not in self.camera_views]:
            raise ValueError(f"cameras {unmapped} have no entry in camera_views {dict(self.camera_views)}")
        if unknown := {v: c for v, c in self.camera_views.items() if c not in VIEW_CAMERAS}:
            raise ValueError(
                f"camera_views {unknown}: choose Meta-World's cameras or {HAND_CAMERA!r}: {list(VIEW_CAMERAS)}"
            )
        if self.hand_pool not in HAND_POOLS:
            raise ValueError(f"hand_pool must be one of {sorted(HAND_POOLS)}, got {self.hand_pool!r}")
        if self.stop_after_success < 0 or self.workers < 0 or self.max_attempts_per_episode < 1:
            raise ValueError("stop_after_success and workers must be >= 0, max_attempts_per_episode >= 1")


@dataclass
class ExpertEpisode:
    task: str
    seed: int
    frames: dict[str, np.ndarray]
    actions: np.ndarray
    states: np.ndarray
    success: bool
    first_success_step: int  # -1 when the expert never succeeded
    hand_appearance: HandAppearance | None = None  # the look of the hand views, when recorded


def rollout_expert(env: MetaWorldEnv, seed: int, stop_after_success: int) -> ExpertEpisode:
    """Run the scripted expert from the layout of ``seed``; stops ``stop_after_success`` steps after success.

    Step ``i`` stores the frames and state observed before action ``i``. Hand views show the expert's steps
    at the pace of ``env.hand_appearance`` (``pace_indices``): one frame per step still, a person's timing.
    """
    obs = env.reset(seed)
    frames: dict[str, list[np.ndarray]] = {cam: [] for cam in env.cameras}
    actions, states = [], []
    first_success, done = -1, False
    while not done and (first_success < 0 or len(actions) < first_success + 1 + stop_after_success):
        action = env.expert_action()
        for cam in env.cameras:
            frames[cam].append(obs.frames[cam])
        states.append(obs.state)
        actions.append(action)
        obs, success, done = env.step(action)
        if success and first_success < 0:
            first_success = len(actions) - 1
    videos = {cam: np.stack(f) for cam, f in frames.items()}
    hand_views = [cam for cam in env.cameras if env.camera_views[cam] == HAND_CAMERA]
    for cam in hand_views:
        videos[cam] = videos[cam][pace_indices(len(actions), env.hand_appearance)]
    return ExpertEpisode(
        env.task_name,
        seed,
        videos,
        np.stack(actions),
        np.stack(states),
        first_success >= 0,
        first_success,
        env.hand_appearance if hand_views else None,
    )


def hand_appearance(config: DatagenConfig, task: str, attempt: int) -> HandAppearance:
    """The hand demonstrator's look for one attempt: a function of (seed, task, attempt, pool)."""
    if not config.hand_variation:
        return HandAppearance.canonical()
    sequence = np.random.SeedSequence([config.seed, task_index(task), attempt, HAND_PURPOSE])
    return sample_appearance(np.random.default_rng(sequence), config.hand_pool)


_WORKER_ENVS: dict[str, MetaWorldEnv] = {}
_WORKER_CONFIG: DatagenConfig | None = None


def _init_worker(config: DatagenConfig) -> None:
    global _WORKER_CONFIG
    if config != _WORKER_CONFIG:  # in-process runs reuse this module: drop envs built for another config
        for env in _WORKER_ENVS.values():
            env.close()
        _WORKER_ENVS.clear()
    _WORKER_CONFIG = config


def _run_attempt(job: tuple[str, int]) -> ExpertEpisode:
    """One attempt in a worker process; environments (and their GL contexts) are cached per process."""
    task, attempt = job
    config = _WORKER_CONFIG
    assert config is not None, "worker not initialised"
    if task not in _WORKER_ENVS:
        _WORKER_ENVS[task] = MetaWorldEnv(
            task,
            seed=config.seed,
            image_size=config.image_size,
            cameras=config.cameras,
            camera_views=config.camera_views,
            max_steps=config.max_steps,
            **scene_options(config),
        )
    env = _WORKER_ENVS[task]
    env.hand_appearance = hand_appearance(config, task, attempt)
    episode = rollout_expert(env, episode_seed(config.seed, task, attempt), config.stop_after_success)
    episode.attempt = attempt
    return episode


def _attempts(config: DatagenConfig, jobs: list[tuple[str, int]]) -> Iterator[ExpertEpisode]:
    """Run jobs in order, in ``config.workers`` spawned processes (in this process when ``workers <= 1``)."""
    if config.workers <= 1:
        _init_worker(config)
        yield from map(_run_attempt, jobs)
        return
    # spawn, not fork: a forked child must not inherit (or race on) a parent's GL state.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(config.workers, len(jobs)), initializer=_init_worker, initargs=(config,)) as pool:
        yield from pool.imap(_run_attempt, jobs)


def scene_options(config: DatagenConfig) -> dict[str, bool]:
    """How the scenes were set up; stored in ``info.json`` so evaluation builds the same scenes."""
    return {"hide_goal": config.hide_goal, "shared_start": config.shared_start}


def recorded_scene(info: DatasetInfo) -> dict[str, bool]:
    """The ``scene_options`` a dataset was generated with (datasets from before they were stored: defaults)."""
    return dict(info.extra.get("scene", {}))


def hand_views(config: DatagenConfig) -> list[str]:
    return [cam for cam in config.cameras if config.camera_views[cam] == HAND_CAMERA]


def dataset_info(config: DatagenConfig) -> DatasetInfo:
    hand = {"pool": config.hand_pool, "variation": config.hand_variation} if hand_views(config) else {}
    return DatasetInfo(
        fps=CONTROL_FPS,
        cameras=tuple(config.cameras),
        image_height=config.image_size,
        image_width=config.image_size,
        action_names=ACTION_NAMES,
        state_names=STATE_NAMES,
        robot="metaworld-sawyer",
        extra={
            "camera_views": {cam: config.camera_views[cam] for cam in config.cameras},
            "simulator": "metaworld 3.1.1",
            "scene": scene_options(config),
        }
        | ({"hand": hand} if hand else {}),
    )


def generate_expert_dataset(config: DatagenConfig) -> dict:
    """Generate ``episodes_per_task`` expert demos per task into ``config.out_dir``; returns a summary.

    Failed attempts are retried with the next attempt seeds (when ``successful_only``), up to
    ``max_attempts_per_episode * episodes_per_task`` attempts per task. The last ``val_episodes_per_task``
    kept episodes of each task form the ``val`` split. ``meta/datagen.json`` records the config and
    the expert's success rate per task. The dataset appears at ``out_dir`` only when complete
    (``EpisodeWriter``); an interrupted run leaves ``out_dir`` as it was.
    """
    started = time.perf_counter()
    writer = EpisodeWriter(Path(config.out_dir), dataset_info(config), overwrite=config.overwrite)
    try:
        return _generate(config, writer, started)
    except BaseException:
        writer.abort()
        raise


def _generate(config: DatagenConfig, writer: EpisodeWriter, started: float) -> dict:
    kept: dict[str, list[EpisodeRecord]] = {task: [] for task in config.tasks}
    appearances: dict[int, dict] = {}
    tried = {task: 0 for task in config.tasks}
    succeeded = {task: 0 for task in config.tasks}
    total = config.episodes_per_task * len(config.tasks)
    bar = tqdm(total=total, desc="expert episodes", unit="ep", disable=not config.progress)
    while True:
        jobs = [
            (task, tried[task] + k)
            for task in config.tasks
            if tried[task] < config.max_attempts_per_episode * config.episodes_per_task
            for k in range(config.episodes_per_task - len(kept[task]))
        ]
        if not jobs:
            break
        for task, _ in jobs:
            tried[task] += 1
        for episode in _attempts(config, jobs):
            succeeded[episode.task] += episode.success
            if config.successful_only and not episode.success:
                continue
            record = writer.add_episode(
                frames=episode.frames,
                actions=episode.actions,
                states=episode.states,
                task=episode.task,
                task_index=task_index(episode.task),
                task_text=task_text(episode.task),
                success=episode.success,
                seed=episode.seed,
            )
            kept[episode.task].append(record)
            if episode.hand_appearance is not None:
                appearances[record.episode_index] = episode.hand_appearance.to_dict() | {
                    "attempt": episode.attempt
                }
            bar.update(1)
            bar.set_postfix(attempts=sum(tried.values()), refresh=False)
    bar.close()
    # Hold out the last episodes of each task; the writer's records are replaced before meta is written.
    val = {
        r.episode_index
        for records in kept.values()
        for r in records[len(records) - config.val_episodes_per_task :]
    }
    writer.records = [
        dataclasses.replace(r, split="val") if r.episode_index in val else r for r in writer.records
    ]
    per_task = {
        task: {
            "kept": len(kept[task]),
            "attempts": tried[task],
            "expert_successes": succeeded[task],
            "expert_success_rate": succeeded[task] / max(tried[task], 1),
        }
        for task in config.tasks
    }
    summary = {"config": dataclasses.asdict(config), "tasks": per_task}
    atomic_write_json(writer.meta_path("datagen.json"), summary)
    if appearances:  # every hand episode's look, so a dataset says which variations it holds
        atomic_write_json(
            writer.meta_path(HAND_APPEARANCES_FILE), {str(k): v for k, v in sorted(appearances.items())}
        )
    writer.close()  # the finished dataset moves into place only now
    missing = [task for task in config.tasks if len(kept[task]) < config.episodes_per_task]
    if missing:
        tqdm.write(
            f"warning: fewer than {config.episodes_per_task} successful demos for {missing} (see datagen.json)"
        )
    return summary | {"seconds": time.perf_counter() - started, "episodes": len(writer.records)}
