"""Structured (dataclass) schemas for Hydra: policy configs are type-checked when the config is composed;
and the resolvers the task configs use.

Every registered policy class (``vid2robot.policy.registry``) has a schema of its config under its own name,
and its config's presets as ``<class>_<preset>``. A task YAML pulls one in through its defaults list, e.g.
``- /schema/policy@module.policy_config: BCZPolicy`` beside ``module.policy_class: BCZPolicy`` (the training CLI
refuses a pair that disagree); a wrong type (``module.policy_config.image_size=big``) or an unknown key then
fails at start-up with Hydra's message naming the key, before any data is touched.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from vid2robot.policy import policy_classes


def alignment_frames(frames: int, tcc_weight: float, vvcl_weight: float) -> int:
    """Robot-trajectory frames to load: ``frames`` while an alignment loss (TCC, VVCL) is on, else none."""
    return frames if tcc_weight > 0 or vvcl_weight > 0 else 0


def register_configs() -> None:
    """Schemas into Hydra's ConfigStore and resolvers into OmegaConf (idempotent)."""
    OmegaConf.register_new_resolver("alignment_frames", alignment_frames, replace=True)
    store = ConfigStore.instance()
    for name, cls in policy_classes().items():
        store.store(group="schema/policy", name=name, node=cls.config_class)
        for preset in getattr(cls.config_class, "PRESETS", ()):
            store.store(
                group="schema/policy", name=f"{name}_{preset}", node=getattr(cls.config_class, preset)()
            )
