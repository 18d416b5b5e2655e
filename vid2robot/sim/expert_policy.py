"""The scripted Meta-World expert behind the policy deployment interface (docs/architecture.md).

It ignores the prompt and the frames and reads the simulator state, so it is no vision policy: it is the
upper bound of closed-loop success and the check that the evaluator's success wiring works.
"""

from __future__ import annotations

import torch

from vid2robot.sim.metaworld_env import MetaWorldEnv


class ExpertPolicy:
    """``set_prompt`` / ``reset`` / ``select_action`` over ``MetaWorldEnv.expert_action``.

    The evaluator hands each task's environment over through ``bind_env`` (the hook for any policy that
    reads simulator state).
    """

    def __init__(self) -> None:
        self.env: MetaWorldEnv | None = None

    def bind_env(self, env: MetaWorldEnv) -> None:
        self.env = env

    def set_prompt(self, video: torch.Tensor) -> None:
        """The expert knows its task from the environment; the prompt is not used."""

    def reset(self) -> None:
        """The expert is memoryless."""

    def select_action(self, frame: torch.Tensor) -> torch.Tensor:
        if self.env is None:
            raise RuntimeError(
                "ExpertPolicy needs bind_env(env) before select_action (the evaluator does this)"
            )
        return torch.from_numpy(self.env.expert_action())
