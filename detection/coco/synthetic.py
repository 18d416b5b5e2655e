"""A synthetic COCO-format detection set made by the project: shapes of several classes on cluttered backgrounds,
object sizes from COCO-small to COCO-large, exact boxes and areas from the drawn pixels.

``python -m detection.coco.synthetic --out data/shapes --train 400 --val 100`` writes
``{train,val}/images/*.png`` and ``{train,val}/annotations.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("circle", "rectangle", "triangle", "cross", "ring")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Colour gradient + noise + clutter (random lines and dots that are not objects)."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    img = (c0 * (1 - t) + c1 * t).repeat(size, axis=1)
    img = img + rng.normal(0, 12, (size, size, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 8))):
        p0, p1 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(int(rng.integers(5, 30))):
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, p, int(rng.integers(1, 3)), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    return img


def _shape_mask(
    rng: np.random.Generator, cls: int, size: int, side: float, cx: float, cy: float
) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    r = side / 2
    angle = rng.uniform(0, 2 * math.pi)
    if CLASSES[cls] == "circle":
        cv2.circle(mask, (round(cx), round(cy)), max(1, round(r)), 1, -1, cv2.LINE_AA)
    elif CLASSES[cls] == "rectangle":
        aspect = rng.uniform(0.5, 2.0)
        w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        cv2.rectangle(
            mask, (round(cx - w / 2), round(cy - h / 2)), (round(cx + w / 2), round(cy + h / 2)), 1, -1
        )
    elif CLASSES[cls] == "triangle":
        pts = [
            (cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3))
            for k in range(3)
        ]
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, cv2.LINE_AA)
    elif CLASSES[cls] == "cross":
        t = max(1, round(side * 0.12))
        for a in (angle, angle + math.pi / 2):
            p0 = (round(cx - r * math.cos(a)), round(cy - r * math.sin(a)))
            p1 = (round(cx + r * math.cos(a)), round(cy + r * math.sin(a)))
            cv2.line(mask, p0, p1, 1, t, cv2.LINE_AA)
    else:  # ring
        cv2.circle(mask, (round(cx), round(cy)), max(1, round(r)), 1, max(1, round(side * 0.12)), cv2.LINE_AA)
    return mask


def _iou(a: list[float], b: list[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def make_image(
    rng: np.random.Generator, size: int, max_objects: int, min_side: float, max_side: float
) -> tuple[np.ndarray, list[dict]]:
    """One RGB ``uint8`` image and its objects ``{"category": i, "bbox": [x, y, w, h], "area": pixels}``."""
    img = _background(rng, size)
    objects: list[dict] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            side = math.exp(rng.uniform(math.log(min_side), math.log(max_side)))
            cx, cy = rng.uniform(side / 2, size - side / 2, 2) if side < size else (size / 2, size / 2)
            cls = int(rng.integers(len(CLASSES)))
            mask = _shape_mask(rng, cls, size, side, cx, cy)
            ys, xs = np.nonzero(mask)
            if len(xs) < 4:
                continue
            bbox = [
                float(xs.min()),
                float(ys.min()),
                float(xs.max() - xs.min() + 1),
                float(ys.max() - ys.min() + 1),
            ]
            if any(_iou(bbox, o["bbox"]) > 0.1 for o in objects):
                continue
            colour = rng.integers(0, 256, 3)
            while np.abs(colour.astype(int) - img[int(cy) % size, int(cx) % size].astype(int)).sum() < 150:
                colour = rng.integers(0, 256, 3)
            img[mask > 0] = colour
            objects.append({"category": cls, "bbox": bbox, "area": float(len(xs))})
            break
    return img, objects


def write_split(
    folder: Path,
    num_images: int,
    seed: int,
    size: int = 160,
    max_objects: int = 6,
    min_side: float = 10.0,
    max_side: float = 120.0,
) -> Path:
    """Write ``folder/images/*.png`` and ``folder/annotations.json`` (COCO, category ids 1..5)."""
    if num_images < 1 or size < 32 or not 2 <= min_side < max_side <= size:
        raise ValueError("need num_images >= 1, size >= 32 and 2 <= min_side < max_side <= size")
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img, objects = make_image(rng, size, max_objects, min_side, max_side)
        name = f"{i:06d}.png"
        cv2.imwrite(str(folder / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for o in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": o["category"] + 1,
                    "bbox": o["bbox"],
                    "area": o["area"],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES)]
    ann_file = folder / "annotations.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann_file


def generate(root: str | Path, num_train: int, num_val: int, seed: int = 0, **kwargs) -> Path:
    """Train and val splits with different seeds (``seed`` and ``seed + 1``) under ``root``."""
    root = Path(root)
    write_split(root / "train", num_train, seed, **kwargs)
    write_split(root / "val", num_val, seed + 1, **kwargs)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = generate(args.out, args.train, args.val, args.seed, size=args.size, max_side=0.75 * args.size)
    print(f"wrote {args.train} train / {args.val} val images to {root}")


if __name__ == "__main__":
    main()
