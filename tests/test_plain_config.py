"""The config dataclasses' plain-value round trip, shared by the policy configs and the augmentation."""

from __future__ import annotations

import pytest
import torch

from detection.plain_detr import PlainDETRConfig, tiny_config
from vid2robot.data.augment import VideoAugmentation
from vid2robot.policy import Vid2RobotConfig
from vid2robot.policy.bcz import BCZConfig


@pytest.mark.parametrize(
    "config",
    [
        Vid2RobotConfig.small(d_model=48),
        BCZConfig(widths=(8, 16, 32, 64)),
        VideoAugmentation.paper(),
        tiny_config(3),
    ],
    ids=type,
)
def test_round_trip_through_plain_values_and_a_safe_checkpoint(config, tmp_path) -> None:
    values = config.to_dict()
    assert not any(isinstance(v, tuple) for v in values.values()), "tuples do not survive YAML"
    torch.save(values, tmp_path / "config.pt")
    assert type(config).from_dict(torch.load(tmp_path / "config.pt", weights_only=True)) == config


def test_unknown_keys_are_named_with_the_keys_expected() -> None:
    with pytest.raises(
        ValueError, match=r"unknown BCZConfig keys \['depth'\]; expected a subset of \[.*'widths'"
    ):
        BCZConfig.from_dict({"widths": [8, 16, 32, 64], "depth": 3})
    with pytest.raises(ValueError, match=r"unknown data.augmentation keys \['hue'\]"):
        VideoAugmentation.from_dict({"hue": 0.1})
    with pytest.raises(ValueError, match=r"unknown PlainDETRConfig keys \['heads'\]; expected a subset of"):
        PlainDETRConfig.from_dict({"heads": 8})
