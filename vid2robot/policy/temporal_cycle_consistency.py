"""Temporal cycle-consistency, cycle-back regression form (Dwibedi et al., CVPR 2019, Sec. 3.2-3.3).

For frame ``u_i`` of video U: soft nearest neighbour in V, ``v~ = sum_j alpha_j v_j`` with
``alpha = softmax_j(-||u_i - v_j||^2)``; cycle back with ``beta = softmax_k(-||v~ - u_k||^2)``; regress the
index: ``mu = sum_k beta_k k``, ``sigma^2 = sum_k beta_k (k - mu)^2`` and
``L_i = (i - mu)^2 / sigma^2 + lambda * log(sigma)``. Vid2Robot aligns prompt and robot videos with it.
"""

from __future__ import annotations

import torch


def _check_pair(u: torch.Tensor, v: torch.Tensor) -> None:
    if u.dim() != 3 or v.dim() != 3 or u.shape[0] != v.shape[0] or u.shape[2] != v.shape[2]:
        raise ValueError(
            f"expected embeddings [B, N, E] and [B, M, E], got {tuple(u.shape)} and {tuple(v.shape)}"
        )
    if u.shape[1] < 2 or v.shape[1] < 2:
        raise ValueError(f"cycle consistency needs >= 2 frames per video, got {u.shape[1]} and {v.shape[1]}")


def _similarity(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    # Negative squared distance, divided by the embedding width (as in the TCC reference code) and the
    # softmax temperature: [B, N, M].
    return -torch.cdist(a, b).pow(2) / (a.shape[-1] * temperature)


def _cycle_back(u: torch.Tensor, v: torch.Tensor, temperature: float, variance_lambda: float) -> torch.Tensor:
    alpha = torch.softmax(_similarity(u, v, temperature), dim=-1)
    v_tilde = alpha @ v
    beta = torch.softmax(_similarity(v_tilde, u, temperature), dim=-1)
    steps = torch.arange(u.shape[1], dtype=u.dtype, device=u.device)
    mu = beta @ steps
    var = (beta * (steps[None, None, :] - mu[..., None]).pow(2)).sum(-1).clamp_min(1e-6)
    return ((steps - mu).pow(2) / var + variance_lambda * 0.5 * var.log()).mean()


def temporal_cycle_consistency_loss(
    u: torch.Tensor, v: torch.Tensor, temperature: float = 0.1, variance_lambda: float = 0.001
) -> torch.Tensor:
    """Mean cycle-back regression loss over frames, batch and both directions (U->V->U, V->U->V).

    u ``[B, N, E]``, v ``[B, M, E]``: per-frame embeddings of two videos of the same task.
    """
    _check_pair(u, v)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return 0.5 * (
        _cycle_back(u, v, temperature, variance_lambda) + _cycle_back(v, u, temperature, variance_lambda)
    )
