"""The policy node's safety logic and the action <-> velocity mapping, without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from ros_nodes.action_mapping import action_to_command, command_to_action
from ros_nodes.safety import (
    DISABLED,
    ESTOP,
    INVALID_ACTION,
    NO_IMAGE,
    STALE_IMAGE,
    SafetyGate,
    is_stale,
)


def test_hold_reasons_in_priority_order() -> None:
    gate = SafetyGate(image_timeout_s=0.5, max_linear_speed=0.2)
    assert gate.hold_reason(10.0, None) == NO_IMAGE
    assert gate.hold_reason(10.0, 9.6) is None
    assert gate.hold_reason(10.0, 9.4) == STALE_IMAGE
    gate.enabled = False
    assert gate.hold_reason(10.0, 9.9) == DISABLED
    gate.latch_estop()
    assert gate.hold_reason(10.0, 9.9) == ESTOP
    gate.enabled = True
    assert gate.hold_reason(10.0, 9.9) == ESTOP, "the e-stop latches until released"
    gate.release_estop()
    assert gate.hold_reason(10.0, 9.9) is None


def test_is_stale() -> None:
    assert is_stale(1.0, None, 0.5)
    assert not is_stale(1.0, 0.6, 0.5)
    assert is_stale(1.0, 0.4, 0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index", [0, 3])
def test_non_finite_actions_become_a_zero_velocity_hold(bad: float, index: int) -> None:
    action = np.array([0.1, 0.2, 0.3, 0.4])
    action[index] = bad
    command = SafetyGate(0.5, 0.2).command(action)
    assert command.hold == INVALID_ACTION and command.gripper is None
    np.testing.assert_array_equal(command.linear, np.zeros(3))


def test_wrong_action_shape_is_a_hold() -> None:
    assert SafetyGate(0.5, 0.2).command(np.zeros(3)).hold == INVALID_ACTION


def test_per_axis_scale_and_clamp() -> None:
    command = SafetyGate(0.5, max_linear_speed=0.2).command(np.array([0.5, -3.0, 1.0, 7.0]))
    assert command.hold is None
    np.testing.assert_allclose(command.linear, [0.1, -0.2, 0.2])
    assert command.gripper == 1.0


def test_norm_cap_keeps_direction() -> None:
    command = SafetyGate(0.5, max_linear_speed=1.0, max_speed_norm=0.5).command(
        np.array([1.0, 1.0, 0.0, 0.0])
    )
    np.testing.assert_allclose(np.linalg.norm(command.linear), 0.5)
    np.testing.assert_allclose(command.linear[0], command.linear[1])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"image_timeout_s": 0.0, "max_linear_speed": 1.0}, "image_timeout_s"),
    ({"image_timeout_s": 1.0, "max_linear_speed": 0.0}, "max_linear_speed"),
    ({"image_timeout_s": 1.0, "max_linear_speed": np.nan}, "max_linear_speed"),
    ({"image_timeout_s": 1.0, "max_linear_speed": 1.0, "max_speed_norm": -1.0}, "max_speed_norm"),
])  # fmt: skip
def test_invalid_limits_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SafetyGate(**kwargs)


def test_command_to_action_inverts_action_to_command_exactly() -> None:
    rng = np.random.default_rng(0)
    bins = (np.arange(256, dtype=np.float32) + 0.5) / 128 - 1  # the policy's bin centres
    for _ in range(200):
        action = rng.choice(bins, 4).astype(np.float32)
        linear, gripper = action_to_command(action, 0.37)
        np.testing.assert_array_equal(command_to_action(linear, np.float32(gripper), 0.37), action)


def test_mapping_validates_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        action_to_command(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="max_linear_speed"):
        action_to_command(np.zeros(4), -1.0)
    with pytest.raises(ValueError, match="shape"):
        command_to_action(np.zeros(2), 0.0, 1.0)


def test_repeat_filter_logs_new_messages_and_rate_limits_repeats() -> None:
    from ros_nodes.log_limiter import RepeatFilter

    limiter = RepeatFilter(period_s=1.0)
    assert limiter.should_log("a", 0.0)
    assert not limiter.should_log("a", 0.5)
    assert limiter.should_log("b", 0.6)
    assert limiter.should_log("a", 0.7)
    assert not limiter.should_log("a", 1.6)
    assert limiter.should_log("a", 1.7)
