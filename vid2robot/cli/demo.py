"""``vid2robot-demo``: prompt videos in, the Meta-World robot acting, success and side-by-side videos out."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vid2robot.policy import load_policy

SHIPPED_POLICY = files("vid2robot") / "assets" / "demo_policy"


def demo(cfg: DictConfig) -> dict:
    from vid2robot.sim.closed_loop import PromptSource, evaluate_closed_loop, results_markdown
    from vid2robot.sim.expert_data import DatagenConfig, generate_expert_dataset

    checkpoint = Path(cfg.checkpoint) if cfg.checkpoint else Path(str(SHIPPED_POLICY))
    policy = load_policy(checkpoint)
    out_dir = Path(cfg.out_dir)
    prompts = out_dir / "prompts"
    if prompts.exists():
        shutil.rmtree(prompts)  # regenerate: prompt layouts follow cfg.seed
    print(f"1/2 recording {cfg.prompt_episodes_per_task} demonstrator prompt video(s) per task ...")
    generate_expert_dataset(
        DatagenConfig(
            out_dir=str(prompts),
            tasks=list(cfg.tasks),
            episodes_per_task=cfg.prompt_episodes_per_task,
            val_episodes_per_task=0,  # all prompts; none of these layouts was in the policy's training data
            seed=cfg.seed,
            image_size=96,
            workers=cfg.workers,
        )
    )
    print(f"2/2 {type(policy).__name__} from {checkpoint}: {cfg.episodes_per_task} episode(s) per task ...")
    summary = evaluate_closed_loop(
        policy,
        list(cfg.tasks),
        PromptSource(prompts, camera=cfg.prompt_camera, split="train"),
        episodes_per_task=cfg.episodes_per_task,
        seed=cfg.seed,
        out_dir=out_dir,
        max_steps=cfg.max_steps,
    )
    print(results_markdown(summary))
    for task in cfg.tasks:
        print(f"video: {out_dir / f'rollout_{task}.mp4'}")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    demo(cfg)


if __name__ == "__main__":
    main()
