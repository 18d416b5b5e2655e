import pytest
import torch

from vid2robot.policy import ActionTokenizer


def test_bins_cover_range_uniformly() -> None:
    tok = ActionTokenizer(bins=4)  # bin width 0.5 over [-1, 1]
    actions = torch.tensor([-1.0, -0.51, -0.5, 0.0, 0.49, 0.99, 1.0, 5.0, -7.0])
    assert tok.encode(actions).tolist() == [0, 0, 1, 2, 2, 3, 3, 3, 0]
    assert tok.decode(torch.arange(4)).tolist() == [-0.75, -0.25, 0.25, 0.75]


def test_round_trip_error_is_at_most_half_a_bin() -> None:
    tok = ActionTokenizer(bins=256)
    actions = torch.rand(1000) * 2 - 1
    err = (tok.decode(tok.encode(actions)) - actions).abs().max()
    assert err <= tok.width / 2 + 1e-6
    assert tok.encode(tok.decode(torch.arange(256))).tolist() == list(range(256))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="bins"):
        ActionTokenizer(bins=1)
    with pytest.raises(ValueError, match="high must be > low"):
        ActionTokenizer(low=1.0, high=1.0)
    tok = ActionTokenizer(bins=8)
    with pytest.raises(ValueError, match="float"):
        tok.encode(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        tok.encode(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        tok.decode(torch.tensor([8]))
    with pytest.raises(ValueError, match="integer"):
        tok.decode(torch.tensor([0.5]))
