"""Released ImageNet checkpoints into the package's backbones, safely (``weights_only``), strictly but for the
classifier head, which is skipped when its shape differs (fine-tuning to another number of classes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from detection.safe_files import load_torch_file

StateAdapter = Callable[[dict[str, Tensor], dict[str, Tensor]], None]
HEAD_KEYS = ("head.weight", "head.bias")


def load_released_weights(
    model: nn.Module, path: str | Path, what: str, adapt: StateAdapter | None = None
) -> list[str]:
    """Load ``{"model": state}``, ``{"state_dict": state}`` or a bare state dict from ``path`` into ``model``;
    ``adapt(state, own)`` may rewrite entries first (a position grid resized). Every tensor but the head must
    match by name and shape. Returns the names left at their initial values (the head, if skipped)."""
    state = load_torch_file(path, what=what)
    state = dict(state.get("model", state.get("state_dict", state)))
    own = model.state_dict()
    if adapt is not None:
        adapt(state, own)
    skipped = [k for k in HEAD_KEYS if k in state and (k not in own or own[k].shape != state[k].shape)]
    for k in skipped:
        state.pop(k)
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("head.")]
    if bad or unexpected:
        raise ValueError(f"checkpoint {path} does not fit: missing {bad[:5]}, unexpected {unexpected[:5]}")
    return sorted(set(missing) | set(skipped))
