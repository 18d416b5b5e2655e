"""``vid2robot-eval``: offline video-prompt evaluation and closed-loop Meta-World evaluation of a checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from vid2robot.cli.errors import report_user_errors
from vid2robot.conf.schemas import alignment_frames
from vid2robot.data.paired_dataset import PairedVideoDataset
from vid2robot.policy import DeployablePolicy, load_policy

log = logging.getLogger(__name__)
MODES = ("offline", "closed_loop")


def run_offline(policy: DeployablePolicy, cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from vid2robot.evaluation.offline import evaluate_offline
    from vid2robot.evaluation.report import offline_markdown, write_offline_report

    c = policy.config
    # The robot video the retrieval metric embeds: what training aligned the prompt with (the robot's episode
    # while an alignment loss is on, else the state window), unless robot_trajectory_frames says otherwise.
    trajectory = cfg.offline.get("robot_trajectory_frames")
    if trajectory is None:
        weights = getattr(c, "loss_weights", {})
        trajectory = alignment_frames(c.prompt_frames, weights.get("tcc", 0.0), weights.get("vvcl", 0.0))
    dataset = PairedVideoDataset.for_policy(
        c,
        cfg.data_root,
        split=cfg.split,
        prompt_camera=cfg.prompt_camera,
        robot_camera=cfg.robot_camera,
        augment=False,
        robot_trajectory_frames=trajectory,
    )
    results = evaluate_offline(
        policy, dataset, cfg.offline.batch_size, cfg.offline.max_items, cfg.offline.num_workers
    )
    paths = write_offline_report(results, out_dir)
    log.info("\n%s", offline_markdown(results))
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return results.to_dict()


def run_closed_loop(policy: DeployablePolicy, cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from vid2robot.sim.closed_loop import PromptSource, evaluate_closed_loop
    from vid2robot.sim.closed_loop_report import closed_loop_markdown

    source = PromptSource(cfg.data_root, camera=cfg.prompt_camera, split=cfg.split)
    policy.set_temporal_ensembling(cfg.closed_loop.temporal_ensemble_coeff)
    tasks = list(cfg.closed_loop.tasks or source.dataset.tasks)
    summary = evaluate_closed_loop(
        policy,
        tasks,
        source,
        episodes_per_task=cfg.closed_loop.episodes_per_task,
        seed=cfg.closed_loop.seed,
        out_dir=out_dir,
        video=cfg.closed_loop.video,
        max_steps=cfg.closed_loop.max_steps,
        prompt_swap=cfg.closed_loop.prompt_swap,
    )
    log.info("\n%s", closed_loop_markdown(summary))
    return summary


def evaluate(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    policy = load_policy(cfg.checkpoint, map_location=str(cfg.device))
    runner = run_offline if cfg.mode == "offline" else run_closed_loop
    return runner(policy, cfg, out_dir)


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with report_user_errors("vid2robot-eval"):
        evaluate(cfg, Path(cfg.out_dir))


if __name__ == "__main__":
    main()
