"""Tiny configs shared by the policy tests (the suite runs on 2 shared CPU cores)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from vid2robot.policy import BCZConfig, TaskIdConfig, Vid2RobotConfig

TINY = dict(
    image_size=32,
    prompt_frames=4,
    state_frames=3,
    d_model=32,
    num_heads=2,
    prompt_latents=4,
    state_latents=2,
    embed_dim=16,
    action_bins=32,
)


@pytest.fixture(autouse=True)
def _single_thread_and_seed() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def tiny_config() -> Callable[..., Vid2RobotConfig]:
    return lambda **overrides: Vid2RobotConfig(**{**TINY, **overrides})


@pytest.fixture
def tiny_task_config() -> Callable[..., TaskIdConfig]:
    return lambda **overrides: TaskIdConfig(**{**TINY, "num_tasks": 3, **overrides})


@pytest.fixture
def tiny_bcz_config() -> Callable[..., BCZConfig]:
    values = dict(image_size=32, prompt_frames=4, state_frames=3, action_bins=32, widths=(8, 8, 16, 16))
    return lambda **overrides: BCZConfig(**{**values, "embed_dim": 16, "hidden_dim": 32, **overrides})
