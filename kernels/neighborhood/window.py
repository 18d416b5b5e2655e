"""Which keys a query attends to in 2-D neighborhood attention, with NATTEN's border rule.

SHI-Labs/NATTEN (``get_window_start`` in its CPU/CUDA kernels): along one axis of length ``L``, with kernel
size ``K`` (odd) and dilation ``D``, position ``i`` sees the ``K`` positions of its own residue class
``i mod D`` centred on it, the window shifted (never shrunk) to stay inside the axis. In the residue class
(``L_g`` members, ``i`` is member ``i // D``) the window starts at member
``clamp(i // D - K // 2, 0, L_g - K)``; this is the closed form of NATTEN's branchy rule.
"""

from __future__ import annotations

import torch


def window_start(index: torch.Tensor, length: int, kernel_size: int, dilation: int) -> torch.Tensor:
    """First neighbor (as a position on the axis) of each position in ``index``."""
    residue = index % dilation
    members = (length - residue + dilation - 1) // dilation  # size of the residue class
    first_member = torch.clamp(index // dilation - kernel_size // 2, min=0)
    first_member = torch.minimum(first_member, members - kernel_size)
    return first_member * dilation + residue


def neighbor_index(length: int, kernel_size: int, dilation: int, device: torch.device) -> torch.Tensor:
    """[length, kernel_size] positions each position attends to along one axis."""
    positions = torch.arange(length, device=device)
    start = window_start(positions, length, kernel_size, dilation)
    return start[:, None] + dilation * torch.arange(kernel_size, device=device)[None, :]
