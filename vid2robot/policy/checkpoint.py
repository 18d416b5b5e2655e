"""Policy files: ``model.safetensors`` + ``config.json`` (``save_policy``), or a Lightning ``.ckpt``.

A Lightning checkpoint must hold ``state_dict`` keys prefixed ``policy.`` and ``hyper_parameters`` with
``policy_class`` (a class name of this package) and ``policy_config`` (a plain dict). This module only reads
and writes the files (it knows no policy class): ``DeployablePolicy.from_checkpoint`` builds its own class
from what :func:`read_policy_checkpoint` returns, and ``registry.load_policy`` picks the class by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from detection.devices import check_device
from detection.export_format import CONFIG_NAME, load_state_strictly, read_export, write_export
from detection.safe_files import CheckpointError, load_torch_file


class SavablePolicy(Protocol):
    config: Any  # a PlainConfig: ``to_dict()`` gives the plain dict stored beside the weights

    def state_dict(self) -> dict[str, torch.Tensor]: ...


@dataclass
class SavedPolicy:
    """What a policy file holds: the class name and plain config to build it from, and its weights."""

    policy_class: str
    policy_config: dict[str, Any]
    state: dict[str, torch.Tensor]
    source: Path

    def trained_config(self) -> dict[str, Any]:
        """The config to build the policy the weights go into. Starting weights it names (``encoder_checkpoint``)
        are not read: the trained weights replace them, and the file need not exist where the policy runs."""
        if "encoder_checkpoint" in self.policy_config:
            return {**self.policy_config, "encoder_checkpoint": None}
        return dict(self.policy_config)

    def load_into(self, policy: nn.Module) -> None:
        """Load the weights strictly, naming every missing, unexpected and mis-shaped key."""
        load_state_strictly(policy, self.state, self.source)


def save_policy(policy: SavablePolicy, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (class name + config) into ``directory``, the package's
    export format (``detection.export_format``: atomic, other files in ``directory`` left alone)."""
    meta = {"policy_class": type(policy).__name__, "policy_config": policy.config.to_dict()}
    return write_export(directory, policy, meta, writer="save_policy")


def _read_directory(directory: Path, map_location: str | torch.device) -> SavedPolicy:
    meta, state = read_export(directory, ("policy_class", "policy_config"), "save_policy", map_location)
    if not isinstance(meta["policy_config"], dict):
        raise CheckpointError(f"{directory / CONFIG_NAME}: 'policy_config' must be a mapping of settings")
    return SavedPolicy(str(meta["policy_class"]), meta["policy_config"], state, directory)


def _read_lightning(path: Path, map_location: str | torch.device) -> SavedPolicy:
    ckpt = load_torch_file(path, map_location, what="policy checkpoint")
    hparams = ckpt.get("hyper_parameters", {})
    if not isinstance(hparams, dict) or "policy_class" not in hparams or "policy_config" not in hparams:
        found = sorted(hparams) if isinstance(hparams, dict) else type(hparams).__name__
        raise CheckpointError(
            f"{path} is not a policy checkpoint of vid2robot-train: its hyper_parameters need 'policy_class' "
            f"and 'policy_config' (found {found}); a detector or classifier checkpoint loads with its own "
            "loader (detection.Detector.from_checkpoint)"
        )
    if not isinstance(hparams["policy_config"], dict):
        raise CheckpointError(f"{path}: hyper_parameters 'policy_config' must be a mapping of settings")
    prefix = "policy."
    state = {k[len(prefix) :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path}: no state_dict keys start with {prefix!r} (not a policy checkpoint)")
    return SavedPolicy(str(hparams["policy_class"]), hparams["policy_config"], state, path)


def read_policy_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> SavedPolicy:
    """Read a ``save_policy`` directory or a Lightning ``.ckpt`` (safely: safetensors or ``weights_only``)."""
    map_location = check_device(map_location)
    path = Path(path)
    if path.is_dir():
        return _read_directory(path, map_location)
    if path.is_file() and path.suffix == ".safetensors":
        raise CheckpointError(f"{path}: pass the folder that holds it and its config.json ({path.parent})")
    if path.is_file():
        return _read_lightning(path, map_location)
    raise FileNotFoundError(f"no policy checkpoint at {path}")
