"""Every registered policy gets the same checks: builds from its config, forward shapes, save/load round trip,
and step-by-step select_action equal to the batched chunk prediction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vid2robot.policy import create_policy, load_policy, policy_classes, save_policy

SMALL = dict(image_size=32, prompt_frames=4, state_frames=3, action_bins=32, horizon=2)
# Per class what makes it tiny; a new policy adds its line here and then gets every check below.
TINY = {
    "Vid2RobotPolicy": SMALL | dict(d_model=32, num_heads=2, prompt_latents=4, state_latents=2, embed_dim=16),
    "TaskIdPolicy": SMALL | dict(d_model=32, num_heads=2, prompt_latents=4, state_latents=2, num_tasks=3),
    "BCZPolicy": SMALL | dict(widths=(8, 8, 16, 16), embed_dim=16, hidden_dim=32),
}


def test_every_registered_policy_has_a_tiny_config() -> None:
    assert set(policy_classes()) == set(TINY)


def _prompt(policy, batch: int) -> torch.Tensor:
    if policy.prompt_kind == "task_index":
        return torch.arange(batch) % policy.config.num_tasks
    return torch.rand(batch, policy.config.prompt_frames, 3, 32, 32)


@pytest.mark.parametrize("name", sorted(TINY))
def test_registered_policy_contract(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = create_policy(name, TINY[name]).eval()
    assert type(policy).__name__ == name and type(policy).config_class.from_dict(TINY[name]) == policy.config
    prompt, robot = _prompt(policy, 2), torch.rand(2, 3, 3, 32, 32)
    logits = policy(prompt, robot).action_logits
    assert logits.shape == (2, 2, 4, 32)
    loaded = load_policy(save_policy(policy, tmp_path / name))
    assert type(loaded) is type(policy) and loaded.config == policy.config
    torch.testing.assert_close(loaded(prompt, robot).action_logits, logits)
    # online: one frame at a time, the chunk replayed, equals the batched prediction for that window
    frames = torch.rand(3, 3, 32, 32)
    policy.set_prompt(int(prompt[0]) if policy.prompt_kind == "task_index" else prompt[0])
    policy.reset()
    first = policy.select_action(frames[0])
    expected = policy.predict_action_chunk(prompt[:1], frames[0].expand(3, -1, -1, -1)[None])[0]
    torch.testing.assert_close(first, expected[0])
    torch.testing.assert_close(policy.select_action(frames[1]), expected[1])  # replayed from the chunk
