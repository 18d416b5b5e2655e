"""Temporal ensembling of overlapping action chunks (ACT, Zhao et al. 2023, section 3.3).

With a chunk predicted at every control step, up to ``horizon`` chunks hold an action for the current step;
the executed action is their weighted mean with weights ``exp(-coeff * i)``, ``i = 0`` for the oldest
prediction (positive ``coeff`` favours older predictions, 0 is a plain mean). Replaying one chunk open-loop
for ``horizon`` steps reacts to the scene only at the chunk's start; ensembling re-reads the frame every step
and smooths the switches between chunks.
"""

from __future__ import annotations

from collections import deque

import torch


class TemporalEnsembler:
    """Keeps the last ``horizon`` chunks and blends their actions for the current step."""

    def __init__(self, coeff: float, horizon: int) -> None:
        if not coeff >= 0:
            raise ValueError(f"temporal ensembling coefficient must be >= 0, got {coeff}")
        self.coeff = coeff
        self._chunks: deque[torch.Tensor] = deque(maxlen=horizon)

    def reset(self) -> None:
        self._chunks.clear()

    def update(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add the chunk ``[horizon, action_dim]`` predicted now; return the ensembled ``[action_dim]`` action."""
        self._chunks.append(chunk)
        count = len(self._chunks)
        # The chunk predicted ``age`` steps ago holds this step's action at index ``age``; oldest first.
        actions = torch.stack([c[count - 1 - i] for i, c in enumerate(self._chunks)])
        weights = torch.exp(-self.coeff * torch.arange(count, dtype=actions.dtype, device=actions.device))
        return (weights[:, None] * actions).sum(dim=0) / weights.sum()
