"""Checks of a composed training config that name the key and the fix before anything is built or trained.

Policy configs are typed by their dataclass schemas (``vid2robot/conf/schemas.py``); the ``module``, ``data``
and ``trainer`` nodes are plain keyword arguments of their ``_target_``, so a value of the wrong type
(``module.learning_rate=abc``, ``trainer.max_steps=abc``) would only fail deep inside torch or Lightning.
``check_value_types`` compares each value with the annotation of the target's parameter of that name.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from vid2robot.policy import policy_class

_SCALARS = {int: "an integer", float: "a number", bool: "true or false"}


def check_trainer_config(trainer: DictConfig) -> None:
    """Reject trainer settings Lightning would only refuse at the first optimizer step."""
    strategy, clip = trainer.get("strategy"), trainer.get("gradient_clip_val")
    if isinstance(strategy, str) and strategy.startswith("fsdp") and clip:
        raise ValueError(
            f"trainer.strategy={strategy} cannot clip gradients by norm (Lightning's FSDP precision plugin "
            f"refuses it); add trainer.gradient_clip_val=null (got {clip})"
        )


def _allowed(annotation: Any) -> set[type] | None:
    """The plain types an annotation admits, or None when it admits anything else too (str, containers...)."""
    if annotation in _SCALARS:
        return {annotation, int} if annotation is float else {annotation}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        allowed: set[type] = set()
        for arm in typing.get_args(annotation):
            if arm is type(None):
                allowed.add(type(None))
                continue
            sub = _allowed(arm)
            if sub is None:
                return None
            allowed |= sub
        return allowed
    return None


def _hints(target: Any) -> dict[str, Any]:
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # annotations that cannot be resolved here: nothing to check against
        return {}


def check_value_types(cfg: DictConfig, nodes: tuple[str, ...] = ("module", "data", "trainer")) -> None:
    """Refuse a value whose type the target's parameter cannot take (named as ``node.key``)."""
    for node_name in nodes:
        node = cfg.get(node_name)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        try:
            target = get_object(node._target_)
        except Exception as err:
            raise ValueError(f"{node_name}._target_={node._target_!r} cannot be imported: {err}") from None
        hints = _hints(target)
        for key in node:
            if key.startswith("_") or key not in hints:
                continue
            if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
                continue  # checked where it is defined, or reported as missing by Hydra
            value = node[key]
            if isinstance(value, DictConfig):
                continue
            allowed = _allowed(hints[key])
            if allowed is None or type(value) in allowed:
                continue
            named = [t for t in (float, int, bool) if t in allowed and not (t is int and float in allowed)]
            kinds = " or ".join([_SCALARS[t] for t in named] + (["null"] if type(None) in allowed else []))
            raise ValueError(
                f"{node_name}.{key}={value!r}: expected {kinds} (got {type(value).__name__}); "
                f"e.g. {node_name}.{key}={_example(allowed)}"
            )


def _example(allowed: set[type]) -> str:
    if float in allowed:
        return "3.0e-4"
    if int in allowed:
        return "1000"
    if bool in allowed:
        return "true"
    return "null"


def check_policy_schema(module: DictConfig) -> None:
    """Refuse a ``module.policy_config`` schema of another policy than ``module.policy_class``."""
    if "policy_class" not in module or "policy_config" not in module:
        return
    name = module.policy_class
    expected = policy_class(name, where="module.policy_class: ").config_class
    got = OmegaConf.get_type(module.policy_config)
    if got is not dict and got is not expected:
        raise ValueError(
            f"module.policy_class={name} takes a {expected.__name__} but module.policy_config is a "
            f"{getattr(got, '__name__', got)}: set the schema to match, "
            f"e.g. 'override /schema/policy@module.policy_config: {name}' in the task YAML"
        )
