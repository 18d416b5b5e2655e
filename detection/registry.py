"""Every model of the package by family and name, as timm names its models: a factory registers itself with
``@register_model(family)`` where it is defined, and configs, checkpoints and tests build it by name.

Families: ``classifier`` (BiFormer, DCAL and ViT classifiers: ``create_model("classifier", "biformer_tiny",
num_classes=200)``), ``detr_backbone`` (Plain-DETR's stride-16 backbones) and ``frame_encoder`` (Vid2Robot's
per-frame encoders, registered by ``vid2robot.policy.frame_encoders``). Importing ``detection`` imports every
detection model file, so its families are complete; adding a model is its file plus the decorator (and the
file's import in the package ``__init__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])
_MODELS: dict[str, dict[str, Callable[..., nn.Module]]] = {}


def register_model(family: str, name: str | None = None) -> Callable[[Factory], Factory]:
    """Decorator: make a factory (function or class) buildable as ``create_model(family, name)``; the name
    defaults to the factory's own."""

    def register(factory: Factory) -> Factory:
        key = name or factory.__name__
        models = _MODELS.setdefault(family, {})
        if models.get(key, factory) is not factory:
            raise ValueError(f"two {family} models are named {key!r}: {models[key]} and {factory}")
        models[key] = factory
        return factory

    return register


def list_models(family: str) -> list[str]:
    """The registered names of a family, sorted."""
    return sorted(_MODELS.get(family, {}))


def create_model(family: str, name: str, **kwargs: Any) -> nn.Module:
    """Build the model ``name`` of ``family`` with the factory's keyword arguments."""
    models = _MODELS.get(family, {})
    if name not in models:
        known = ", ".join(sorted(models)) or f"none (is the module defining the {family} models imported?)"
        raise ValueError(f"unknown {family} {name!r}; expected one of: {known}")
    return models[name](**kwargs)
