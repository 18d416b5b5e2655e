"""The whole loop over ROS (sim_robot_node and policy_node in their own processes, lock-step) against the
in-process closed-loop evaluator: same checkpoint, prompt and layouts must give the same actions, step for
step, and the same per-episode success and length."""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from ros_fixtures import wait_for, wait_matched
from std_msgs.msg import Float32MultiArray

from vid2robot.policy import load_policy
from vid2robot.sim.closed_loop import PromptSource, evaluate_closed_loop
from vid2robot.sim.expert_data import DatagenConfig, generate_expert_dataset

TASK, SEED, EPISODES, STEPS, SPEED = "reach-v3", 3, 3, 40, 0.3


class RecordingPolicy:
    """The real policy, recording every action it returns (one list per episode)."""

    def __init__(self, policy) -> None:
        self.policy, self.config, self.episodes = policy, policy.config, []

    def set_prompt(self, video: torch.Tensor) -> None:
        self.policy.set_prompt(video)

    def reset(self) -> None:
        self.policy.reset()
        self.episodes.append([])

    def select_action(self, frame: torch.Tensor) -> torch.Tensor:
        action = self.policy.select_action(frame)
        self.episodes[-1].append(action.numpy().copy())
        return action


@pytest.mark.slow
def test_ros_loop_matches_the_offline_evaluator_step_for_step(
    ros, launch, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    root = tmp_path / "demos"
    generate_expert_dataset(
        DatagenConfig(
            out_dir=str(root), tasks=[TASK], episodes_per_task=2, val_episodes_per_task=1, image_size=32,
            workers=0, stop_after_success=2, progress=False,
        )
    )  # fmt: skip
    source = PromptSource(root, camera="demonstrator")
    [prompt_index] = source.episodes(TASK)  # one held-out prompt: the evaluator uses it for every episode
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, source.dataset.episode(prompt_index).frames("demonstrator"))

    recorder = RecordingPolicy(load_policy(tiny_checkpoint))
    offline = evaluate_closed_loop(
        recorder, [TASK], source, episodes_per_task=EPISODES, seed=SEED, out_dir=tmp_path / "eval",
        video=False, max_steps=STEPS, progress=False,
    )["tasks"][TASK]["per_episode"]  # fmt: skip
    expected = np.concatenate([np.stack(e) for e in recorder.episodes])
    assert len(np.unique(expected, axis=0)) > 3, (
        "precondition: the policy's actions must vary with the frames"
    )

    applied: list[list[float]] = []
    lock = threading.Lock()

    def on_action(msg: Float32MultiArray) -> None:
        with lock:
            applied.append(list(msg.data))

    subscription = ros.create_subscription(Float32MultiArray, "applied_action", on_action, 100)
    # The simulator first: it steps only once the policy is up, so the recorder can match its publisher
    # before the first action (a sample sent before DDS has matched the reader is never delivered to it).
    sim = launch(
        "ros_nodes.sim_robot_node", "sim_robot_node",
        {"task": TASK, "seed": SEED, "num_episodes": EPISODES, "max_episode_steps": STEPS, "image_size": 32,
         "max_linear_speed": SPEED, "command_timeout_s": 5.0},
    )  # fmt: skip
    wait_matched(subscription, sim)
    policy = launch(
        "ros_nodes.policy_node", "policy_node",
        {"checkpoint": str(tiny_checkpoint), "prompt_video": str(prompt), "control_rate_hz": 100.0,
         "image_timeout_s": 2.0, "max_linear_speed": SPEED},
    )  # fmt: skip
    assert sim.proc.wait(180) == 0, sim.log()
    assert policy.alive(), policy.log()
    log = sim.log()
    assert f"{EPISODES} episodes done (0 command timeouts)" in log, log

    episodes = re.findall(r"episode (\d+) \(seed (\d+)\): (success|failure) after (\d+) steps", log)
    ros_episodes = [{"seed": int(s), "success": r == "success", "steps": int(n)} for _, s, r, n in episodes]
    assert ros_episodes == [{k: e[k] for k in ("seed", "success", "steps")} for e in offline]
    with contextlib.suppress(AssertionError):  # a shortfall is reported below, with the count
        wait_for(lambda: len(applied) >= len(expected), 10, "the applied actions")
    with lock:
        got = np.array(applied, np.float32)
    assert got.shape == expected.shape, f"received {len(got)} of {len(expected)} applied actions"
    np.testing.assert_array_equal(got, expected)
