"""The hand demonstrator: physics untouched, a hand where the gripper is, seeded variation, disjoint pools."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from sim_fixtures import small_config

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.sim.expert_data import HAND_APPEARANCES_FILE, generate_expert_dataset
from vid2robot.sim.hand_demonstrator import (
    HAND_POOLS,
    SKIN_TONES,
    HandAppearance,
    pace_indices,
    sample_appearance,
)
from vid2robot.sim.metaworld_env import MetaWorldEnv

SAWYER_RED = np.array([128, 26, 26])  # the Sawyer's links as the robot camera draws them, roughly


def _near(frame: np.ndarray, colour: np.ndarray, tolerance: float = 40.0) -> int:
    return int((np.abs(frame.astype(float) - colour).max(axis=-1) < tolerance).sum())


def test_physics_is_identical_with_and_without_the_hand_view() -> None:
    """The hand lives in a render-only model: 150 expert steps give bit-identical states and actions."""
    runs = []
    for cameras in (("robot",), ("robot", "hand")):
        with MetaWorldEnv("drawer-open-v3", image_size=32, cameras=cameras, shared_start=True) as env:
            if "hand" in cameras:
                env.hand_appearance = sample_appearance(np.random.default_rng(5))
            obs = env.reset(17)
            states, actions = [obs.state], []
            for _ in range(150):
                actions.append(env.expert_action())
                obs, _, _ = env.step(actions[-1])
                states.append(obs.state)
            runs.append((np.stack(states), np.stack(actions), env._env.model.nq, env._env.model.nmocap))
    (states_a, actions_a, nq_a, mocap_a), (states_b, actions_b, nq_b, mocap_b) = runs
    np.testing.assert_array_equal(states_a, states_b)
    np.testing.assert_array_equal(actions_a, actions_b)
    assert (nq_a, mocap_a) == (nq_b, mocap_b)


def test_the_hand_replaces_the_robot_and_follows_the_gripper() -> None:
    appearance = HandAppearance.canonical()
    skin = np.array(SKIN_TONES[appearance.skin_tone]) * 255
    with MetaWorldEnv("drawer-open-v3", image_size=64, cameras=("robot", "hand"), hide_goal=True) as env:
        obs = env.reset(3)
        robot, hand = obs.frames["robot"], obs.frames["hand"]
        assert _near(robot, SAWYER_RED) > 100 and _near(hand, SAWYER_RED) == 0  # no Sawyer in the hand view
        assert _near(hand, skin) > 30  # a skin-coloured hand and forearm
        before = hand
        for _ in range(40):
            obs, _, _ = env.step(np.array([0.0, 0.0, 1.0, 0.0]))  # the gripper rises: so does the hand
        assert np.abs(obs.frames["hand"].astype(int) - before).sum() > 0
        # Fingers curl as the gripper closes (the render model's finger joints follow the claws).
        addresses, _ = env._hand._finger_qpos
        env.render("hand")
        open_curl = np.abs(env._hand.data.qpos[addresses])
        for _ in range(20):
            env.step(np.array([0.0, 0.0, 0.0, 1.0]))
        env.render("hand")
        closed_curl = np.abs(env._hand.data.qpos[addresses])
        assert (closed_curl >= open_curl).all() and closed_curl.sum() > open_curl.sum() + 1.0


def test_appearances_are_seeded_and_pools_are_disjoint() -> None:
    assert sample_appearance(np.random.default_rng(1)) == sample_appearance(np.random.default_rng(1))
    assert sample_appearance(np.random.default_rng(1)) != sample_appearance(np.random.default_rng(2))
    seen, held_out = HAND_POOLS["seen"], HAND_POOLS["held_out"]
    assert not set(seen.skin_tones) & set(held_out.skin_tones)

    def in_bands(azimuth: float, bands: tuple[tuple[float, float], ...]) -> bool:
        return any(low <= azimuth <= high for low, high in bands)

    rng = np.random.default_rng(0)
    for _ in range(500):
        a = sample_appearance(rng, "seen")
        assert a.skin_tone in seen.skin_tones and not in_bands(a.viewpoint.azimuth, held_out.azimuth)
        b = sample_appearance(rng, "held_out")
        assert b.skin_tone in held_out.skin_tones and not in_bands(b.viewpoint.azimuth, seen.azimuth)
    with pytest.raises(ValueError, match="hand pool must be one of"):
        sample_appearance(rng, "train")


def test_pace_keeps_one_frame_per_step_and_runs_forward() -> None:
    rng = np.random.default_rng(3)
    for length in (1, 2, 37, 180):
        for _ in range(20):
            indices = pace_indices(length, sample_appearance(rng))
            assert indices.shape == (length,) and indices[0] == 0 and indices[-1] == length - 1
            assert (np.diff(indices) >= 0).all()
    waiting = dataclasses.replace(HandAppearance.canonical(), pace_start=0.2, pace_fraction=0.5)
    indices = pace_indices(100, waiting)
    assert (indices[:20] == 0).all() and (indices[71:] == 99).all()  # waits, moves, then holds


@pytest.mark.slow
def test_datagen_records_hand_looks_and_pools_show_the_same_episodes(tmp_path: Path) -> None:
    """Seen and held-out datasets from one seed hold the same episodes in different looks; each look is
    recorded, and a held-out-pool dataset is refused as training data."""
    from vid2robot.training.policy_datamodule import PolicyDataModule

    roots = {}
    for pool in ("seen", "held_out"):
        roots[pool] = tmp_path / pool
        generate_expert_dataset(
            small_config(
                roots[pool],
                tasks=["drawer-open-v3"],
                cameras=["robot", "hand"],
                hand_pool=pool,
                episodes_per_task=2,
                val_episodes_per_task=1,
            )
        )
    seen, held_out = EpisodeDataset(roots["seen"]), EpisodeDataset(roots["held_out"])
    assert seen.info.extra["hand"] == {"pool": "seen", "variation": True}
    assert held_out.info.extra["hand"]["pool"] == "held_out"
    for index in range(len(seen)):
        a, b = seen.episode(index), held_out.episode(index)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.frames("robot"), b.frames("robot"))
        assert not np.array_equal(a.frames("hand"), b.frames("hand"))
    looks = {p: json.loads((roots[p] / "meta" / HAND_APPEARANCES_FILE).read_text()) for p in roots}
    assert sorted(looks["seen"]) == ["0", "1"]
    assert {v["skin_tone"] for v in looks["seen"].values()} <= set(HAND_POOLS["seen"].skin_tones)
    assert {v["pool"] for v in looks["held_out"].values()} == {"held_out"}
    module = PolicyDataModule(str(roots["held_out"]), image_size=32, prompt_camera="hand", num_workers=0)
    with pytest.raises(ValueError, match="held-out hand looks"):
        module.setup("fit")
