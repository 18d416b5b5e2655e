"""Every registered model gets the same checks for free (timm style): it builds by name, its forward has the
family's output shape, and a save/load round trip of its state dict reproduces its outputs."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from torch import nn

from detection.dcal import DCALOutput
from detection.registry import create_model, list_models, register_model
from vid2robot.policy import Vid2RobotConfig

SIZE = 64
CLASSES = 5
# Models whose registered size does not fit a 64 px CPU test get smaller settings; the rest build as named.
SMALL: dict[tuple[str, str], dict[str, Any]] = {
    ("classifier", "biformer"): {"depth": [1, 1, 1, 1], "embed_dim": [32, 64, 64, 64], "topks": [1, 2, 4, -2], "n_win": 2},
    **{("classifier", f"vit_{v}_patch16"): {"img_size": SIZE} for v in ("tiny", "small", "base")},
    **{("classifier", f"dcal_vit_{v}"): {"img_size": SIZE} for v in ("tiny", "small", "base")},
    ("detr_backbone", "vit"): {"depth": 1},
}  # fmt: skip
FAMILIES = ("classifier", "detr_backbone", "frame_encoder")
REGISTERED = [
    # the small and base sizes take 5-17 s each here: make test-slow
    pytest.param(
        family,
        name,
        id=f"{family}:{name}",
        marks=[pytest.mark.slow]
        if name.endswith(("_small", "_base", "small_patch16", "base_patch16"))
        else [],
    )
    for family in FAMILIES
    for name in list_models(family)
]


def build(family: str, name: str) -> nn.Module:
    torch.manual_seed(0)
    kwargs = SMALL.get((family, name), {})
    if family == "classifier":
        return create_model(family, name, num_classes=CLASSES, **kwargs)
    if family == "frame_encoder":
        config = Vid2RobotConfig(image_size=SIZE, frame_encoder=name, d_model=32, encoder_dim=32, encoder_depth=1,
                                 encoder_heads=2, num_heads=2, patch_size=16)  # fmt: skip
        return create_model(family, name, config=config)
    return create_model(family, name, **kwargs)


def output(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    return out.sa_logits if isinstance(out, DCALOutput) else out


def test_every_family_has_its_models() -> None:
    assert {"biformer_tiny", "dcal_vit_small", "vit_base_patch16"} <= set(list_models("classifier"))
    assert list_models("detr_backbone") == ["biformer_tiny", "convnet", "vit"]
    assert list_models("frame_encoder") == ["biformer", "convnet", "efficientnet_lite0", "vit"]


@pytest.mark.parametrize(("family", "name"), REGISTERED)
def test_each_registered_model_builds_runs_and_round_trips(family: str, name: str) -> None:
    model = build(family, name).eval()
    images = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        out = output(model, images)
    if family == "classifier":
        assert out.shape == (2, CLASSES)
    elif family == "detr_backbone":
        assert out.shape == (2, model.out_channels, SIZE // 16, SIZE // 16)
    else:
        assert out.ndim == 3 and out.shape[0] == 2 and out.shape[2] == 32
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = build(family, name)
    torch.manual_seed(1)  # a different init, so the load must carry the weights
    fresh.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(output(fresh.eval(), images), out)


def test_unknown_names_and_clashes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown classifier 'resnet50'; expected one of: biformer"):
        create_model("classifier", "resnet50")
    with pytest.raises(ValueError, match="unknown optimizer 'x'; expected one of: none"):
        create_model("optimizer", "x")
    with pytest.raises(ValueError, match="two classifier models are named 'biformer_tiny'"):
        register_model("classifier", "biformer_tiny")(nn.Identity)


def test_the_one_vit_starts_the_frame_encoder_and_the_detr_backbone_from_released_weights(tmp_path) -> None:
    # A checkpoint as DeiT releases them: {"model": state dict with timm's names}, trained at 224 px.
    from detection.vit import VisionTransformer

    released = VisionTransformer(img_size=224, embed_dim=64, depth=2, num_heads=2, num_classes=1000)
    path = tmp_path / "deit.pth"
    torch.save({"model": released.state_dict()}, path)
    config = Vid2RobotConfig(image_size=SIZE, frame_encoder="vit", encoder_dim=64, encoder_depth=2, encoder_heads=2,
                             encoder_checkpoint=str(path))  # fmt: skip
    encoder = create_model("frame_encoder", "vit", config=config)
    detr = create_model("detr_backbone", "vit", embed_dim=64, depth=2, num_heads=2, checkpoint_path=str(path))
    for backbone in (encoder.backbone, detr.body):
        loaded = backbone.state_dict()
        for key, value in released.state_dict().items():
            if key.startswith("head."):
                assert key not in loaded  # a feature backbone has no classifier
            elif key != "pos_embed":  # resized from the 14 x 14 grid to the model's
                torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
    with torch.no_grad():
        tokens = encoder.eval()(torch.rand(1, 3, SIZE, SIZE))
    assert tokens.shape == (1, (SIZE // 16) ** 2, config.d_model)
