import cv2
import numpy as np
import pytest
import torch

from vid2robot.policy import frames_to_tensor, sample_prompt_frames, state_window_indices


def test_frames_to_tensor_layout_range_and_resize() -> None:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(2, 5, 64, 48, 3), dtype=np.uint8)
    out = frames_to_tensor(video, 32)
    assert out.shape == (2, 5, 3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    expected = cv2.resize(video[1, 3], (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(out[1, 3].permute(1, 2, 0).numpy(), expected / 255.0, atol=1e-6)


def test_frames_to_tensor_keeps_rgb_order_without_resize() -> None:
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[..., 0] = 255  # pure red
    out = frames_to_tensor(frame, 16)
    assert out.shape == (3, 16, 16)
    assert out[0].min() == 1.0 and out[1:].max() == 0.0


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 4), np.uint8), r"\[\.\.\., H, W, 3\]"),
        (np.zeros((8, 3), np.uint8), r"\[\.\.\., H, W, 3\]"),
        ([[0]], "numpy array"),
    ],
)
def test_frames_to_tensor_rejects_bad_frames(frames, match) -> None:
    with pytest.raises(ValueError, match=match):
        frames_to_tensor(frames, 8)


def test_prompt_sampling_keeps_first_and_last() -> None:
    for total in (1, 2, 5, 16, 17, 100, 501):
        idx = sample_prompt_frames(total, 16)
        assert len(idx) == 16 and idx[0] == 0 and idx[-1] == total - 1
        assert idx == sorted(idx) and all(0 <= i < total for i in idx)
    assert sample_prompt_frames(16, 16) == list(range(16))
    with pytest.raises(ValueError, match="k must be >= 2"):
        sample_prompt_frames(10, 1)
    with pytest.raises(ValueError, match="num_frames_total"):
        sample_prompt_frames(0, 4)


def test_state_window_pads_by_repeating_first_frame() -> None:
    assert state_window_indices(0, 4) == [0, 0, 0, 0]
    assert state_window_indices(2, 4) == [0, 0, 1, 2]
    assert state_window_indices(9, 4) == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="step"):
        state_window_indices(-1, 4)
