"""DCAL and its ViT backbone: sizes, GLCA selection = rollout top-R, PWCA semantics, losses, inference, loading."""

from __future__ import annotations

import math

import pytest
import torch

from detection.dcal import DCAL, UncertaintyWeighting, attention_rollout, dcal_vit
from detection.vit import (
    VisionTransformer,
    load_vit_checkpoint,
    vit_base_patch16,
    vit_small_patch16,
    vit_tiny_patch16,
)

torch.set_num_threads(1)


def _small(num_classes: int = 5, local_ratio: float = 0.1) -> DCAL:
    torch.manual_seed(0)
    backbone = VisionTransformer(img_size=32, patch_size=8, num_classes=0, embed_dim=32, depth=3, num_heads=2)
    return DCAL(backbone, num_classes=num_classes, local_ratio=local_ratio)


@pytest.mark.parametrize(
    ("ctor", "official"),
    [(vit_tiny_patch16, 5_717_416), (vit_small_patch16, 22_050_664), (vit_base_patch16, 86_567_656)],
)
def test_vit_parameter_counts_match_deit(ctor, official: int) -> None:
    assert sum(p.numel() for p in ctor(num_classes=1000).parameters()) == official


def test_output_shapes_and_local_count() -> None:
    model = _small(local_ratio=0.3).train()
    out = model(torch.rand(4, 3, 32, 32))
    assert out.sa_logits.shape == out.glca_logits.shape == out.pwca_logits.shape == (4, 5)
    assert out.sa_embedding.shape == out.glca_embedding.shape == (4, 32)
    assert out.local_index.shape == (4, math.ceil(0.3 * 16))
    assert model.embed(torch.rand(2, 3, 32, 32)).shape == (2, 64)


def test_glca_selection_is_rollout_top_r() -> None:
    model = _small(local_ratio=0.25).eval()
    x = torch.rand(3, 3, 32, 32)
    out = model(x)
    tokens, maps = model.backbone.embed(x), []
    for blk in model.backbone.blocks:
        tokens, a = blk(tokens, need_weights=True)
        maps.append(a)
    n = maps[0].shape[-1]
    acc = torch.eye(n).repeat(3, 1, 1)
    for a in maps:  # S_hat_l = (0.5 A_l + 0.5 I) S_hat_{l-1}
        acc = torch.bmm(0.5 * a + 0.5 * torch.eye(n), acc)
    torch.testing.assert_close(attention_rollout(maps), acc)
    expected = acc[:, 0, 1:].topk(4, dim=-1).indices + 1
    assert torch.equal(out.local_index.sort(-1).values, expected.sort(-1).values)
    assert torch.allclose(acc.sum(-1), torch.ones(3, n), atol=1e-5)  # rows stay distributions


def test_pwca_only_in_training_and_uses_the_distractor() -> None:
    model = _small()
    x = torch.rand(3, 3, 32, 32)
    model.eval()
    out = model(x)
    assert out.pwca_logits is None and out.pwca_embedding is None
    alone = model(x[:1])  # eval output of an image does not depend on its batch
    torch.testing.assert_close(alone.sa_logits, out.sa_logits[:1])
    model.train()
    # Pairing each image with itself duplicates K/V: one softmax over [K1; K1] equals plain self-attention.
    same = model(x, distractor_index=torch.arange(3))
    torch.testing.assert_close(same.pwca_logits, same.sa_logits, rtol=1e-4, atol=1e-5)
    other = model(x, distractor_index=torch.tensor([1, 2, 0]))
    assert not torch.allclose(other.pwca_logits, other.sa_logits, atol=1e-4)
    other.pwca_logits.sum().backward()  # PWCA trains the shared SA weights, not GLCA's own
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.glca.attn.qkv.weight.grad is None


def test_inference_sums_probabilities() -> None:
    model = _small().eval()
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    torch.testing.assert_close(
        model.predict_proba(x), out.sa_logits.softmax(-1) + out.glca_logits.softmax(-1)
    )


def test_uncertainty_weighting_formula_and_gradient() -> None:
    weighting = UncertaintyWeighting(3)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.0, 1.0, -1.0]))
    losses = [torch.tensor(2.0), torch.tensor(3.0), torch.tensor(4.0)]
    expected = 0.5 * (2.0 + 3.0 * math.exp(-1) + 1.0 + 4.0 * math.exp(1) - 1.0)
    total = weighting(losses)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    total.backward()
    assert weighting.log_vars.grad is not None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="local_ratio"):
        _small(local_ratio=0.0)
    with pytest.raises(ValueError, match="variant"):
        dcal_vit("huge")
    with pytest.raises(ValueError, match="multiples"):
        _small()(torch.rand(1, 3, 30, 32))


def test_vit_checkpoint_resizes_position_grid(tmp_path) -> None:
    torch.manual_seed(0)
    src = VisionTransformer(img_size=32, patch_size=8, num_classes=7, embed_dim=32, depth=1, num_heads=2)
    torch.save({"model": src.state_dict()}, tmp_path / "deit.pth")
    dst = VisionTransformer(
        img_size=(64, 32), patch_size=8, num_classes=3, embed_dim=32, depth=1, num_heads=2
    )
    assert load_vit_checkpoint(dst, tmp_path / "deit.pth") == ["head.bias", "head.weight"]
    assert dst.pos_embed.shape == (1, 1 + 8 * 4, 32)
    torch.testing.assert_close(dst.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)


def test_conv_stem_tokens_and_bad_patch() -> None:
    vit = VisionTransformer(
        img_size=32, patch_size=8, num_classes=0, embed_dim=32, depth=1, num_heads=2, stem="conv"
    )
    assert vit.embed(torch.rand(2, 3, 32, 32)).shape == (2, 1 + 16, 32)
    assert [m.stride for m in vit.patch_embed.stem if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 3
    with pytest.raises(ValueError, match="power-of-two"):
        VisionTransformer(
            img_size=36, patch_size=12, num_classes=0, embed_dim=32, depth=1, num_heads=2, stem="conv"
        )
