"""Pairwise sigmoid contrastive loss (SigLIP, Zhai et al., ICCV 2023, Sec. 3.2).

``L = -1/|B| sum_i sum_j log sigmoid(z_ij (t <x_i, y_j> + b))`` with L2-normalised ``x, y``, ``z_ij = 1`` for
positive pairs and ``-1`` otherwise, learnable ``t = exp(t')`` (``t'`` starts at log 10) and ``b`` (starts at -10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SigLIPLoss(nn.Module):
    """Sigmoid loss between two batches of embeddings; Vid2Robot uses it for video-video and video-text."""

    def __init__(self, init_log_temperature: float = math.log(10.0), init_bias: float = -10.0) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor([float(init_log_temperature)]))
        self.bias = nn.Parameter(torch.tensor([float(init_bias)]))

    def forward(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x, y ``[B, E]``: row i of each is a positive pair. ``labels`` ``[B]`` (optional task ids) also
        make rows with equal labels positives, so same-task pairs in a batch are not pushed apart."""
        if x.dim() != 2 or x.shape != y.shape:
            raise ValueError(
                f"expected two [B, E] embeddings of one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        n = x.shape[0]
        logits = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T * self.log_temperature.exp() + self.bias
        if labels is None:
            positives = torch.eye(n, dtype=torch.bool, device=x.device)
        else:
            if labels.shape != (n,):
                raise ValueError(f"labels must be [B]={n}, got {tuple(labels.shape)}")
            positives = labels[:, None] == labels[None, :]
        signs = positives.to(logits.dtype) * 2 - 1
        return -F.logsigmoid(signs * logits).sum() / n
