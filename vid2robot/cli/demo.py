"""``vid2robot-demo``: a human hand's video says which task to do; the robot does that one, in the same scene.

Two opposite tasks start from one picture (the drawer half open, no goal marker), so nothing in the robot's
view says which to do. A hand demonstrator records prompt videos of each; each shipped policy (Vid2Robot and
the BC-Z baseline, trained on the same data) watches one and drives the simulated Sawyer from its own camera
in fresh layouts. The prompt-swap table says, per prompt, which task the robot did; side-by-side videos show
the hand prompt beside the robot.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vid2robot.cli.errors import report_user_errors
from vid2robot.policy import load_policy

SHIPPED_POLICIES = files("vid2robot") / "assets" / "demo_policies"
SHIPPED_NAMES = ("vid2robot", "bcz")  # folders under SHIPPED_POLICIES, in the order they run
PROMPT_CAMERAS = ("hand", "demonstrator", "robot")


def check_demo_config(cfg: DictConfig) -> None:
    """Every option checked before anything is loaded, recorded or written."""
    from vid2robot.data.episode_format import check_replaceable
    from vid2robot.sim.hand_demonstrator import HAND_POOLS
    from vid2robot.sim.metaworld_env import SHARED_STARTS, check_task

    tasks = list(cfg.tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks: a non-empty list without repeats, got {tasks}")
    for task in tasks:
        check_task(task)
    if cfg.shared_start and (unpaired := [t for t in tasks if t not in SHARED_STARTS]):
        raise ValueError(
            f"shared_start=true needs tasks of opposite pairs ({sorted(SHARED_STARTS)}); got {unpaired}"
        )
    if cfg.prompt_camera not in PROMPT_CAMERAS:
        raise ValueError(f"prompt_camera must be one of {PROMPT_CAMERAS}, got {cfg.prompt_camera!r}")
    if cfg.hand_pool not in HAND_POOLS:
        raise ValueError(f"hand_pool must be one of {sorted(HAND_POOLS)}, got {cfg.hand_pool!r}")
    for key in ("prompt_episodes_per_task", "episodes_per_task", "max_steps"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {cfg[key]!r}")
    if cfg.checkpoint and not Path(cfg.checkpoint).exists():
        raise FileNotFoundError(f"checkpoint={cfg.checkpoint}: no such file or folder")
    check_replaceable(Path(cfg.out_dir) / "prompts", overwrite=True)


def demo_policies(cfg: DictConfig) -> dict[str, Path]:
    """Name -> policy to run: both shipped ones, or the user's ``checkpoint`` alone (as ``policy``)."""
    if cfg.checkpoint:
        return {"policy": Path(cfg.checkpoint)}
    return {name: Path(str(SHIPPED_POLICIES / name)) for name in SHIPPED_NAMES}


def demo(cfg: DictConfig) -> dict[str, dict]:
    """Record the prompts once, run every policy on them; returns each policy's closed-loop summary."""
    from vid2robot.sim.closed_loop import PromptSource, evaluate_closed_loop
    from vid2robot.sim.closed_loop_report import closed_loop_markdown
    from vid2robot.sim.expert_data import DatagenConfig, generate_expert_dataset

    check_demo_config(cfg)
    policies = {name: load_policy(path) for name, path in demo_policies(cfg).items()}
    sizes = {name: policy.config.image_size for name, policy in policies.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the demo's policies must see one image size (prompts are recorded once): {sizes}")
    out_dir = Path(cfg.out_dir)
    cameras = list(dict.fromkeys(["robot", cfg.prompt_camera]))
    print(f"1/2 recording {cfg.prompt_episodes_per_task} {cfg.prompt_camera} prompt video(s) per task ...")
    generate_expert_dataset(
        DatagenConfig(
            out_dir=str(out_dir / "prompts"),
            tasks=list(cfg.tasks),
            episodes_per_task=cfg.prompt_episodes_per_task,
            val_episodes_per_task=0,  # all prompts; none of these layouts was in the policies' training data
            seed=cfg.seed,
            image_size=next(iter(sizes.values())),
            cameras=cameras,
            hide_goal=cfg.hide_goal,
            shared_start=cfg.shared_start,
            hand_pool=cfg.hand_pool,
            workers=cfg.workers,
            overwrite=True,  # the previous demo's prompts (a dataset: checked above); prompt layouts follow seed
            progress=False,
        )
    )
    summaries = {}
    for name, policy in policies.items():
        print(f"2/2 {name} ({type(policy).__name__}): {cfg.episodes_per_task} episode(s) per task ...")
        summaries[name] = evaluate_closed_loop(
            policy,
            list(cfg.tasks),
            PromptSource(out_dir / "prompts", camera=cfg.prompt_camera, split="train"),
            episodes_per_task=cfg.episodes_per_task,
            seed=cfg.seed,
            out_dir=out_dir / name,
            max_steps=cfg.max_steps,
        )
        print(closed_loop_markdown(summaries[name]))
        for task in cfg.tasks:
            print(f"video: {out_dir / name / f'rollout_{task}.mp4'} (prompt | robot)")
    if len(summaries) > 1:
        print(_comparison(summaries))
    return summaries


def _comparison(summaries: dict[str, dict]) -> str:
    """One line per policy: how often the robot did the prompt's task first, over every pair."""
    lines = ["## Prompt followed, per policy", ""]
    for name, summary in summaries.items():
        for pair, entry in summary["prompt_swap"].items():
            low, high = entry["prompt_following_ci95"]
            lines.append(
                f"- {name}, {pair.replace('|', ' / ')}: {entry['prompt_following']:.1%} [{low:.1%}, {high:.1%}]"
            )
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    with report_user_errors("vid2robot-demo"):
        demo(cfg)


if __name__ == "__main__":
    main()
