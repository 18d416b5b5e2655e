"""A picture of a dataset: for chosen episodes, evenly spaced frames of each camera in a labelled row.

``python -m vid2robot.data.contact_sheet DATASET[:CAMERA,...] ... --episodes 0 50 --frames 6 --out x.png``
(a dataset's cameras after a colon; all of them by default).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from detection.safe_files import atomic_open
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.policy.frame_sampling import sample_prompt_frames

LABEL_WIDTH = 190


def _label(text: str, height: int) -> np.ndarray:
    panel = np.full((height, LABEL_WIDTH, 3), 255, np.uint8)
    for i, line in enumerate(text.split("\n")):
        cv2.putText(panel, line, (6, 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def sheet_rows(rows: Sequence[tuple[str, np.ndarray]], size: int = 128, gap: int = 4) -> np.ndarray:
    """Stack ``(label, frames [k, H, W, 3])`` rows into one RGB image, each frame resized to ``size``."""
    width = max(len(frames) for _, frames in rows)
    out = []
    for label, frames in rows:
        tiles = [cv2.resize(f, (size, size), interpolation=cv2.INTER_NEAREST) for f in frames]
        tiles += [np.full((size, size, 3), 255, np.uint8)] * (width - len(tiles))
        spaced = [np.pad(t, ((0, 0), (0, gap), (0, 0)), constant_values=255) for t in tiles]
        row = np.concatenate([_label(label, size), *spaced], axis=1)
        out.append(np.pad(row, ((0, gap), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=0)


def dataset_rows(
    dataset: EpisodeDataset, episodes: Sequence[int], cameras: Sequence[str], frames: int
) -> list[tuple[str, np.ndarray]]:
    pool = dataset.info.extra.get("hand", {}).get("pool")
    rows = []
    for index in episodes:
        episode = dataset.episode(index)
        indices = sample_prompt_frames(episode.length, frames)
        for camera in cameras:
            look = f" ({pool.replace('_', '-')} look)" if pool and camera.startswith("hand") else ""
            rows.append(
                (f"{episode.record.task}\nep {index}: {camera}{look}", episode.frames(camera, indices))
            )
    return rows


def write_png(image: np.ndarray, path: str | Path) -> Path:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode {path} as PNG")
    with atomic_open(path) as handle:
        handle.write(encoded.tobytes())
    return Path(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dataset", nargs="+", help="episode datasets, each optionally :CAMERA,CAMERA (in order)"
    )
    parser.add_argument("--episodes", type=int, nargs="+", default=[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows = []
    for item in args.dataset:
        root, _, cameras = item.partition(":")
        dataset = EpisodeDataset(root)
        rows += dataset_rows(
            dataset, args.episodes, cameras.split(",") if cameras else dataset.info.cameras, args.frames
        )
    print(f"wrote {write_png(sheet_rows(rows, args.size), args.out)}")


if __name__ == "__main__":
    main()
