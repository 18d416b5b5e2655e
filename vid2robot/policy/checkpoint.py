"""Save and load policies: ``model.safetensors`` + ``config.json``, or a Lightning ``.ckpt``.

A Lightning checkpoint must hold ``state_dict`` keys prefixed ``policy.`` and ``hyper_parameters`` with
``policy_class`` (a class name of this package) and ``policy_config`` (a plain dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from detection.devices import check_device
from detection.safe_files import (
    CheckpointError,
    atomic_save_safetensors,
    atomic_write_json,
    load_safetensors_file,
    load_torch_file,
    read_json_file,
)
from vid2robot.policy.registry import create_policy

if TYPE_CHECKING:
    from vid2robot.policy.deployment import DeployablePolicy

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def save_policy(policy: DeployablePolicy, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (class name + config) into ``directory``.

    Each file is written beside its target and renamed over it, so an interrupted save leaves the previous
    files whole; other files in ``directory`` are left alone.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"save_policy writes a folder; {directory} is a file (choose another path)")
    state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    atomic_save_safetensors(state, directory / WEIGHTS_NAME)
    meta = {"policy_class": type(policy).__name__, "policy_config": policy.config.to_dict()}
    atomic_write_json(directory / CONFIG_NAME, meta)
    return directory


def _load_state(policy: DeployablePolicy, state: dict[str, torch.Tensor], source: Path) -> None:
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source} does not fit {type(policy).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatches {mismatched}"
        )
    policy.load_state_dict(state)


def _load_directory(directory: Path, map_location: str | torch.device) -> DeployablePolicy:
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory} has no {name} (expected a directory written by save_policy)"
            )
    meta = read_json_file(directory / CONFIG_NAME, "policy config (save_policy's config.json)")
    if not {"policy_class", "policy_config"} <= set(meta):
        raise CheckpointError(f"{directory / CONFIG_NAME} needs 'policy_class' and 'policy_config' entries")
    policy = create_policy(meta["policy_class"], meta["policy_config"])
    _load_state(policy, load_safetensors_file(directory / WEIGHTS_NAME, map_location), directory)
    return policy


def _load_lightning(path: Path, map_location: str | torch.device) -> DeployablePolicy:
    ckpt = load_torch_file(path, map_location, what="policy checkpoint")
    hparams = ckpt.get("hyper_parameters", {})
    if not isinstance(hparams, dict) or "policy_class" not in hparams or "policy_config" not in hparams:
        found = sorted(hparams) if isinstance(hparams, dict) else type(hparams).__name__
        raise CheckpointError(
            f"{path} is not a policy checkpoint of vid2robot-train: its hyper_parameters need 'policy_class' "
            f"and 'policy_config' (found {found}); a detector or classifier checkpoint loads with its own "
            "loader (detection.Detector.from_checkpoint)"
        )
    policy = create_policy(hparams["policy_class"], hparams["policy_config"])
    prefix = "policy."
    state = {k[len(prefix) :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path}: no state_dict keys start with {prefix!r} (not a policy checkpoint)")
    _load_state(policy, state, path)
    return policy


def load_policy(path: str | Path, map_location: str | torch.device = "cpu") -> DeployablePolicy:
    """Load a ``save_policy`` directory or a Lightning ``.ckpt``; returns the policy in eval mode."""
    map_location = check_device(map_location)
    path = Path(path)
    if path.is_dir():
        policy = _load_directory(path, map_location)
    elif path.is_file() and path.suffix == ".safetensors":
        raise CheckpointError(f"{path}: pass the folder that holds it and its config.json ({path.parent})")
    elif path.is_file():
        policy = _load_lightning(path, map_location)
    else:
        raise FileNotFoundError(f"no policy checkpoint at {path}")
    return policy.to(map_location).eval()
