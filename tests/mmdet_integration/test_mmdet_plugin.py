"""The mmdetection path (detection/mmdet_plugin.py): the config builds through ``custom_imports``, one training
iteration, predictions in original-image pixels, parity with the core model, and mmdet's Runner training and
evaluating (CocoMetric) on a synthetic COCO-format set. Needs the ``mmdet`` extra: ``make mmdet``."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

# A real submodule: a bare "mmdet" could resolve to a namespace package of the same name on sys.path.
pytest.importorskip(
    "mmdet.models", reason="the mmdet extra is not installed (make mmdet builds mmcv with CPU ops)"
)

from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from detection.coco.synthetic import generate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "detection" / "configs" / "plain_detr_boxrpb_synthetic.py"


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    """The shipped config over a tiny synthetic set (6 train / 2 val images, 96 px), found through the config's
    PLAIN_DETR_DATA variable; batches of 2."""
    root = generate(tmp_path_factory.mktemp("shapes"), 6, 2, seed=0, size=96, min_side=12, max_side=64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAIN_DETR_DATA", str(root))
        config = Config.fromfile(str(CONFIG))
    assert config.val_evaluator.ann_file == f"{root}/val/annotations.json"
    init_default_scope(config.default_scope)  # as the Runner does: type names resolve in mmdet first
    config.train_dataloader.batch_size = 2
    config.val_dataloader.batch_size = 2
    yield config


def build_model(cfg: Config, seed: int = 0):
    from mmdet.registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(cfg: Config, split: str, n: int = 2, seed: int = 0) -> dict:
    from mmdet.registry import DATASETS

    np.random.seed(seed)  # mmcv's random transforms draw from numpy's global generator
    dataset = DATASETS.build(cfg[f"{split}_dataloader"].dataset)
    return pseudo_collate([dataset[i] for i in range(n)])


def test_config_builds_the_registered_detector_and_backbone(cfg: Config) -> None:
    from mmdet.registry import MODELS

    from detection.mmdet_plugin import BiFormer, PlainDETRDetector
    from detection.plain_detr import PlainDETR

    model = build_model(cfg)
    assert isinstance(model, PlainDETRDetector) and isinstance(model.detr, PlainDETR)
    assert isinstance(model.detr.backbone.body, BiFormer)
    assert model.detr.config.num_classes == 5 and model.detr.config.rpe_type == "linear"
    # The stride-16 stage is the last one kept; BiFormer-T's stage 4 is not built into the detector.
    assert len(model.detr.backbone.body.body.stages) == 3
    feats = MODELS.build(dict(type="BiFormer", arch="tiny", out_indices=(1, 2)))(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 8, 12), (1, 256, 4, 6)]


def test_one_training_iteration(cfg: Config) -> None:
    model = build_model(cfg)
    model.train()
    data = model.data_preprocessor(batch(cfg, "train"), True)
    inputs, samples = data["inputs"], data["data_samples"]
    assert float(inputs.min()) >= 0.0 and float(inputs.max()) <= 1.0  # RGB in [0, 1]: the model normalises
    losses = model(inputs, samples, mode="loss")
    assert {"loss", "cls", "l1", "giou", "enc", "one2many"} <= set(losses)
    assert all(math.isfinite(float(v)) for v in losses.values())
    total, _ = model.parse_losses(losses)
    assert torch.equal(total, losses["loss"])  # the detached logs are not added to the optimised total

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim_wrapper.backward(total)
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    for part in (
        "detr.backbone.body.body.stages.2",
        "detr.decoder",
        "detr.class_heads.0",
        "detr.enc_box_head",
    ):
        assert any(float(g.abs().sum()) > 0 for n, g in grads.items() if n.startswith(part)), part
    optim_wrapper.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) > 0.9 * len(before)


def test_stages_give_exactly_the_core_model_outputs(cfg: Config) -> None:
    """The mmdet stages compose the core's stages; in training (hybrid queries) and eval they must give what
    ``PlainDETR.forward`` gives for the same padded batch."""
    model = build_model(cfg)
    data = model.data_preprocessor(batch(cfg, "train"), True)
    inputs, samples = data["inputs"], data["data_samples"]
    pad_mask = torch.ones(inputs.shape[0], *inputs.shape[-2:], dtype=torch.bool)
    for mask, sample in zip(pad_mask, samples, strict=True):
        h, w = sample.img_shape
        mask[:h, :w] = False
    assert samples[0].img_shape != samples[1].img_shape  # a padded image in the batch: the masks matter
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            ours = model.forward_transformer(model.extract_feat(inputs), samples)
            core = model.detr(inputs, pad_mask)
        assert set(ours) == set(core) == ({"one2one", "enc", "one2many"} if training else {"one2one", "enc"})
        for key in ours:
            torch.testing.assert_close(ours[key], core[key], rtol=0, atol=0)


def test_predict_gives_boxes_in_original_image_pixels(cfg: Config) -> None:
    model = build_model(cfg)
    model.eval()
    data = model.data_preprocessor(batch(cfg, "val"), False)
    with torch.no_grad():
        results = model(data["inputs"], data["data_samples"], mode="predict")
        logits, boxes = model(data["inputs"], data["data_samples"], mode="tensor")
    assert len(results) == 2
    for i, sample in enumerate(results):
        assert sample.ori_shape == (96, 96) and sample.img_shape == (128, 128)
        pred = sample.pred_instances
        n = min(100, logits.shape[1] * logits.shape[2])
        assert pred.bboxes.shape == (n, 4) and pred.scores.shape == (n,) and pred.labels.shape == (n,)
        assert bool((pred.scores[:-1] >= pred.scores[1:]).all())
        assert bool(((pred.labels >= 0) & (pred.labels < 5)).all())
        assert bool(((pred.bboxes >= 0) & (pred.bboxes <= 96)).all())
        assert bool((pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all())
        # The best detection by hand: the best query x class score, its cxcywh box in the 128 px input, / (4/3).
        best = int(logits[i].sigmoid().flatten().argmax())
        cx, cy, w, h = (boxes[i, best // 5] * 128).tolist()
        expected = torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * 0.75
        torch.testing.assert_close(pred.bboxes[0], expected.clamp(0, 96), atol=1e-3, rtol=1e-4)
        assert int(pred.labels[0]) == best % 5


def test_a_backbone_at_the_wrong_stride_is_refused(cfg: Config) -> None:
    """mmdet's own backbones plug in through ``backbone_channels``; a stride-32 map would silently misplace
    every box, so it is refused."""
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(type="ResNet", depth=18, out_indices=(2,))
    model_cfg.backbone_channels = 256
    model = build_model(Config(dict(model=model_cfg)))
    assert model.detr.backbone.body.is_init  # its own init_cfg ran, though it sits inside the core model
    model.eval()
    with torch.no_grad():
        assert model._forward(torch.rand(1, 3, 96, 128))[1].shape == (1, 50, 4)
    model_cfg.backbone = dict(type="ResNet", depth=18, out_indices=(3,))
    model_cfg.backbone_channels = 512
    with pytest.raises(ValueError, match="stride 16"):
        build_model(Config(dict(model=model_cfg))).extract_feat(torch.rand(1, 3, 96, 128))


def test_runner_trains_evaluates_and_reloads_with_coco_metric(cfg: Config, tmp_path: Path) -> None:
    run_cfg = copy.deepcopy(cfg)
    run_cfg.work_dir = str(tmp_path / "train")
    run_cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=1, val_interval=1)  # 3 iterations + val
    run_cfg.default_hooks.logger.interval = 1
    run_cfg.default_hooks.checkpoint.interval = 1
    run_cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(run_cfg)
    runner.train()
    assert runner.iter == len(runner.train_loop.dataloader) == 3
    metrics = runner.val()
    assert {"coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_s"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("coco/bbox_mAP", "coco/bbox_mAP_50"))

    # Evaluating the saved checkpoint, as mmdet's tools/test.py does, with torch's default weights_only=True
    # load: the plugin allow-listed the message hub's types (detection/mmengine_checkpoints.py).
    test_cfg = copy.deepcopy(run_cfg)
    test_cfg.work_dir = str(tmp_path / "test")
    test_cfg.load_from = str(tmp_path / "train" / "epoch_1.pth")
    tester = Runner.from_cfg(test_cfg)
    assert tester.test() == metrics
    trained = runner.model.state_dict()
    for name, value in tester.model.state_dict().items():
        assert torch.equal(value, trained[name]), name
