"""Config dataclasses that travel as plain values: in checkpoints loaded with ``weights_only=True`` and in
Hydra/YAML configs, where tuples are lists. One mixin for the detector's and the policies' configs (it lives at
this level so both can use it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

ConfigT = TypeVar("ConfigT", bound="PlainConfig")


class PlainConfig:
    """Mixin for a config dataclass. ``to_dict`` gives plain containers (tuples become lists); ``from_dict``
    takes config values (lists become tuples) and names any unknown key beside the keys it expects."""

    config_name: ClassVar[str] = ""  # how errors name the config; the class name when empty
    # Classmethods that build named configurations (e.g. ``paper``); Hydra offers each as a schema.
    PRESETS: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items()}

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
        known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            name = cls.config_name or cls.__name__
            raise ValueError(f"unknown {name} keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.items()})
