"""Synthetic COCO generator, COCO-format dataset + DETR augmentation, and the COCOeval wrapper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detection.coco import CocoDetection, CocoEvaluator, collate, format_table, generate_synthetic_coco
from detection.coco.synthetic import CLASSES, make_image, write_split
from detection.coco.transforms import DetrAugment, EvalResize, crop, hflip, resize


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_coco(tmp_path_factory.mktemp("shapes"), 24, 8, seed=3, size=96, max_side=72)


def test_synthetic_set_is_valid_coco(shapes: Path) -> None:
    data = json.loads((shapes / "train/annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == list(CLASSES)
    assert len(data["images"]) == 24 and all(
        (shapes / "train/images" / i["file_name"]).is_file() for i in data["images"]
    )
    areas = np.array([a["area"] for a in data["annotations"]])
    assert (areas < 32**2).any() and (areas >= 32**2).any()  # COCO-small and larger objects
    assert {a["category_id"] for a in data["annotations"]} == set(range(1, len(CLASSES) + 1))
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96 and 0 < a["area"] <= w * h


def test_synthetic_boxes_are_tight_and_seeded() -> None:
    img1, objs1 = make_image(np.random.default_rng(5), 64, 3, 10, 40)
    img2, objs2 = make_image(np.random.default_rng(5), 64, 3, 10, 40)
    assert np.array_equal(img1, img2) and objs1 == objs2
    with pytest.raises(ValueError):
        write_split(Path("/nonexistent"), 0, seed=0)


def test_transforms_move_boxes_with_pixels() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    img[10:20, 5:25] = 255
    boxes, labels = np.array([[5.0, 10.0, 25.0, 20.0]], np.float32), np.array([1])
    f_img, f_boxes, _ = hflip((img, boxes, labels))
    ys, xs = np.nonzero(f_img[..., 0])
    np.testing.assert_allclose(f_boxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    r_img, r_boxes, _ = resize((img, boxes, labels), 80, None)
    assert r_img.shape[:2] == (80, 120)
    np.testing.assert_allclose(r_boxes[0], [10, 20, 50, 40])
    _, c_boxes, _ = crop((img, boxes, labels), 12, 10, 20, 30)
    np.testing.assert_allclose(c_boxes[0], [0, 0, 15, 8])
    _, gone, _ = crop((img, boxes, labels), 25, 30, 10, 10)
    assert len(gone) == 0


def test_augment_keeps_boxes_inside(shapes: Path) -> None:
    import random

    random.seed(0)
    ds = CocoDetection(shapes / "train/images", shapes / "train/annotations.json", DetrAugment(64))
    for i in range(8):
        img, target = ds[i]
        assert img.shape[0] == 3 and float(img.min()) >= 0.0 and float(img.max()) <= 1.0
        assert max(img.shape[1:]) <= round(64 * 1333 / 800)
        b = target["boxes"]
        assert bool(((b >= 0) & (b <= 1)).all()) and len(b) == len(target["labels"])


def test_dataset_targets_and_collate(shapes: Path) -> None:
    ds = CocoDetection(shapes / "val/images", shapes / "val/annotations.json", EvalResize(48))
    assert ds.num_classes == len(CLASSES) and len(ds) == 8
    img, target = ds[0]
    assert img.shape == (3, 48, 48) and target["orig_size"].tolist() == [96, 96]
    ann = ds.coco.imgToAnns[int(target["image_id"])][0]
    x, y, w, h = ann["bbox"]
    cx, cy, bw, bh = target["boxes"][0].tolist()
    assert (cx, cy, bw, bh) == pytest.approx(((x + w / 2) / 96, (y + h / 2) / 96, w / 96, h / 96), abs=1e-5)
    assert int(target["labels"][0]) == ds.cat_to_label[ann["category_id"]]
    small = CocoDetection(shapes / "val/images", shapes / "val/annotations.json", EvalResize(32))
    images, mask, targets = collate([ds[0], small[1]])
    assert images.shape == (2, 3, 48, 48) and len(targets) == 2
    assert not mask[0].any() and mask[1, 32:].all() and not mask[1, :32, :32].any()
    with pytest.raises(ValueError):
        CocoDetection(shapes / "val/images", shapes / "missing.json", EvalResize(48))


def test_coco_eval_perfect_shifted_and_empty(shapes: Path) -> None:
    ds = CocoDetection(shapes / "val/images", shapes / "val/annotations.json", EvalResize(48))
    perfect, shifted, empty = (CocoEvaluator(ds.coco, ds.cat_ids) for _ in range(3))
    for image_id in ds.ids:
        anns = ds.coco.imgToAnns[image_id]
        xyxy = np.array(
            [
                [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                for a in anns
            ]
        )
        labels = np.array([ds.cat_to_label[a["category_id"]] for a in anns])
        perfect.update(image_id, xyxy, np.ones(len(anns)), labels)
        widths = xyxy[:, 2:3] - xyxy[:, 0:1]
        shifted.update(image_id, xyxy + 0.1 * widths, np.ones(len(anns)), labels)
        empty.update(image_id, np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int))
    p, s, e = perfect.compute(), shifted.compute(), empty.compute()
    assert p["AP"] == pytest.approx(100.0) and p["AP50"] == pytest.approx(100.0)
    assert s["AP50"] == pytest.approx(100.0) and 0.0 < s["AP"] < 90.0  # IoU ~0.68: passes 0.5, fails >= 0.7
    assert e["AP"] == 0.0
    assert "| perfect |" in format_table({"perfect": p})
    with pytest.raises(ValueError):
        perfect.update(1, np.zeros((1, 4)), np.ones(1), np.array([99]))


def test_collate_is_float_and_bool(shapes: Path) -> None:
    ds = CocoDetection(shapes / "val/images", shapes / "val/annotations.json", EvalResize(48))
    images, mask, _ = collate([ds[0]])
    assert images.dtype == torch.float32 and mask.dtype == torch.bool
