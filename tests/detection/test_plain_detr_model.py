"""Plain-DETR stages: shapes, the hybrid group mask, eval = one-to-one only, look-forward-twice, proposals."""

from __future__ import annotations

import pytest
import torch

from detection.plain_detr import PlainDETR, PlainDETRConfig, tiny_config
from detection.plain_detr.model import hybrid_self_attn_mask
from detection.plain_detr.proposals import ProposalGenerator


@pytest.fixture(scope="module")
def model() -> PlainDETR:
    torch.manual_seed(0)
    return PlainDETR(tiny_config(num_classes=3))


def test_training_outputs_shapes(model: PlainDETR) -> None:
    model.train()
    images = torch.rand(2, 3, 96, 128)
    out = model(images)
    cfg = model.config
    assert len(out["one2one"]) == len(out["one2many"]) == cfg.num_layers
    logits, boxes = out["one2one"][-1]
    assert logits.shape == (2, cfg.num_queries_one2one, 3) and boxes.shape == (2, cfg.num_queries_one2one, 4)
    assert out["one2many"][-1][0].shape == (2, cfg.num_queries_one2many, 3)
    # Proposals on strides 8/16/32/64 from a 6x8 stride-16 map: 12x16 + 6x8 + 3x4 + 1x2 anchors (2x2 convs).
    assert out["enc"][0].shape == (2, 12 * 16 + 6 * 8 + 3 * 4 + 1 * 2, 1)
    assert bool(((boxes >= 0) & (boxes <= 1)).all())


def test_group_mask_blocks_both_directions() -> None:
    mask = hybrid_self_attn_mask(2, 3, torch.device("cpu"))
    assert mask[:2, :2].sum() == 0 and mask[2:, 2:].sum() == 0
    assert bool(mask[:2, 2:].all()) and bool(mask[2:, :2].all())


def test_eval_runs_one2one_only_and_equals_training_one2one(model: PlainDETR) -> None:
    """With the group mask, the one-to-one queries never see the one-to-many ones, so evaluating only the
    one-to-one group (300 at eval in the paper) gives exactly the training-mode one-to-one predictions."""
    images = torch.rand(2, 3, 128, 128)
    model.train()
    with torch.no_grad():
        train_logits, train_boxes = model(images)["one2one"][-1]
    model.eval()
    with torch.no_grad():
        out = model(images)
        logits, boxes = model.predict_raw(images)
    assert "one2many" not in out
    torch.testing.assert_close(logits, train_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(boxes, train_boxes, atol=1e-5, rtol=1e-4)


def test_without_group_mask_one2many_would_leak(model: PlainDETR) -> None:
    """The check above can fail: dropping the mask changes the one-to-one outputs."""
    images = torch.rand(1, 3, 128, 128)
    model.eval()
    with torch.no_grad():
        mem = model.pre_transformer(model.extract_feat(images), None, (128, 128))
        dec = model.pre_decoder(mem, model.config.num_queries)
        masked = model.forward_decoder(mem, dec, hybrid_self_attn_mask(50, 100, images.device))[0][-1][:, :50]
        unmasked = model.forward_decoder(mem, dec, None)[0][-1][:, :50]
        ref = model.predict_raw(images)[0]
    torch.testing.assert_close(masked, ref, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(unmasked, ref, atol=1e-5)


@pytest.mark.parametrize("look_forward_twice", [True, False])
def test_look_forward_twice_gradient(look_forward_twice: bool) -> None:
    """Layer 2's box loss reaches layer 1's box head only with look-forward-twice."""
    torch.manual_seed(0)
    model = PlainDETR(tiny_config(num_classes=2))
    model.decoder.look_forward_twice = look_forward_twice
    for head in model.box_heads:  # non-zero deltas so the refinement chain carries gradient
        torch.nn.init.normal_(head.layers[-1].weight, std=0.01)
    model.train()
    boxes_layer2 = model(torch.rand(1, 3, 96, 96))["one2one"][1][1]
    boxes_layer2.sum().backward()
    grad = model.box_heads[0].layers[-1].weight.grad
    assert (grad is not None and grad.abs().sum() > 0) == look_forward_twice


def test_proposals_mark_padding_invalid() -> None:
    gen = ProposalGenerator(32, 16, (8, 16, 32, 64))
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[:, :, 2:] = True  # right half padded
    feats, anchors, valid = gen(torch.randn(1, 16, 32), mask.flatten(1), (4, 4), torch.tensor([[32.0, 64.0]]))
    assert feats.shape == (1, 64 + 16 + 4 + 1, 32)
    level16 = slice(64, 80)
    assert not bool(valid[0, level16].view(4, 4)[:, 2:].any())
    assert bool(torch.isinf(anchors[0, level16].view(4, 4, 4)[:, 2:]).all())
    # anchors sit at cell centres in pixels over the valid image size: x = (j + 0.5) * 16 / 32 for j < 2
    cx = anchors[0, level16, 0].view(4, 4)[0, :2].sigmoid()
    torch.testing.assert_close(cx, torch.tensor([0.25, 0.75]))


def test_padding_mask_is_used(model: PlainDETR) -> None:
    model.eval()
    images = torch.rand(1, 3, 128, 128)
    mask = torch.zeros(1, 128, 128, dtype=torch.bool)
    mask[:, :, 64:] = True
    with torch.no_grad():
        a = model.predict_raw(images)[1]
        b = model.predict_raw(images, mask)[1]
    assert not torch.allclose(a, b)


def test_vit_backbone_runs() -> None:
    cfg = tiny_config(2, backbone="vit", backbone_kwargs={"embed_dim": 64, "depth": 1, "num_heads": 2})
    logits, boxes = PlainDETR(cfg).eval().predict_raw(torch.rand(1, 3, 112, 96))
    assert logits.shape == (1, 50, 2) and boxes.shape == (1, 50, 4)


def test_biformer_backbone_runs() -> None:
    pytest.importorskip("detection.biformer")
    cfg = tiny_config(2, backbone="biformer_tiny", backbone_kwargs={})
    logits, _ = PlainDETR(cfg).eval().predict_raw(torch.rand(1, 3, 112, 112))
    assert logits.shape == (1, 50, 2)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rpe_type": "axial"},
        {"d_model": 48},
        {"backbone": "resnet"},
        {"proposal_strides": (12,)},
        {"num_heads": 5},
    ],
)
def test_config_rejects_bad_values(overrides: dict) -> None:
    with pytest.raises(ValueError):
        tiny_config(3, **overrides)


def test_config_round_trip_plain_containers() -> None:
    cfg = PlainDETRConfig(num_classes=7)
    data = cfg.to_dict()
    assert isinstance(data["proposal_strides"], list)
    assert PlainDETRConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown"):
        PlainDETRConfig.from_dict({**data, "bogus": 1})


def test_bad_images_rejected(model: PlainDETR) -> None:
    with pytest.raises(ValueError):
        model.predict_raw(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 64, 64), torch.zeros(1, 32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="too small"):
        model.eval().predict_raw(torch.rand(1, 3, 32, 32))  # 2x2 map cannot be pooled to stride 64
    model.train()
    with pytest.raises(ValueError, match="proposals"):
        model(torch.rand(1, 3, 64, 64))  # 8x8 + 4x4 + 2x2 + 1 = 85 anchors < 150 training queries


def test_valid_image_size_is_exact_in_pixels(model: PlainDETR) -> None:
    """Boxes are normalised to the unpadded image, so BoxRPB and anchors need its size in pixels, not in whole
    feature cells: a 100x120 image padded to 128x128 has a 120 x 100 (w x h) valid area."""
    images = torch.rand(2, 3, 128, 128)
    mask = torch.zeros(2, 128, 128, dtype=torch.bool)
    mask[1, 100:, :] = True
    mask[1, :, 120:] = True
    feat = model.extract_feat(images)
    mem = model.pre_transformer(feat, mask, (128, 128))
    torch.testing.assert_close(mem.image_wh, torch.tensor([[128.0, 128.0], [120.0, 100.0]]))
    unpadded = model.pre_transformer(model.extract_feat(torch.rand(1, 3, 100, 120)), None, (100, 120))
    torch.testing.assert_close(unpadded.image_wh, torch.tensor([[120.0, 100.0]]))


def test_a_prebuilt_backbone_replaces_the_configured_one() -> None:
    """``PlainDETR(config, backbone=...)`` (how the mmdet plugin passes a registry-built backbone): the module is
    used as is and its ``out_channels`` sizes the input projection."""
    from detection.plain_detr.backbones import ConvNet

    backbone = ConvNet((8, 8, 16, 32))
    model = PlainDETR(tiny_config(num_classes=2), backbone=backbone).eval()
    assert model.backbone is backbone and model.input_proj[0].in_channels == 32
    logits, boxes = model.predict_raw(torch.rand(1, 3, 96, 96))
    assert logits.shape == (1, 50, 2) and boxes.shape == (1, 50, 4)
