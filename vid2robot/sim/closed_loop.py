"""Closed-loop evaluation of a prompt-conditioned policy on Meta-World (LeRobot-style ``pc_success``).

For each task and each fresh layout seed: a prompt video from a held-out episode of the task goes to
``policy.set_prompt``, ``policy.reset()`` starts the episode, and ``policy.select_action`` drives the robot
camera's frames until the environment's own success flag is raised or ``max_steps`` pass. Success rates get
Wilson 95% intervals; ``results.json``, ``results.md`` (``closed_loop_report``) and one ``rollout_<task>.mp4``
per task (prompt beside the first rollout) are written to ``out_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.policy.frame_sampling import sample_prompt_frames
from vid2robot.policy.preprocess import frames_to_tensor
from vid2robot.sim.closed_loop_report import (
    EpisodeRecord,
    pooled_success,
    prompt_swap_matrix,
    task_result,
    write_closed_loop_report,
)
from vid2robot.sim.expert_data import EVAL_PURPOSE, episode_seed, recorded_scene
from vid2robot.sim.metaworld_env import (
    MAX_PATH_LENGTH,
    OPPOSITE_TASK,
    MetaWorldEnv,
    TaskSuccessProbe,
    check_task,
    task_index,
)
from vid2robot.sim.rollout_video import side_by_side, write_side_by_side


class Policy(Protocol):
    """The deployment interface of docs/architecture.md."""

    def set_prompt(self, video: torch.Tensor) -> None: ...
    def reset(self) -> None: ...
    def select_action(self, frame: torch.Tensor) -> Any: ...


@dataclass
class PromptSource:
    """Where prompt videos come from: successful episodes of ``split`` in ``dataset``, seen by ``camera``."""

    dataset: EpisodeDataset | str | Path
    camera: str = "demonstrator"
    split: str = "val"

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, EpisodeDataset):
            self.dataset = EpisodeDataset(self.dataset)
        if self.camera not in self.dataset.info.cameras:
            raise ValueError(
                f"prompt camera {self.camera!r} is not in {self.dataset.root}; it has {list(self.dataset.info.cameras)}"
            )

    def episodes(self, task: str) -> list[int]:
        assert isinstance(self.dataset, EpisodeDataset)
        if task not in self.dataset.tasks:
            raise ValueError(
                f"task {task!r} has no episodes in {self.dataset.root} (it has {self.dataset.tasks})"
            )
        indices = self.dataset.select(split=self.split, task=task, success=True)
        if not indices:
            raise ValueError(
                f"no successful {self.split!r} episodes of {task!r} in {self.dataset.root} to use as prompts "
                "(generate held-out episodes with val_episodes_per_task > 0, or pick another split)"
            )
        return indices


def _prompt_for(policy: Policy, task_index: int, video: torch.Tensor) -> torch.Tensor | int:
    """What ``set_prompt`` takes: a policy conditioned on something else than the video (the task-id oracle)
    says so with ``episode_prompt``; a policy with only the three-method interface gets the video."""
    choose = getattr(policy, "episode_prompt", None)
    return video if choose is None else choose(task_index, video)


def _as_action(output: Any, action_dim: int) -> np.ndarray:
    action = output.detach().cpu().numpy() if isinstance(output, torch.Tensor) else np.asarray(output)
    action = action.astype(np.float32).reshape(-1)
    if action.shape != (action_dim,) or not np.isfinite(action).all():
        raise ValueError(f"policy.select_action must return {action_dim} finite values, got {action}")
    return action


def _policy_sizes(policy: Policy, image_size: int | None, prompt_frames: int | None) -> tuple[int, int]:
    """Sizes given explicitly, else from ``policy.config`` (Vid2RobotConfig), else 96 px and 16 frames."""
    config = getattr(policy, "config", None)
    image_size = image_size or getattr(config, "image_size", None) or 96
    prompt_frames = prompt_frames or getattr(config, "prompt_frames", None) or 16
    return int(image_size), int(prompt_frames)


@dataclass
class EpisodeOutcome:
    success: bool
    first_done: str | None  # the task whose success came first (with a probe: either task of the pair)
    frames: list[np.ndarray]
    labels: list[str]


def _run_episode(
    policy: Policy,
    env: MetaWorldEnv,
    prompt: torch.Tensor | int,
    layout_seed: int,
    image_size: int,
    record: bool,
    probe: TaskSuccessProbe | None = None,
) -> EpisodeOutcome:
    """One prompted episode until success or ``max_steps``; ``probe`` also watches the pair's other task."""
    with torch.inference_mode():
        policy.set_prompt(prompt)
        policy.reset()
        obs = env.reset(layout_seed)
        if probe is not None:
            probe.reset(layout_seed)
        frames, labels, success, done = [obs.frames["robot"]], [f"{env.task_name} t=0"], False, False
        first_done: str | None = None
        while not (success or done):
            action = _as_action(
                policy.select_action(frames_to_tensor(obs.frames["robot"], image_size)), env.action_dim
            )
            obs, success, done = env.step(action)
            if first_done is None:
                if success:
                    first_done = env.task_name
                elif probe is not None and probe(action):
                    first_done = probe.task_name
            if record:
                frames.append(obs.frames["robot"])
                labels.append(f"{env.task_name} t={env.steps}" + (" SUCCESS" if success else ""))
    return EpisodeOutcome(success, first_done, frames, labels)


@dataclass
class _RunSettings:
    """What every episode of an evaluation shares."""

    episodes_per_task: int
    seed: int
    out_dir: Path
    video: bool
    image_size: int
    prompt_frames: int


def _evaluate_task(
    policy: Policy,
    task: str,
    prompt_source: PromptSource,
    env: MetaWorldEnv,
    probe: TaskSuccessProbe | None,
    settings: _RunSettings,
    on_episode: Callable[[], object],
) -> list[EpisodeRecord]:
    """``settings.episodes_per_task`` episodes of ``task`` on fresh layouts, prompts cycling through the
    task's prompt episodes; the first is recorded beside its prompt when ``settings.video``."""
    dataset = prompt_source.dataset
    assert isinstance(dataset, EpisodeDataset)
    prompts = prompt_source.episodes(task)
    records = []
    for i in range(settings.episodes_per_task):
        prompt_episode = dataset.episode(prompts[i % len(prompts)])
        raw_prompt = prompt_episode.frames(
            prompt_source.camera, sample_prompt_frames(prompt_episode.length, settings.prompt_frames)
        )
        layout_seed = episode_seed(settings.seed, task, i, EVAL_PURPOSE)
        record = settings.video and i == 0
        prompt = _prompt_for(policy, task_index(task), frames_to_tensor(raw_prompt, settings.image_size))
        outcome = _run_episode(policy, env, prompt, layout_seed, settings.image_size, record, probe)
        records.append(
            EpisodeRecord(
                layout_seed,
                outcome.success,
                outcome.first_done,
                env.steps,
                prompt_episode.record.episode_index,
            )
        )
        if record:
            label = f"prompt: {prompt_source.camera} ep {prompt_episode.record.episode_index}"
            write_side_by_side(
                settings.out_dir / f"rollout_{task}.mp4",
                side_by_side(
                    prompt_episode.frames(prompt_source.camera),
                    np.stack(outcome.frames),
                    label,
                    outcome.labels,
                ),
            )
        on_episode()
    return records


def evaluate_closed_loop(
    policy: Policy,
    tasks: Sequence[str],
    prompt_source: PromptSource,
    episodes_per_task: int,
    seed: int,
    out_dir: str | Path,
    video: bool = True,
    max_steps: int = MAX_PATH_LENGTH,
    image_size: int | None = None,
    prompt_frames: int | None = None,
    progress: bool = True,
    prompt_swap: bool = True,
) -> dict:
    """Run ``episodes_per_task`` fresh episodes per task; returns (and writes) per-task and mean success.

    Layout seeds come from a stream separate from data generation, so no evaluation layout is a training
    demo. Prompts cycle through the task's held-out episodes. Policies that read simulator state (the
    scripted ``ExpertPolicy``) get each task's environment through ``policy.bind_env(env)``.

    With ``prompt_swap``, every task evaluated together with its opposite (``OPPOSITE_TASK``: one scene, two
    tasks) also has the opposite task's success watched in each episode; ``summary["prompt_swap"]`` then says,
    per pair and prompt, which task the robot did first. The diagonal is prompt following; the off-diagonal
    is doing the scene's other task whatever the prompt said.
    """
    for task in tasks:
        check_task(task)
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
    image_size, prompt_frames = _policy_sizes(policy, image_size, prompt_frames)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for task in tasks:  # fail early on a task without prompts
        prompt_source.episodes(task)
    dataset = prompt_source.dataset
    assert isinstance(dataset, EpisodeDataset)
    scene = recorded_scene(dataset.info)  # goal markers and shared starts as the prompt data had them
    settings = _RunSettings(episodes_per_task, seed, out_dir, video, image_size, prompt_frames)
    results: dict[str, dict] = {}
    bar = tqdm(total=len(tasks) * episodes_per_task, desc="closed loop", unit="ep", disable=not progress)
    for task in tasks:
        # The robot camera renders at the recorded data's resolution; frames_to_tensor resizes for the policy.
        with MetaWorldEnv(
            task,
            seed=seed,
            image_size=dataset.info.image_height,
            cameras=("robot",),
            max_steps=max_steps,
            **scene,
        ) as env:
            if hasattr(policy, "bind_env"):
                policy.bind_env(env)
            partner = OPPOSITE_TASK.get(task) if prompt_swap else None
            probe = TaskSuccessProbe(env, partner) if partner in tasks else None
            try:
                episodes = _evaluate_task(
                    policy, task, prompt_source, env, probe, settings, lambda: bar.update(1)
                )
            finally:
                if probe is not None:
                    probe.close()
        results[task] = task_result(episodes)
        bar.set_postfix({task: f"{results[task]['successes']}/{episodes_per_task}"}, refresh=False)
    bar.close()
    mean, mean_ci95 = pooled_success(results)
    summary = {
        "policy": type(policy).__name__,
        "prompt_camera": prompt_source.camera,
        "prompt_split": prompt_source.split,
        "prompt_dataset": str(dataset.root),
        "seed": seed,
        "episodes_per_task": episodes_per_task,
        "max_steps": max_steps,
        "image_size": image_size,
        "prompt_frames": prompt_frames,
        "temporal_ensemble_coeff": getattr(policy, "temporal_ensemble_coeff", None),
        "scene": scene,
        "tasks": results,
        "mean_success_rate": mean,
        "mean_ci95": mean_ci95,
        "prompt_swap": prompt_swap_matrix(results) if prompt_swap else {},
    }
    write_closed_loop_report(summary, out_dir)
    return summary
