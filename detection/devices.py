"""A torch device named by a user (a CLI option, a node parameter), checked before anything is loaded onto it."""

from __future__ import annotations

import torch


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, refused with the fix when it is malformed or not present on this machine."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a torch device ({err}); use cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but this machine has no usable CUDA device (torch {torch.__version__}, "
                "torch.cuda.is_available() is False); use device=cpu"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist; use cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} but MPS is not available here; use device=cpu")
    return resolved
