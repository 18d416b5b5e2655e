"""Shared builders for the kernels tests: dense attention definitions, routing indices and test inputs."""

from __future__ import annotations

import itertools

import torch

from kernels.neighborhood.window import window_start


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    bias: torch.Tensor | None = None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale + bias, over allowed keys) v, spelled out densely."""
    logits = q @ k.transpose(-2, -1) * scale
    if bias is not None:
        logits = logits + bias
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return logits.softmax(-1) @ v


def distinct_topk(batch: int, regions: int, topk: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[B, R, k] distinct key regions per query region, as torch.topk in BiFormer's router yields."""
    g = torch.Generator().manual_seed(batch * 1000 + regions * 10 + topk)
    rows = [torch.randperm(regions, generator=g)[:topk] for _ in range(batch * regions)]
    return torch.stack(rows).reshape(batch, regions, topk).to(device)


def brute_force_window(
    height: int, width: int, kernel: tuple[int, int], dilation: tuple[int, int]
) -> torch.Tensor:
    """[HW, HW] bool: which pixels each pixel attends to, enumerated pixel by pixel."""
    rows = window_start(torch.arange(height), height, kernel[0], dilation[0]).tolist()
    cols = window_start(torch.arange(width), width, kernel[1], dilation[1]).tolist()
    allowed = torch.zeros(height * width, height * width, dtype=torch.bool)
    for y, x in itertools.product(range(height), range(width)):
        for i, j in itertools.product(range(kernel[0]), range(kernel[1])):
            allowed[y * width + x, (rows[y] + i * dilation[0]) * width + cols[x] + j * dilation[1]] = True
    return allowed


def randn(*shape: int, dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)
