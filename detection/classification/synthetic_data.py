"""A small procedural fine-grained image set, written as ImageFolder directories (tests and the demo).

"Birds" on cluttered backgrounds: every image shows one bird (body ellipse, head, tail) with a random body
colour, size, pose and position. What tells classes/identities apart is deliberately *small and local*:

* classification (``kind="cls"``): class = (wing-mark shape in {none, bar, dot, ring}) x (crest hue in
  {orange, red}); the mark covers ~2% of the image and the crest ~1%, while body colour, pose, scale,
  background and lighting vary freely -- a global-appearance shortcut does not exist.
* re-ID (``kind="reid"``): identity = a fixed body colour + head colour + 3 spots at fixed places on the body;
  each identity is seen by 3 "cameras" (camera = background style, tint, and pose range) several times.
  Training and test identities are disjoint; the test identities are split into ``query`` (one image per
  identity and camera) and ``gallery`` (the rest), the Market-1501 layout.

Layout: ``root/{train,val}/<class>/<n>.png`` or ``root/{train,query,gallery}/<pid>/<pid>_c<cam>_<n>.png``.
``python -m detection.classification.synthetic_data OUT --kind cls|reid`` writes one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["generate_classification_set", "generate_reid_set"]

_MARKS = ("none", "bar", "dot", "ring")
_CRESTS = ((255, 140, 0), (220, 30, 40))  # orange vs red (RGB)


@dataclass
class Bird:
    body_rgb: tuple[int, int, int]
    head_rgb: tuple[int, int, int]
    mark: str = "none"
    crest_rgb: tuple[int, int, int] | None = None
    spots: tuple[tuple[float, float], ...] = ()  # positions on the body, in body-axis units [-1, 1]


def _background(rng: np.random.Generator, size: int, style: int | None = None) -> np.ndarray:
    """Smooth two-colour gradient plus faint clutter ellipses; ``style`` fixes the palette (a camera)."""
    pal = np.random.default_rng(style) if style is not None else rng
    c0, c1 = pal.uniform(40, 200, 3), pal.uniform(40, 200, 3)
    t = np.linspace(0, 1, size)[None, :, None] * np.ones((size, 1, 1))
    if pal.random() < 0.5:
        t = t.transpose(1, 0, 2)
    img = np.ascontiguousarray(c0 * (1 - t) + c1 * t, dtype=np.float32)
    for _ in range(rng.integers(3, 7)):
        center = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        axes = (int(rng.integers(3, size // 4)), int(rng.integers(2, size // 6)))
        colour = tuple(float(v) for v in rng.uniform(30, 220, 3))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def _draw_bird(img: np.ndarray, bird: Bird, rng: np.random.Generator, pose: tuple[float, float]) -> None:
    size = img.shape[0]
    scale = rng.uniform(*pose) * size / 64
    angle = rng.uniform(-35, 35) + (180 if rng.random() < 0.5 else 0)
    cx, cy = rng.uniform(0.35, 0.65) * size, rng.uniform(0.35, 0.65) * size
    a, b = 13 * scale, 7 * scale  # body half-axes
    rad = np.deg2rad(angle)
    ux, uy = np.cos(rad), np.sin(rad)  # body axis
    vx, vy = -uy, ux

    def at(s: float, t: float) -> tuple[int, int]:
        return round(float(cx + s * a * ux + t * b * vx)), round(float(cy + s * a * uy + t * b * vy))

    tail = np.array([at(-0.9, 0), at(-1.6, 0.7), at(-1.6, -0.7)], np.int32)
    cv2.fillConvexPoly(img, tail, tuple(0.7 * c for c in bird.body_rgb))
    cv2.ellipse(img, at(0, 0), (int(a), int(b)), angle, 0, 360, bird.body_rgb, -1)
    head_r = max(2, int(4.5 * scale))
    cv2.circle(img, at(1.15, 0), head_r, bird.head_rgb, -1)
    cv2.circle(img, at(1.25, -0.25), max(1, head_r // 4), (10, 10, 10), -1)  # eye
    beak = np.array([at(1.4, 0.15), at(1.4, -0.15), at(1.8, 0)], np.int32)
    cv2.fillConvexPoly(img, beak, (230, 200, 60))
    if bird.crest_rgb is not None:
        cv2.circle(img, at(1.05, -0.75), max(1, int(2.2 * scale)), bird.crest_rgb, -1)
    mark_rgb = (245, 245, 245)
    thick = max(1, int(1.5 * scale))
    if bird.mark == "bar":
        cv2.line(img, at(-0.1, -0.7), at(-0.1, 0.7), mark_rgb, thick)
    elif bird.mark == "dot":
        cv2.circle(img, at(-0.1, 0), max(2, int(2.5 * scale)), mark_rgb, -1)
    elif bird.mark == "ring":
        cv2.circle(img, at(-0.1, 0), max(2, int(3 * scale)), mark_rgb, thick)
    for s, t in bird.spots:
        cv2.circle(img, at(s, t), max(1, int(1.8 * scale)), (20, 20, 20), -1)


def _render(
    bird: Bird, rng: np.random.Generator, size: int, style: int | None, pose: tuple[float, float]
) -> np.ndarray:
    img = _background(rng, size, style)
    _draw_bird(img, bird, rng, pose)
    tint = (
        rng.uniform(0.8, 1.2, 3) if style is None else np.random.default_rng(style + 1).uniform(0.85, 1.15, 3)
    )
    img = img * tint * rng.uniform(0.85, 1.15) + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(40, 230, 3))


def generate_classification_set(
    root: str | Path,
    num_classes: int = 8,
    train_per_class: int = 60,
    val_per_class: int = 20,
    size: int = 64,
    seed: int = 0,
    scale: tuple[float, float] = (0.8, 1.2),
) -> list[str]:
    """Writes ``root/{train,val}/<class>/<n>.png``; returns the class names (at most 8: 4 marks x 2 crests).

    ``scale`` is the bird size range (1 = a 26-pixel body in a 64-pixel image, scaled with ``size``).
    """
    if not 2 <= num_classes <= len(_MARKS) * len(_CRESTS):
        raise ValueError(f"num_classes must be in [2, {len(_MARKS) * len(_CRESTS)}], got {num_classes}")
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels for the marks to be visible, got {size}")
    rng = np.random.default_rng(seed)
    classes = [f"{mark}_{crest}" for crest in ("orange", "red") for mark in _MARKS][:num_classes]
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name in classes:
            mark, crest = name.split("_")
            for i in range(count):
                bird = Bird(_random_colour(rng), _random_colour(rng), mark, _CRESTS[crest == "red"])
                _save(Path(root) / split / name / f"{i:04d}.png", _render(bird, rng, size, None, scale))
    return classes


def generate_reid_set(
    root: str | Path,
    train_ids: int = 24,
    test_ids: int = 12,
    cameras: int = 3,
    per_camera: int = 4,
    size: int = 64,
    seed: int = 0,
) -> None:
    """Writes ``root/{train,query,gallery}/<pid>/<pid>_c<cam>_<n>.png`` (query: first image per id and camera)."""
    if cameras < 2 or per_camera < 2:
        raise ValueError("re-ID needs >= 2 cameras and >= 2 images per camera (query + gallery)")
    rng = np.random.default_rng(seed)
    poses = [(1.2 + 0.15 * c, 1.4 + 0.2 * c) for c in range(cameras)]
    for pid in range(train_ids + test_ids):
        spots = tuple((float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.6, 0.6))) for _ in range(3))
        bird = Bird(_random_colour(rng), _random_colour(rng), spots=spots)
        for cam in range(cameras):
            for n in range(per_camera):
                split = "train" if pid < train_ids else ("query" if n == 0 else "gallery")
                img = _render(bird, rng, size, 1000 * seed + 17 * cam, poses[cam])
                _save(Path(root) / split / f"{pid:04d}" / f"{pid:04d}_c{cam}_{n:02d}.png", img)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", choices=("cls", "reid"), default="cls")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.kind == "cls":
        generate_classification_set(args.out, size=args.size, seed=args.seed)
    else:
        generate_reid_set(args.out, size=args.size, seed=args.seed)
    print(f"wrote {args.kind} set to {args.out}")


if __name__ == "__main__":
    main()
