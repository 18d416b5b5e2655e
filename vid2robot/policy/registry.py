"""Every policy class of the package by name, as timm names its models: a class registers itself with
``@register_policy`` where it is defined, and checkpoints, the training module and the tests find it here.

Adding a policy is its module plus the decorator (and its import in ``vid2robot/policy/__init__.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from torch import nn

# Typed as modules, not DeployablePolicy: the deployment interface looks classes up here (no import cycle).
PolicyT = TypeVar("PolicyT", bound=type[nn.Module])
_POLICIES: dict[str, type[nn.Module]] = {}


def register_policy(cls: PolicyT) -> PolicyT:
    """Class decorator: make ``cls`` loadable by its name (the ``policy_class`` checkpoints store)."""
    name = cls.__name__
    if _POLICIES.get(name, cls) is not cls:
        raise ValueError(f"two policy classes are named {name!r}: {_POLICIES[name]} and {cls}")
    _POLICIES[name] = cls
    return cls


def policy_classes() -> dict[str, type[nn.Module]]:
    """Every registered policy class by name."""
    return dict(_POLICIES)


def policy_class(name: str, where: str = "") -> type[nn.Module]:
    """The registered class ``name``; an unknown name is an error saying where it came from and what exists."""
    if name not in _POLICIES:
        raise ValueError(f"{where}unknown policy class {name!r}; expected one of {sorted(_POLICIES)}")
    return _POLICIES[name]


def create_policy(name: str, policy_config: dict[str, Any]) -> nn.Module:
    """A policy from its class name and plain-dict config (as checkpoints store them)."""
    cls = policy_class(name)
    return cls(cls.config_class.from_dict(dict(policy_config)))
