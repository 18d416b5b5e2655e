"""BoxRPB offsets, bias shapes and the cross-attention, against hand computations (paper Eq. 3-4, official code)."""

from __future__ import annotations

import math

import pytest
import torch

from detection.plain_detr.boxrpb import BoxRPB, GlobalCrossAttention, box_rpb_offsets


def test_offsets_linear_match_hand_computation() -> None:
    # Box cx=0.5, cy=0.25, w=0.5, h=0.25 in a 64x32 image, stride 16 -> W=4, H=2 feature cells.
    # x corners 16, 48; pixel centres 8, 24, 40, 56.  y corners 4, 12; centres 8, 24.
    boxes = torch.tensor([[[0.5, 0.25, 0.5, 0.25]]])
    dx, dy = box_rpb_offsets(boxes, torch.tensor([[64.0, 32.0]]), (2, 4), 16, "linear")
    assert dx.shape == (1, 1, 4, 2) and dy.shape == (1, 1, 2, 2)
    torch.testing.assert_close(
        dx[0, 0], torch.tensor([[8.0, 40.0], [-8.0, 24.0], [-24.0, 8.0], [-40.0, -8.0]])
    )
    torch.testing.assert_close(dy[0, 0], torch.tensor([[-4.0, 4.0], [-20.0, -12.0]]))


def test_offsets_abs_log8() -> None:
    boxes = torch.tensor([[[0.5, 0.25, 0.5, 0.25]]])
    dx, dy = box_rpb_offsets(boxes, torch.tensor([[64.0, 32.0]]), (2, 4), 16, "abs_log8")
    f = lambda d: math.copysign(math.log2(abs(d) + 1) / 3, d)  # noqa: E731
    torch.testing.assert_close(dx[0, 0, 0], torch.tensor([f(8.0), f(40.0)]))
    torch.testing.assert_close(dy[0, 0, 1], torch.tensor([f(-20.0), f(-12.0)]))


def test_boxrpb_bias_shapes_and_axis_mlps() -> None:
    torch.manual_seed(0)
    rpb = BoxRPB(num_heads=3, hidden_dim=8, mode="linear", stride=16)
    boxes = torch.rand(2, 5, 4) * 0.5 + 0.25
    image_wh = torch.tensor([[80.0, 48.0], [64.0, 48.0]])
    bias_x, bias_y = rpb(boxes, image_wh, (3, 5))
    assert bias_x.shape == (2, 3, 5, 5) and bias_y.shape == (2, 3, 5, 3)
    dx, _ = box_rpb_offsets(boxes, image_wh, (3, 5), 16, "linear")
    w1, b1, w2 = rpb.mlp_x[0].weight, rpb.mlp_x[0].bias, rpb.mlp_x[2].weight
    hand = torch.relu(dx @ w1.T + b1) @ w2.T  # [B, Q, W, heads]
    torch.testing.assert_close(bias_x, hand.permute(0, 3, 1, 2))


def test_cross_attention_equals_full_bias_attention() -> None:
    """Factored kernel path == softmax(q k^T / sqrt(d) + bias_y[y] + bias_x[x] - 100 * pad) v, built by hand."""
    torch.manual_seed(0)
    b, q_n, dim, heads, h, w = 2, 4, 16, 2, 3, 5
    attn = GlobalCrossAttention(dim, heads, "linear", rpe_hidden_dim=8, stride=16)
    query, key, value = torch.randn(b, q_n, dim), torch.randn(b, h * w, dim), torch.randn(b, h * w, dim)
    boxes = torch.rand(b, q_n, 4) * 0.4 + 0.3
    image_wh = torch.tensor([[80.0, 48.0], [48.0, 48.0]])
    mask = torch.zeros(b, h, w, dtype=torch.bool)
    mask[1, :, 3:] = True
    out = attn(query, boxes, key, value, (h, w), image_wh, mask.flatten(1))

    split = lambda x: x.view(b, -1, heads, dim // heads).transpose(1, 2)  # noqa: E731
    qh, kh, vh = split(attn.q(query)), split(attn.k(key)), split(attn.v(value))
    bias_x, bias_y = attn.rpb(boxes, image_wh, (h, w))
    full = torch.zeros(b, heads, q_n, h * w)
    for y in range(h):
        for x in range(w):
            full[..., y * w + x] = bias_y[..., y] + bias_x[..., x]
    logits = (
        qh @ kh.transpose(-1, -2) / math.sqrt(dim // heads)
        + full
        - 100.0 * mask.flatten(1)[:, None, None].float()
    )
    expected = attn.proj((logits.softmax(-1) @ vh).transpose(1, 2).reshape(b, q_n, dim))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_rpb_changes_attention_and_none_arm_has_no_mlps() -> None:
    torch.manual_seed(0)
    with_rpb = GlobalCrossAttention(16, 2, "abs_log8", 8)
    without = GlobalCrossAttention(16, 2, "none", 8)
    assert without.rpb is None
    without.load_state_dict({k: v for k, v in with_rpb.state_dict().items() if not k.startswith("rpb.")})
    args = (
        torch.randn(1, 3, 16),
        torch.rand(1, 3, 4) * 0.4 + 0.3,
        torch.randn(1, 6, 16),
        torch.randn(1, 6, 16),
    )
    a = with_rpb(*args, (2, 3), torch.tensor([[48.0, 32.0]]))
    c = without(*args, (2, 3), torch.tensor([[48.0, 32.0]]))
    assert not torch.allclose(a, c, atol=1e-4)


@pytest.mark.parametrize(
    ("boxes", "image_wh", "mode"),
    [
        (torch.rand(1, 3, 2), torch.ones(1, 2), "linear"),
        (torch.rand(1, 3, 4), torch.ones(2, 2), "linear"),
        (torch.rand(1, 3, 4), torch.ones(1, 2), "cosine"),
    ],
)
def test_offsets_reject_bad_input(boxes: torch.Tensor, image_wh: torch.Tensor, mode: str) -> None:
    with pytest.raises(ValueError):
        box_rpb_offsets(boxes, image_wh, (2, 2), 16, mode)


def test_unknown_rpe_type_rejected() -> None:
    with pytest.raises(ValueError, match="rpe_type"):
        GlobalCrossAttention(16, 2, "axial")
