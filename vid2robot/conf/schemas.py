"""Structured (dataclass) schemas for Hydra: policy configs are type-checked when the config is composed;
and the resolvers the task configs use.

A task YAML pulls a schema in through its defaults list, e.g. ``- /schema/policy@module.policy_config:
vid2robot``; a wrong type (``module.policy_config.image_size=big``) or an unknown key then fails at start-up
with Hydra's message naming the key, before any data is touched.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from vid2robot.policy import BCZConfig, TaskIdConfig, Vid2RobotConfig


def alignment_frames(frames: int, tcc_weight: float, vvcl_weight: float) -> int:
    """Robot-trajectory frames to load: ``frames`` while an alignment loss (TCC, VVCL) is on, else none."""
    return frames if tcc_weight > 0 or vvcl_weight > 0 else 0


def register_configs() -> None:
    """Schemas into Hydra's ConfigStore and resolvers into OmegaConf (idempotent)."""
    OmegaConf.register_new_resolver("alignment_frames", alignment_frames, replace=True)
    store = ConfigStore.instance()
    store.store(group="schema/policy", name="vid2robot", node=Vid2RobotConfig)
    store.store(group="schema/policy", name="vid2robot_paper", node=Vid2RobotConfig.paper())
    store.store(group="schema/policy", name="bcz", node=BCZConfig)
    store.store(group="schema/policy", name="task_id", node=TaskIdConfig)
