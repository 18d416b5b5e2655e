"""BiFormer: official sizes and parameter names, BRA numerics against the official gather algorithm, backbone use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detection.biformer import (
    BiFormer,
    BiLevelRoutingAttention,
    biformer_base,
    biformer_small,
    biformer_tiny,
    load_official_checkpoint,
)

torch.set_num_threads(1)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("ctor", "official_m"), [(biformer_tiny, 13.1), (biformer_small, 25.5), (biformer_base, 56.8)]
)
def test_parameter_counts_match_official(ctor, official_m: float) -> None:
    n = _count(ctor(num_classes=1000)) / 1e6
    assert abs(n - official_m) / official_m < 0.01, f"{n:.3f}M vs official {official_m}M"


def test_official_parameter_names_and_shapes() -> None:
    """Names and shapes as rayleizhu/BiFormer models/biformer.py builds them (T config, read from the repo)."""
    sd = biformer_tiny().state_dict()
    expected = {
        "downsample_layers.0.0.weight": (32, 3, 3, 3),
        "downsample_layers.0.1.running_var": (32,),
        "downsample_layers.0.3.weight": (64, 32, 3, 3),
        "downsample_layers.3.0.weight": (512, 256, 3, 3),
        "stages.0.0.pos_embed.weight": (64, 1, 3, 3),
        "stages.0.0.attn.qkv.qkv.weight": (64 + 64 + 64, 64),
        "stages.0.0.attn.lepe.weight": (64, 1, 5, 5),
        "stages.0.0.attn.wo.weight": (64, 64),
        "stages.2.7.mlp.0.weight": (768, 256),
        "stages.2.7.mlp.3.weight": (256, 768),
        "stages.3.1.attn.qkv.weight": (1536, 512),
        "stages.3.1.attn.proj.bias": (512,),
        "stages.3.1.attn.lepe.weight": (512, 1, 5, 5),
        "norm.running_mean": (512,),
        "head.weight": (1000, 512),
    }
    for name, shape in expected.items():
        assert tuple(sd[name].shape) == shape, name
    assert "stages.3.1.attn.qkv.bias" not in sd  # official AttentionLePE: qkv_bias=False
    heads = [blk.attn.num_heads for stage in biformer_tiny().stages for blk in stage]
    assert heads[:2] == [2, 2] and heads[-1] == 8  # qk_dim // head_dim (32); stage 4 fixed 8


def _official_bra(m: BiLevelRoutingAttention, x: torch.Tensor) -> torch.Tensor:
    """The official algorithm (bra_legacy.py, auto_pad): pad, gather top-k regions' K/V, dense attention."""
    n, h_in, w_in, _ = x.shape
    p = m.n_win
    x = F.pad(x, (0, 0, 0, (-w_in) % p, 0, (-h_in) % p))
    _, h, w, _ = x.shape
    hw, ww = h // p, w // p
    win = x.view(n, p, hw, p, ww, -1).permute(0, 1, 3, 2, 4, 5).reshape(n, p * p, hw, ww, -1)
    q, kv = m.qkv.qkv(win).split([m.qk_dim, m.qk_dim + m.dim], dim=-1)
    q_win, k_win = q.mean([2, 3]), kv[..., : m.qk_dim].mean([2, 3])
    idx = ((q_win * m.scale) @ k_win.transpose(-2, -1)).topk(m.topk, dim=-1).indices  # [n, R, k]
    v_img = kv[..., m.qk_dim :].view(n, p, p, hw, ww, -1).permute(0, 5, 1, 3, 2, 4).reshape(n, -1, h, w)
    lepe = m.lepe(v_img).permute(0, 2, 3, 1)
    kv_pix = kv.reshape(n, p * p, hw * ww, -1)
    sel = torch.stack([kv_pix[b, idx[b]] for b in range(n)])  # [n, R, k, T, c]
    k_sel, v_sel = sel.split([m.qk_dim, m.dim], dim=-1)
    heads = m.num_heads
    k_sel = k_sel.reshape(n * p * p, m.topk * hw * ww, heads, -1).transpose(1, 2)
    v_sel = v_sel.reshape(n * p * p, m.topk * hw * ww, heads, -1).transpose(1, 2)
    q_pix = q.reshape(n * p * p, hw * ww, heads, -1).transpose(1, 2)
    attn = ((q_pix * m.scale) @ k_sel.transpose(-2, -1)).softmax(-1)
    out = (attn @ v_sel).transpose(1, 2).reshape(n, p, p, hw, ww, -1).permute(0, 1, 3, 2, 4, 5)
    out = m.wo(out.reshape(n, h, w, -1) + lepe)
    return out[:, :h_in, :w_in]


@pytest.mark.parametrize(("hw", "topk"), [((8, 8), 1), ((10, 7), 3)])
def test_bra_matches_official_algorithm(hw: tuple[int, int], topk: int) -> None:
    torch.manual_seed(0)
    m = BiLevelRoutingAttention(dim=32, num_heads=2, n_win=4, topk=topk, backend="reference")
    x = torch.randn(2, *hw, 32)
    torch.testing.assert_close(m(x), _official_bra(m, x), rtol=1e-4, atol=1e-5)


def test_bra_gradients_flow_to_every_parameter() -> None:
    m = BiLevelRoutingAttention(dim=32, num_heads=2, n_win=2, topk=2, backend="reference")
    m(torch.randn(1, 6, 6, 32, requires_grad=True)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_classifier_any_size_and_feature_backbone() -> None:
    torch.manual_seed(0)
    tiny = dict(depth=(1, 1, 1, 1), embed_dim=(32, 64, 64, 64), head_dim=32, topks=(1, 2, 4, -2), n_win=2)
    model = BiFormer(num_classes=5, **tiny).eval()
    assert model(torch.rand(2, 3, 50, 70)).shape == (2, 5)
    encoder = BiFormer(num_classes=0, **tiny).eval()  # frame encoder: pooled last-stage features
    assert encoder(torch.rand(2, 3, 64, 64)).shape == (2, 64)
    backbone = BiFormer(num_classes=0, out_indices=(1, 2, 3), **tiny).eval()
    feats = backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 8, 12), (1, 64, 4, 6), (1, 64, 2, 3)]


def test_detection_window_count_and_bad_inputs() -> None:
    model = biformer_tiny(num_classes=0, n_win=16, out_indices=(2,))
    assert model.stages[0][0].attn.n_win == 16
    with pytest.raises(ValueError, match="topk"):
        biformer_tiny(n_win=2)  # stage 3 routes to 16 regions, only 4 exist
    with pytest.raises(ValueError, match="out_indices"):
        biformer_tiny(out_indices=(4,))
    with pytest.raises(ValueError, match="images"):
        model(torch.rand(3, 64, 64))


def test_official_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    src = biformer_tiny(num_classes=10).eval()
    path = tmp_path / "biformer_tiny_in1k.pth"
    torch.save({"model": src.state_dict()}, path)
    x = torch.rand(1, 3, 64, 64)
    same = biformer_tiny(num_classes=10, checkpoint_path=path).eval()
    torch.testing.assert_close(same(x), src(x))
    other_head = biformer_tiny(num_classes=3)
    assert load_official_checkpoint(other_head, path) == ["head.bias", "head.weight"]
    torch.save({"model": {"stages.0.0.attn.qkv.weight": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not fit"):
        load_official_checkpoint(biformer_tiny(), tmp_path / "bad.pth")


def test_bra_flex_backend_matches_reference_forward() -> None:
    torch.manual_seed(0)
    m = BiLevelRoutingAttention(dim=32, num_heads=2, n_win=2, topk=2, backend="reference")
    x = torch.randn(1, 16, 16, 32)
    with torch.no_grad():
        ref = m(x)
        m.backend = "flex"
        torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["flex", "triton"])
def test_bra_gpu_backends_match_reference_forward_and_backward(backend: str) -> None:
    torch.manual_seed(0)
    m = BiLevelRoutingAttention(dim=64, num_heads=2, n_win=4, topk=4, backend="reference").cuda()
    x = torch.randn(2, 32, 32, 64, device="cuda", requires_grad=True)
    ref = m(x)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), x)
    m.backend = backend
    out = m(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(out, ref, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(grad, ref_grad, rtol=2e-3, atol=2e-3)
