"""The shared AdamW schedule: warm-up, cosine and step decay, the run's length asked for only after warm-up,
and parameter groups in a fixed order."""

from __future__ import annotations

import math

import pytest
from torch import nn

from detection.training.schedule import parameter_groups, warmup_factor


def test_warm_up_then_cosine_asks_for_the_run_length_once_and_only_after_warm_up() -> None:
    asked: list[int] = []

    def total() -> int:
        asked.append(1)
        return 14

    factor = warmup_factor(total, warmup_steps=4)
    assert [factor(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0] and not asked
    assert factor(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert factor(14) == pytest.approx(0.0, abs=1e-12) and factor(20) == pytest.approx(0.0, abs=1e-12)
    assert len(asked) == 1


def test_step_decay_drops_tenfold_at_its_fraction_of_the_run() -> None:
    factor = warmup_factor(lambda: 100, warmup_steps=0, decay="step", drop_at=0.9)
    assert factor(0) == 1.0 and factor(89) == 1.0 and factor(90) == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"warmup_steps": -1}, "warmup_steps"), ({"warmup_steps": 1, "decay": "linear"}, "decay"),
     ({"warmup_steps": 1, "decay": "step", "drop_at": 0.0}, "lr_drop")],
)  # fmt: skip
def test_bad_settings_name_the_setting(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        warmup_factor(lambda: 10, **kwargs)


def test_groups_decay_matrices_scale_prefixes_and_keep_a_fixed_order() -> None:
    model = nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 4), nn.Linear(4, 2))  # a vector comes first
    groups = parameter_groups(model.named_parameters(), 0.05, lr_scales={"2.": 0.1})
    shapes = [[tuple(p.shape) for p in g["params"]] for g in groups]
    assert [(g["weight_decay"], g["lr_scale"]) for g in groups] == [
        (0.05, 1.0),
        (0.0, 1.0),
        (0.05, 0.1),
        (0.0, 0.1),
    ]
    assert shapes == [[(4, 4)], [(4,), (4,), (4,)], [(2, 4)], [(2,)]]
    everything = parameter_groups(
        model.named_parameters(), 0.05, decay_vectors=True, no_decay_prefixes=("1.",)
    )
    assert [len(g["params"]) for g in everything] == [4, 2]
