"""NATTEN's window rule (kernels/neighborhood/window.py) against hand-worked examples and a brute-force definition."""

from __future__ import annotations

import pytest
import torch

from kernels.neighborhood.window import neighbor_index, window_start


def brute_force_start(index: int, length: int, kernel: int, dilation: int) -> int:
    """Among all in-bounds windows of ``kernel`` same-residue positions, the one centred nearest ``index``."""
    members = list(range(index % dilation, length, dilation))
    windows = [members[s : s + kernel] for s in range(len(members) - kernel + 1)]
    best = min(windows, key=lambda w: abs(w[kernel // 2] - index))
    return best[0]


def test_window_start_matches_hand_worked_natten_examples() -> None:
    assert window_start(torch.arange(5), 5, 3, 1).tolist() == [0, 0, 1, 2, 2]
    # length 7, dilation 2: residue 0 has members 0 2 4 6, residue 1 has 1 3 5; windows shift at the borders.
    assert window_start(torch.arange(7), 7, 3, 2).tolist() == [0, 1, 0, 1, 2, 1, 2]


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_window_start_is_the_nearest_centred_in_bounds_window(kernel: int, dilation: int) -> None:
    for length in range(kernel * dilation, kernel * dilation + 9):
        expected = [brute_force_start(i, length, kernel, dilation) for i in range(length)]
        assert window_start(torch.arange(length), length, kernel, dilation).tolist() == expected


def test_neighbor_index_lists_the_dilated_window() -> None:
    assert neighbor_index(7, 3, 2, torch.device("cpu"))[5].tolist() == [1, 3, 5]
