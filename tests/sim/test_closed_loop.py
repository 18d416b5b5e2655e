"""Closed-loop evaluator: success wiring (expert succeeds, zero policy fails), outputs and errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_fixtures import small_config

from vid2robot.data.video_io import read_frames
from vid2robot.sim.closed_loop import PromptSource, evaluate_closed_loop
from vid2robot.sim.closed_loop_report import wilson_interval
from vid2robot.sim.expert_data import generate_expert_dataset
from vid2robot.sim.expert_policy import ExpertPolicy
from vid2robot.sim.rollout_video import LABEL_HEIGHT


class ZeroPolicy:
    """Keeps still; records what it was given to check the interface's tensor contract."""

    def __init__(self) -> None:
        self.prompts: list[torch.Tensor] = []
        self.frames = 0

    def set_prompt(self, video: torch.Tensor) -> None:
        self.prompts.append(video)

    def reset(self) -> None:
        self.frames = 0

    def select_action(self, frame: torch.Tensor) -> torch.Tensor:
        assert frame.shape == (3, 32, 32) and frame.dtype == torch.float32
        self.frames += 1
        return torch.zeros(4)


def test_expert_succeeds_through_the_evaluator(expert_dataset: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = expert_dataset
    results = evaluate_closed_loop(
        ExpertPolicy(), ["reach-v3"], PromptSource(root, camera="demonstrator"), episodes_per_task=2, seed=0,
        out_dir=tmp_path, image_size=32, progress=False,
    )  # fmt: skip
    reach = results["tasks"]["reach-v3"]
    assert reach["successes"] == 2 and results["mean_success_rate"] == 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["tasks"]["reach-v3"]["per_episode"][0]["prompt_episode"] == 2  # the held-out episode
    assert "| reach-v3 | 100.0% |" in (tmp_path / "results.md").read_text()
    video = read_frames(tmp_path / "rollout_reach-v3.mp4")
    prompt_length = len(read_frames(root / "videos/demonstrator/chunk-000/episode_000002.mp4"))
    rollout_length = reach["per_episode"][0]["steps"] + 1
    assert video.shape == (max(prompt_length, rollout_length), LABEL_HEIGHT + 192, 384, 3)


def test_zero_policy_fails_and_gets_prompt_tensors(expert_dataset: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = expert_dataset
    policy = ZeroPolicy()
    results = evaluate_closed_loop(
        policy, ["button-press-topdown-v3"], PromptSource(root, camera="robot"), episodes_per_task=2, seed=1,
        out_dir=tmp_path, video=False, max_steps=15, image_size=32, prompt_frames=4, progress=False,
    )  # fmt: skip
    task = results["tasks"]["button-press-topdown-v3"]
    assert task["successes"] == 0 and task["mean_steps"] == 15 and policy.frames == 15
    assert task["ci95"][0] == 0.0 and task["ci95"][1] == pytest.approx(0.658, abs=1e-3)
    assert [p.shape for p in policy.prompts] == [(4, 3, 32, 32)] * 2
    assert not list(tmp_path.glob("*.mp4"))


def test_bad_inputs(expert_dataset: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = expert_dataset
    with pytest.raises(ValueError, match="prompt camera 'wrist'"):
        PromptSource(root, camera="wrist")
    with pytest.raises(ValueError, match=r"task 'push-v3' has no episodes"):
        evaluate_closed_loop(ZeroPolicy(), ["push-v3"], PromptSource(root), 1, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="no successful 'test' episodes of 'reach-v3'"):
        evaluate_closed_loop(ZeroPolicy(), ["reach-v3"], PromptSource(root, split="test"), 1, 0, tmp_path)
    with pytest.raises(ValueError, match="unknown Meta-World task 'reach'"):
        evaluate_closed_loop(ZeroPolicy(), ["reach"], PromptSource(root), 1, 0, tmp_path)

    class BadPolicy(ZeroPolicy):
        def select_action(self, frame: torch.Tensor) -> np.ndarray:
            return np.zeros(3)

    with pytest.raises(ValueError, match="must return 4 finite values"):
        evaluate_closed_loop(
            BadPolicy(), ["reach-v3"], PromptSource(root), 1, 0, tmp_path, image_size=32, progress=False
        )


def test_wilson_interval() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    with pytest.raises(ValueError, match="trials must be > 0"):
        wilson_interval(0, 0)


def test_evaluation_builds_the_scenes_the_prompt_data_recorded(tmp_path: Path) -> None:
    pair = ["drawer-open-v3", "drawer-close-v3"]
    config = small_config(
        tmp_path / "data", tasks=pair, episodes_per_task=2, hide_goal=True, shared_start=True
    )
    generate_expert_dataset(config)
    info = json.loads((tmp_path / "data" / "meta" / "info.json").read_text())
    assert info["extra"]["scene"] == {"hide_goal": True, "shared_start": True}
    results = evaluate_closed_loop(
        ExpertPolicy(), pair, PromptSource(tmp_path / "data", camera="robot"), episodes_per_task=1, seed=0,
        out_dir=tmp_path / "eval", image_size=32, video=False, progress=False,
    )  # fmt: skip
    assert results["scene"] == {"hide_goal": True, "shared_start": True}
    assert results["mean_success_rate"] == 1.0
    with pytest.raises(ValueError, match=r"shared_start needs tasks of opposite pairs .*\['reach-v3'\]"):
        small_config(tmp_path / "x", tasks=["reach-v3", "drawer-open-v3"], shared_start=True)


class OppositeExpert(ExpertPolicy):
    """Ignores the prompt and does the scene's *other* task (the pair's opposite expert on this env's state)."""

    def bind_env(self, env) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        from vid2robot.sim.metaworld_env import OPPOSITE_TASK

        super().bind_env(env)
        self.opposite = ENV_POLICY_MAP[OPPOSITE_TASK[env.task_name]]()

    def select_action(self, frame: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Constant(s) may be too high": clipped below
            action = self.opposite.get_action(self.env._raw_obs)
        return torch.from_numpy(np.clip(np.asarray(action, np.float32), -1.0, 1.0))


@pytest.mark.slow
def test_prompt_swap_matrix_tells_which_task_was_done(tmp_path: Path) -> None:
    """The expert lands on the diagonal; the opposite task's expert, run in each scene, off it (the probe
    watches the pair's other task); without prompt_swap no matrix is built."""
    pair = ["drawer-open-v3", "drawer-close-v3"]
    generate_expert_dataset(
        small_config(tmp_path / "data", tasks=pair, episodes_per_task=2, hide_goal=True, shared_start=True)
    )
    source = PromptSource(tmp_path / "data", camera="robot")
    options = dict(episodes_per_task=2, seed=0, image_size=32, video=False, progress=False, max_steps=150)
    own = evaluate_closed_loop(ExpertPolicy(), pair, source, out_dir=tmp_path / "own", **options)
    other = evaluate_closed_loop(OppositeExpert(), pair, source, out_dir=tmp_path / "other", **options)
    key = "drawer-open-v3|drawer-close-v3"
    assert own["prompt_swap"][key]["prompt_following"] == 1.0
    assert other["prompt_swap"][key]["prompt_following"] == 0.0
    for prompt in pair:
        done = other["prompt_swap"][key]["prompts"][prompt]
        opposite = next(t for t in pair if t != prompt)
        assert done[opposite]["count"] == 2 and done[prompt]["count"] == 0
        assert own["prompt_swap"][key]["prompts"][prompt][prompt]["count"] == 2
    assert other["mean_success_rate"] == 0.0  # the drawer went the other way every time
    markdown = (tmp_path / "other" / "results.md").read_text()
    assert "| drawer-open-v3 | 0% [0%, 66%] | 100% [34%, 100%] | 0% [0%, 66%] |" in markdown
    alone = evaluate_closed_loop(
        ExpertPolicy(), pair, source, out_dir=tmp_path / "off", prompt_swap=False, **options
    )
    assert alone["prompt_swap"] == {} and alone["tasks"]["drawer-open-v3"]["per_episode"][0]["first_done"]
