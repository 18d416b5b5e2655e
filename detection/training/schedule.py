"""AdamW with linear warm-up, then cosine decay or a step drop, per optimiser step; safe for exact resume.

The run's length (``trainer.estimated_stepping_batches``) is asked for only once warm-up is over, never inside
``configure_optimizers``: asking there makes Lightning set up the train loader before a checkpoint restores its
position, and the resumed run then sees other batches. LambdaLR evaluates the factor at step 0 when it is
built, so the factor at step 0 (and everywhere in warm-up) must not need the run's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import lightning as L
import torch
from torch import nn

Decay = Literal["cosine", "step"]


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    weight_decay: float,
    *,
    decay_vectors: bool = False,
    no_decay_prefixes: tuple[str, ...] = (),
    lr_scales: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices (and on biases and norms too with ``decay_vectors``), none on
    names under ``no_decay_prefixes``; ``lr_scales`` maps a name prefix to a learning-rate multiplier."""
    scales = list((lr_scales or {}).items())
    groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        decays = (decay_vectors or parameter.ndim >= 2) and not name.startswith(no_decay_prefixes)
        scaled = next((i for i, (prefix, _) in enumerate(scales) if name.startswith(prefix)), -1)
        groups.setdefault((scaled, decays), []).append(parameter)
    # A fixed order (unscaled first, decayed first), so a checkpoint's optimiser state maps onto its groups.
    return [
        {
            "params": groups[key],
            "weight_decay": weight_decay if key[1] else 0.0,
            "lr_scale": scales[key[0]][1] if key[0] >= 0 else 1.0,
        }
        for key in sorted(groups, key=lambda k: (k[0], not k[1]))
    ]


def warmup_factor(
    total_steps: Callable[[], int], warmup_steps: int, decay: Decay = "cosine", drop_at: float = 0.9
) -> Callable[[int], float]:
    """The learning-rate factor of step ``step``: ``(step + 1) / warmup_steps`` during warm-up, then 1 falling
    to 0 along a cosine by the end of the run, or 1 then 0.1 from ``drop_at`` of the run. ``total_steps`` is
    called once, at the first step after warm-up."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if decay not in ("cosine", "step"):
        raise ValueError(f"decay must be 'cosine' or 'step', got {decay!r}")
    if decay == "step" and not 0.0 < drop_at <= 1.0:
        raise ValueError(f"lr_drop must be in (0, 1] (a fraction of the run), got {drop_at}")
    total: list[int] = []

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if step == warmup_steps:
            return 1.0
        if not total:
            total.append(max(int(total_steps()), warmup_steps + 1))
        if decay == "step":
            return 0.1 if step >= int(drop_at * total[0]) else 1.0
        progress = (step - warmup_steps) / (total[0] - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def adamw_with_warmup(
    module: L.LightningModule,
    groups: list[dict[str, Any]],
    lr: float,
    warmup_steps: int,
    decay: Decay = "cosine",
    drop_at: float = 0.9,
) -> dict[str, Any]:
    """What ``configure_optimizers`` returns: AdamW over ``groups`` (from :func:`parameter_groups`) and the
    warm-up schedule, stepped every optimiser step."""
    if lr <= 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    optimizer = torch.optim.AdamW(
        [{**{k: v for k, v in g.items() if k != "lr_scale"}, "lr": lr * g["lr_scale"]} for g in groups], lr=lr
    )
    factor = warmup_factor(lambda: module.trainer.estimated_stepping_batches, warmup_steps, decay, drop_at)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
