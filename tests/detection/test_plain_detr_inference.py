"""Detector API (batched predict, threshold, top-k, save/load) and ONNX parity with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detection.plain_detr import Detector, PlainDETR, tiny_config
from detection.plain_detr.export import export_onnx, onnx_parity


@pytest.fixture(scope="module")
def detector() -> Detector:
    torch.manual_seed(0)
    model = PlainDETR(tiny_config(4))
    for head in [*model.box_heads, *model.class_heads]:  # non-trivial outputs for an untrained model
        torch.nn.init.normal_(head.weight if hasattr(head, "weight") else head.layers[-1].weight, std=0.5)
    return Detector(model, input_size=128, score_threshold=0.0, top_k=20)


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (120, 200, 3), dtype=np.uint8),
        rng.integers(0, 256, (160, 90, 3), dtype=np.uint8),
    ]


def test_predict_batched_in_image_pixels(detector: Detector) -> None:
    images = _images()
    boxes, scores, labels = detector.predict(images)
    assert len(boxes) == len(scores) == len(labels) == 2
    for img, b, s, lab in zip(images, boxes, scores, labels, strict=True):
        h, w = img.shape[:2]
        assert b.shape == (20, 4) and s.shape == (20,) and lab.shape == (20,)
        assert bool((b[:, 0::2] <= w).all() and (b[:, 1::2] <= h).all() and (b >= 0).all())
        assert bool((s[:-1] >= s[1:]).all()) and int(lab.max()) < 4


def test_threshold_and_top_k(detector: Detector) -> None:
    _, scores, _ = detector.predict(_images())
    cut = float(scores[0].median())
    strict = Detector(detector.model, input_size=128, score_threshold=cut, top_k=5)
    _, s2, _ = strict.predict(_images())
    assert len(s2[0]) <= 5 and bool((s2[0] >= cut).all())


def test_save_and_from_checkpoint_round_trip(detector: Detector, tmp_path: Path) -> None:
    folder = detector.save(tmp_path / "export")
    loaded = Detector.from_checkpoint(folder, score_threshold=0.0, top_k=20)
    assert loaded.input_size == 128
    a, b = detector.predict(_images()), loaded.predict(_images())
    torch.testing.assert_close(a[0][1], b[0][1])
    with pytest.raises(FileNotFoundError, match="no detector checkpoint at"):
        Detector.from_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("bad", [[], [np.zeros((10, 10), np.uint8)], [np.zeros((10, 10, 3), np.float32)]])
def test_predict_rejects_bad_images(detector: Detector, bad: list) -> None:
    with pytest.raises(ValueError):
        detector.predict(bad)


def test_onnx_export_matches_pytorch(detector: Detector, tmp_path: Path) -> None:
    path = export_onnx(detector.model, tmp_path / "plain_detr.onnx", 128, 128, top_k=20)
    diff = onnx_parity(detector.model, path, torch.rand(2, 3, 128, 128), top_k=20)
    assert diff["boxes"] < 1e-2 and diff["scores"] < 1e-4 and diff["labels"] == 0, diff
