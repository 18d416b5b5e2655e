"""Offline video-prompt evaluation: a trained policy against held-out (prompt video, robot episode) pairs.

Reports, overall and per task: per-dimension bin accuracy and absolute error of the decoded action, and
prompt-to-task retrieval accuracy (each robot clip's embedding against every task's mean prompt embedding,
for policies that embed both videos). No simulator is involved: this is what a lab runs on its own recorded
data, where closed-loop rollouts are not possible.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from vid2robot.data.paired_dataset import PairedVideoDataset
from vid2robot.policy import DeployablePolicy


@dataclass
class AttentionExample:
    """One pair's prompt frames (uint8 ``[Tp, S, S, 3]``) and the state tokens' attention over them."""

    task: str
    prompt_frames: np.ndarray
    attention: np.ndarray


@dataclass
class OfflineResults:
    action_names: list[str]
    per_task: dict[str, dict[str, float | int | list[float]]]
    overall: dict[str, float | int | list[float] | None]
    attention_examples: list[AttentionExample] = field(default_factory=list)
    retrieval_robot_video: str = "state window"  # what the robot embedding of the retrieval metric saw

    def to_dict(self) -> dict:
        return {
            "action_names": self.action_names,
            "overall": self.overall,
            "per_task": self.per_task,
            "retrieval_robot_video": self.retrieval_robot_video,
        }


def _summary(correct: np.ndarray, error: np.ndarray, retrieved: np.ndarray | None) -> dict:
    """correct/error ``[N, A]`` over valid action steps; retrieved ``[M]`` bool or None."""
    return {
        "items": len(correct),
        "bin_accuracy": float(correct.mean()),
        "bin_accuracy_per_dim": correct.mean(0).round(4).tolist(),
        "mae": float(error.mean()),
        "mae_per_dim": error.mean(0).round(4).tolist(),
        "retrieval_accuracy": None if retrieved is None else float(retrieved.mean()),
    }


@torch.no_grad()
def evaluate_offline(
    policy: DeployablePolicy,
    dataset: PairedVideoDataset,
    batch_size: int = 32,
    max_items: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> OfflineResults:
    """Evaluate ``policy`` on every (or an evenly strided ``max_items``) item of ``dataset``."""
    if dataset.augment:
        raise ValueError("evaluate on an un-augmented dataset (PairedVideoDataset(..., augment=False))")
    if dataset.image_size != policy.config.image_size:
        raise ValueError(
            f"dataset frames are {dataset.image_size} px but the policy expects {policy.config.image_size} px"
        )
    items: torch.utils.data.Dataset = dataset
    if max_items is not None and max_items < len(dataset):
        items = Subset(dataset, np.linspace(0, len(dataset) - 1, max_items).round().astype(int).tolist())
    loader = DataLoader(items, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    policy.eval()
    tasks: list[str] = []
    correct, error, prompt_emb, robot_emb = [], [], [], []
    examples: dict[str, AttentionExample] = {}
    for batch in tqdm(loader, desc="offline eval", unit="batch", disable=not progress):
        prompt = policy.prompt_from_batch(batch)
        trajectory = batch.get("robot_trajectory")
        output = policy(
            prompt.to(policy.device),
            batch["robot_video"].to(policy.device),
            robot_trajectory=None if trajectory is None else trajectory.to(policy.device),
        )
        logits = output.action_logits.cpu()
        valid = ~batch["action_is_pad"]  # [B, H]
        targets = policy.encode_actions(batch["actions"])
        correct.append((logits.argmax(-1) == targets)[valid].float().numpy())
        error.append((policy.decode_actions(logits) - batch["actions"]).abs()[valid].numpy())
        # one task label per valid chunk step, so per-task rows line up with `correct`/`error`
        names = [dataset.episodes.episode(int(e)).record.task for e in batch["episode_index"]]
        tasks.extend(t for t, n in zip(names, valid.sum(1).tolist(), strict=True) for _ in range(n))
        if output.prompt_embedding is not None and output.robot_embedding is not None:
            prompt_emb.append(F.normalize(output.prompt_embedding.cpu().float(), dim=-1))
            robot_emb.append(F.normalize(output.robot_embedding.cpu().float(), dim=-1))
        if output.prompt_frame_attention is not None:
            for i, task in enumerate(names):
                if task not in examples:
                    frames = (batch["prompt_video"][i].permute(0, 2, 3, 1) * 255).round().byte().numpy()
                    examples[task] = AttentionExample(
                        task, frames, output.prompt_frame_attention[i].cpu().numpy()
                    )
    correct_all, error_all = np.concatenate(correct), np.concatenate(error)
    step_tasks = np.array(tasks)
    retrieved = _retrieval(dataset, items, prompt_emb, robot_emb)
    item_tasks = np.array([_item_task(dataset, i) for i in _indices(items)])
    per_task = {}
    for task in sorted(set(tasks)):
        rows = step_tasks == task
        per_task[task] = _summary(
            correct_all[rows], error_all[rows], None if retrieved is None else retrieved[item_tasks == task]
        )
    return OfflineResults(
        action_names=list(dataset.episodes.info.action_names),
        per_task=per_task,
        overall=_summary(correct_all, error_all, retrieved),
        attention_examples=list(examples.values()),
        retrieval_robot_video=(
            f"robot episode ({dataset.robot_trajectory_frames} frames)"
            if dataset.robot_trajectory_frames
            else "state window"
        ),
    )


def _item_task(dataset: PairedVideoDataset, index: int) -> str:
    episode_index, _ = dataset.items[index]
    return dataset.episodes.episode(episode_index).record.task


def _indices(items: torch.utils.data.Dataset) -> list[int]:
    return list(items.indices) if isinstance(items, Subset) else list(range(len(items)))


def _retrieval(
    dataset: PairedVideoDataset,
    items: torch.utils.data.Dataset,
    prompt_emb: list[torch.Tensor],
    robot_emb: list[torch.Tensor],
) -> np.ndarray | None:
    """Whether each robot clip's nearest task prototype (mean prompt embedding) is its own task."""
    if not prompt_emb:
        return None
    prompts, robots = torch.cat(prompt_emb), torch.cat(robot_emb)
    labels = np.array([_item_task(dataset, i) for i in _indices(items)])
    names = sorted(set(labels))
    grouped: dict[str, list[int]] = defaultdict(list)
    for row, name in enumerate(labels):
        grouped[name].append(row)
    prototypes = F.normalize(torch.stack([prompts[grouped[name]].mean(0) for name in names]), dim=-1)
    nearest = (robots @ prototypes.T).argmax(1).numpy()
    return np.array(names)[nearest] == labels
