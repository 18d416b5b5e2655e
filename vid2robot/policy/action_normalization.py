"""Actions in the robot's own units <-> the action tokenizer's ``[-1, 1]``, from a dataset's statistics.

A policy carries its range in its config (``action_low``/``action_high``, one value per dimension; None means the
data already was in ``[-1, 1]``), so a checkpoint decodes to the units it was trained on. Modes:

- ``min_max``: ``[min, max]`` of each dimension maps to ``[-1, 1]`` (nothing is clipped in training);
- ``quantile``: ``[q01, q99]`` maps to ``[-1, 1]`` (the rare outliers beyond are clipped to the end bins);
- ``identity``: no mapping (the data must lie in ``[-1, 1]``);
- ``auto`` (default): ``identity`` when every action already lies in ``[-1, 1]`` (the simulator's), else
  ``min_max``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

MODES = ("auto", "min_max", "quantile", "identity")
_FLAT = 1e-6  # a dimension that never changes still gets a non-empty range


def action_range(stats: dict | None, mode: str = "auto") -> tuple[list[float], list[float]] | None:
    """``(low, high)`` per action dimension for ``mode`` from ``meta/stats.json``'s ``action`` entry, or None."""
    if mode not in MODES:
        raise ValueError(f"action_normalization must be one of {MODES}, got {mode!r}")
    if stats is None:
        if mode in ("min_max", "quantile"):
            raise ValueError(f"action_normalization={mode} needs the dataset's meta/stats.json")
        return None
    low, high = (
        list(map(float, stats[k])) for k in (("q01", "q99") if mode == "quantile" else ("min", "max"))
    )
    inside = min(stats["min"]) >= -1.0 and max(stats["max"]) <= 1.0
    if mode == "identity" or (mode == "auto" and inside):
        if not inside:
            raise ValueError(
                f"action_normalization=identity but the actions lie in [{min(stats['min'])}, {max(stats['max'])}], "
                "outside the tokenizer's [-1, 1]: use min_max or quantile"
            )
        return None
    high = [max(h, lo + _FLAT) for lo, h in zip(low, high, strict=True)]
    return low, high


def check_actions_fit(actions_min: float, actions_max: float, source: str) -> None:
    """Refuse actions outside ``[-1, 1]`` when no statistics say how to map them (they would be clipped)."""
    if actions_min < -1.0 or actions_max > 1.0:
        raise ValueError(
            f"{source}: actions lie in [{actions_min:.4g}, {actions_max:.4g}] but the dataset has no "
            "meta/stats.json to map them into the tokenizer's [-1, 1] (they would be clipped without a word); "
            "write it with `python -m vid2robot.data.stats DATASET`, then train again"
        )


def check_action_range(
    low: Sequence[float] | None, high: Sequence[float] | None, action_dim: int
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """A config's ``action_low``/``action_high``: both None, or ``action_dim`` values each with high > low."""
    if low is None and high is None:
        return None, None
    if low is None or high is None:
        raise ValueError("action_low and action_high must be given together (or both null)")
    low, high = tuple(float(v) for v in low), tuple(float(v) for v in high)
    if len(low) != action_dim or len(high) != action_dim:
        raise ValueError(
            f"action_low/action_high need {action_dim} values each, got {len(low)} and {len(high)}"
        )
    if any(h <= lo for lo, h in zip(low, high, strict=True)):
        raise ValueError(f"action_high must exceed action_low in every dimension, got {low} and {high}")
    return low, high


class ActionNormalizer:
    """Maps ``[..., action_dim]`` actions between robot units and ``[-1, 1]``; an empty range is the identity."""

    def __init__(self, low: Sequence[float] | None, high: Sequence[float] | None) -> None:
        self.low = None if low is None else torch.tensor(list(low), dtype=torch.float32)
        self.high = None if high is None else torch.tensor(list(high), dtype=torch.float32)

    @property
    def identity(self) -> bool:
        return self.low is None

    def normalize(self, actions: torch.Tensor) -> torch.Tensor:
        """Robot units -> ``[-1, 1]`` (values beyond the range land beyond it; the tokenizer clips them)."""
        if self.identity:
            return actions
        low, high = self.low.to(actions), self.high.to(actions)
        return 2.0 * (actions - low) / (high - low) - 1.0

    def unnormalize(self, actions: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> robot units."""
        if self.identity:
            return actions
        low, high = self.low.to(actions), self.high.to(actions)
        return low + (actions + 1.0) * 0.5 * (high - low)
