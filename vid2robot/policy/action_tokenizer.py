"""Uniform per-dimension action discretisation (Vid2Robot/RT-1: 256 bins per action dimension)."""

from __future__ import annotations

import torch


class ActionTokenizer:
    """Maps continuous actions in ``[low, high]`` to bin ids in ``[0, bins)`` and back to bin centres.

    Values outside the range are clipped first, so every action has a valid bin.
    """

    def __init__(self, bins: int = 256, low: float = -1.0, high: float = 1.0) -> None:
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        if not high > low:
            raise ValueError(f"high must be > low, got low={low}, high={high}")
        self.bins = int(bins)
        self.low = float(low)
        self.high = float(high)
        self.width = (self.high - self.low) / self.bins

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """Float actions (any shape) -> int64 bin ids of the same shape."""
        if not torch.is_floating_point(actions):
            raise ValueError(f"actions must be a float tensor, got dtype {actions.dtype}")
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf")
        scaled = (actions.clamp(self.low, self.high) - self.low) / self.width
        return scaled.floor().long().clamp(0, self.bins - 1)

    def decode(self, bin_ids: torch.Tensor) -> torch.Tensor:
        """Integer bin ids (any shape) -> float32 bin centres of the same shape."""
        if torch.is_floating_point(bin_ids) or torch.is_complex(bin_ids):
            raise ValueError(f"bin_ids must be an integer tensor, got dtype {bin_ids.dtype}")
        if bin_ids.numel() and (bin_ids.min() < 0 or bin_ids.max() >= self.bins):
            raise ValueError(
                f"bin ids must lie in [0, {self.bins}), got range [{int(bin_ids.min())}, {int(bin_ids.max())}]"
            )
        return self.low + (bin_ids.float() + 0.5) * self.width
