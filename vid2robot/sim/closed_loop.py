"""Closed-loop evaluation of a prompt-conditioned policy on Meta-World (LeRobot-style ``pc_success``).

For each task and each fresh layout seed: a prompt video from a held-out episode of the task goes to
``policy.set_prompt``, ``policy.reset()`` starts the episode, and ``policy.select_action`` drives the robot
camera's frames until the environment's own success flag is raised or ``max_steps`` pass. Success rates get
Wilson 95% intervals; ``results.json``, ``results.md`` and one ``rollout_<task>.mp4`` per task (prompt beside
the first rollout) are written to ``out_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy.stats import binomtest
from tqdm import tqdm

from detection.safe_files import atomic_write_json, atomic_write_text
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.policy.frame_sampling import sample_prompt_frames
from vid2robot.policy.preprocess import frames_to_tensor
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


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial rate (scipy's; sound at 0% and 100%, unlike +-2 SE)."""
    if trials <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def prompt_for(policy: Policy, task_id: int, video: torch.Tensor) -> torch.Tensor | int:
    """What ``set_prompt`` takes: the task id for the oracle (``prompt_kind == "task_index"``), else the video
    (the scripted expert, which has no ``prompt_kind``, is given the video and ignores it)."""
    return task_id if getattr(policy, "prompt_kind", "video") == "task_index" else video


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
    prompts = {task: prompt_source.episodes(task) for task in tasks}  # fail early on a missing task
    dataset = prompt_source.dataset
    assert isinstance(dataset, EpisodeDataset)
    scene = recorded_scene(dataset.info)  # goal markers and shared starts as the prompt data had them
    results: dict[str, dict] = {}
    bar = tqdm(total=len(tasks) * episodes_per_task, desc="closed loop", unit="ep", disable=not progress)
    for task in tasks:
        episodes = []
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
            for i in range(episodes_per_task):
                prompt_episode = dataset.episode(prompts[task][i % len(prompts[task])])
                indices = sample_prompt_frames(prompt_episode.length, prompt_frames)
                raw_prompt = prompt_episode.frames(prompt_source.camera, indices)
                layout_seed = episode_seed(seed, task, i, EVAL_PURPOSE)
                outcome = _run_episode(
                    policy,
                    env,
                    prompt_for(policy, task_index(task), frames_to_tensor(raw_prompt, image_size)),
                    layout_seed,
                    image_size,
                    video and i == 0,
                    probe,
                )
                episodes.append(
                    {
                        "seed": layout_seed,
                        "success": outcome.success,
                        "first_done": outcome.first_done,
                        "steps": env.steps,
                        "prompt_episode": prompt_episode.record.episode_index,
                    }
                )
                if video and i == 0:
                    prompt_video = prompt_episode.frames(prompt_source.camera)
                    label = f"prompt: {prompt_source.camera} ep {prompt_episode.record.episode_index}"
                    write_side_by_side(
                        out_dir / f"rollout_{task}.mp4",
                        side_by_side(prompt_video, np.stack(outcome.frames), label, outcome.labels),
                    )
                bar.update(1)
            if probe is not None:
                probe.close()
        successes = sum(e["success"] for e in episodes)
        results[task] = {
            "success_rate": successes / episodes_per_task,
            "successes": successes,
            "episodes": episodes_per_task,
            "ci95": wilson_interval(successes, episodes_per_task),
            "mean_steps": float(np.mean([e["steps"] for e in episodes])),
            "per_episode": episodes,
        }
        bar.set_postfix({task: f"{successes}/{episodes_per_task}"}, refresh=False)
    bar.close()
    total = sum(r["successes"] for r in results.values())
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
        "mean_success_rate": float(np.mean([r["success_rate"] for r in results.values()])),
        # Equal episodes per task: the pooled rate is the mean rate, and its Wilson interval the mean's.
        "mean_ci95": wilson_interval(total, episodes_per_task * len(tasks)),
        "prompt_swap": prompt_swap_matrix(results) if prompt_swap else {},
    }
    atomic_write_json(out_dir / "results.json", summary)
    atomic_write_text(out_dir / "results.md", closed_loop_markdown(summary))
    return summary


def prompt_swap_matrix(results: dict[str, dict]) -> dict[str, dict]:
    """Per opposite pair evaluated together: for each prompt task, how often each task was done first.

    ``{"drawer-open-v3|drawer-close-v3": {prompt: {"drawer-open-v3": {...}, "drawer-close-v3": {...},
    "neither": {...}}}}``, each cell ``{"count", "rate", "ci95"}``; ``prompt_following`` is the diagonal's
    pooled rate with its Wilson interval.
    """
    matrix: dict[str, dict] = {}
    for task in results:
        partner = OPPOSITE_TASK.get(task)
        if partner not in results or f"{partner}|{task}" in matrix:
            continue
        pair = (task, partner)
        rows = {}
        for prompt in pair:
            firsts = [e["first_done"] for e in results[prompt]["per_episode"]]
            n = len(firsts)
            rows[prompt] = {
                column: {"count": k, "rate": k / n, "ci95": wilson_interval(k, n)}
                for column, k in [(t, firsts.count(t)) for t in pair] + [("neither", firsts.count(None))]
            }
        followed = sum(rows[p][p]["count"] for p in pair)
        trials = sum(results[p]["episodes"] for p in pair)
        matrix["|".join(pair)] = {
            "prompts": rows,
            "prompt_following": followed / trials,
            "prompt_following_ci95": wilson_interval(followed, trials),
        }
    return matrix


def prompt_swap_markdown(matrix: dict[str, dict]) -> str:
    """One table per pair: rows are prompts, columns the task done first (95% Wilson intervals)."""
    if not matrix:
        return ""
    lines = ["## Prompt swap: which task was done first", ""]
    for key, entry in matrix.items():
        pair = key.split("|")
        lines += [
            f"| prompt | did {pair[0]} | did {pair[1]} | neither |",
            "|---|---|---|---|",
        ]
        for prompt, row in entry["prompts"].items():
            cells = [_rate_cell(row[column]) for column in (*pair, "neither")]
            lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
        low, high = entry["prompt_following_ci95"]
        lines += ["", f"Prompt followed: {entry['prompt_following']:.1%} [{low:.1%}, {high:.1%}]", ""]
    return "\n".join(lines)


def _rate_cell(cell: dict) -> str:
    low, high = cell["ci95"]
    return f"{cell['rate']:.0%} [{low:.0%}, {high:.0%}]"


def closed_loop_markdown(summary: dict) -> str:
    """A markdown table of per-task and mean success with 95% Wilson intervals."""
    coeff = summary.get("temporal_ensemble_coeff")
    blending = "" if coeff is None else f"; overlapping action chunks blended (coefficient {coeff})"
    lines = [
        f"# Closed-loop success: {summary['policy']}",
        "",
        f"Prompts: `{summary['prompt_camera']}` camera, `{summary['prompt_split']}` episodes of "
        f"`{summary['prompt_dataset']}`; {summary['episodes_per_task']} episodes per task, seed {summary['seed']}, "
        f"max {summary['max_steps']} steps{blending}.",
        "",
        "| task | success | 95% CI | successes | mean steps |",
        "|---|---|---|---|---|",
    ]
    for task, r in summary["tasks"].items():
        low, high = r["ci95"]
        lines.append(
            f"| {task} | {r['success_rate']:.1%} | [{low:.1%}, {high:.1%}] | {r['successes']}/{r['episodes']} "
            f"| {r['mean_steps']:.0f} |"
        )
    low, high = summary["mean_ci95"]
    lines.append(f"| **mean** | **{summary['mean_success_rate']:.1%}** | [{low:.1%}, {high:.1%}] | | |")
    swap = prompt_swap_markdown(summary.get("prompt_swap", {}))
    return "\n".join(lines) + "\n" + ("\n" + swap if swap else "")
