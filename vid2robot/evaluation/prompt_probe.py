"""Does a policy's prompt encoder see the task in a demonstrator's video? A probe without a simulator.

Every successful episode of a dataset split becomes a prompt (frames sampled as the closed-loop evaluator does)
and is encoded by ``policy.encode_prompt``; the encodings (flattened, unit length) of *probe* prompts, e.g. human
hand videos, are compared with the per-task mean encoding of *reference* prompts, e.g. the robot's own videos:

- ``task_accuracy``: the nearest reference task (cosine) is the probe's task (chance: 1 / tasks).
- ``opposite_accuracy``: for tasks with an opposite in ``OPPOSITE_TASK`` (drawer open/close, ...), the own task's
  reference mean is nearer than the opposite task's (chance: 0.5). In the shared-start scenes the picture does not
  tell these tasks apart, so this is the part of the task only the prompt can give.

A policy whose decoder follows robot prompts but whose encoder puts a hand prompt no nearer its own task than the
opposite one cannot follow hand prompts, whatever its decoder does.

``python -m vid2robot.evaluation.prompt_probe CHECKPOINT --probe DATA:CAMERA --reference DATA:CAMERA``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.policy import DeployablePolicy, load_policy
from vid2robot.policy.frame_sampling import sample_prompt_frames
from vid2robot.policy.preprocess import frames_to_tensor
from vid2robot.sim.metaworld_env import OPPOSITE_TASK


@dataclass
class PromptEncodings:
    vectors: np.ndarray  # [N, F], unit length
    tasks: np.ndarray  # [N] task names

    def task_means(self) -> dict[str, np.ndarray]:
        """Each task's mean encoding, unit length (so a dot product with an encoding is a cosine)."""
        means = {task: self.vectors[self.tasks == task].mean(0) for task in np.unique(self.tasks)}
        return {task: mean / max(float(np.linalg.norm(mean)), 1e-12) for task, mean in means.items()}


@torch.no_grad()
def encode_prompts(
    policy: DeployablePolicy, dataset: EpisodeDataset, camera: str, split: str = "train"
) -> PromptEncodings:
    """One encoding per successful ``split`` episode of ``dataset``, seen by ``camera``."""
    if camera not in dataset.info.cameras:
        raise ValueError(f"camera {camera!r} is not in {dataset.root}; it has {list(dataset.info.cameras)}")
    if policy.prompt_kind != "video":
        raise ValueError(
            f"{type(policy).__name__} is not prompted by video; there is no prompt encoder to probe"
        )
    config = policy.config
    vectors, tasks = [], []
    for task in dataset.tasks:
        for index in dataset.select(split=split, task=task, success=True):
            episode = dataset.episode(index)
            frames = episode.frames(camera, sample_prompt_frames(episode.length, config.prompt_frames))
            video = frames_to_tensor(frames, config.image_size).unsqueeze(0).to(policy.device)
            vectors.append(policy.encode_prompt(video).reshape(-1).float().cpu().numpy())
            tasks.append(task)
    if not vectors:
        raise ValueError(f"no successful {split!r} episodes in {dataset.root} to encode")
    stacked = np.stack(vectors)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    return PromptEncodings(stacked / np.maximum(norms, 1e-12), np.array(tasks))


def task_accuracy(reference: PromptEncodings, probe: PromptEncodings) -> float:
    """Share of probe prompts whose nearest reference task mean (cosine) is strictly their own task's."""
    means = reference.task_means()
    names = list(means)
    similarity = probe.vectors @ np.stack([means[name] for name in names]).T  # [N, tasks]
    own = np.array([names.index(task) if task in means else -1 for task in probe.tasks])
    if (own < 0).any():
        raise ValueError(f"probe tasks {sorted(set(probe.tasks) - set(names))} have no reference prompts")
    best = similarity.max(1)
    own_score = similarity[np.arange(len(own)), own]
    unique_best = (similarity == best[:, None]).sum(1) == 1
    return float(np.mean((own_score == best) & unique_best))


def opposite_accuracy(reference: PromptEncodings, probe: PromptEncodings) -> float | None:
    """Share of probe prompts (of tasks with an opposite among the reference tasks) strictly nearer their own
    task's reference mean than the opposite task's; None when no probe task has one."""
    means = reference.task_means()
    wins = [
        float(vector @ means[task]) > float(vector @ means[OPPOSITE_TASK[task]])
        for vector, task in zip(probe.vectors, probe.tasks, strict=True)
        if task in means and OPPOSITE_TASK.get(task) in means
    ]
    return float(np.mean(wins)) if wins else None


def _source(text: str) -> tuple[EpisodeDataset, str]:
    root, sep, camera = text.rpartition(":")
    if not sep or not root or not camera:
        raise argparse.ArgumentTypeError(
            f"expected DATA:CAMERA (e.g. data/hand_prompts_heldout:hand), got {text!r}"
        )
    if not (Path(root) / "meta" / "info.json").is_file():
        raise argparse.ArgumentTypeError(f"{root} is not an episode dataset (no meta/info.json)")
    return EpisodeDataset(root), camera


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a policy checkpoint (save_policy folder or Lightning .ckpt)")
    parser.add_argument("--probe", type=_source, required=True, metavar="DATA:CAMERA", help="prompts to test")
    parser.add_argument("--reference", type=_source, required=True, metavar="DATA:CAMERA", help="task means")
    parser.add_argument("--split", default="train", help="the split of both datasets to encode")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    policy = load_policy(args.checkpoint, map_location=args.device)
    reference = encode_prompts(policy, *args.reference, split=args.split)
    probe = encode_prompts(policy, *args.probe, split=args.split)
    opposite = opposite_accuracy(reference, probe)
    print(
        f"{args.checkpoint}: {len(probe.tasks)} probe prompts; task accuracy {task_accuracy(reference, probe):.3f} "
        f"(chance {1 / len(reference.task_means()):.3f}); opposite-task accuracy "
        + ("n/a" if opposite is None else f"{opposite:.3f} (chance 0.500)")
    )


if __name__ == "__main__":
    main()
