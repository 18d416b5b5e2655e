"""H.264 mp4 files <-> ``uint8 [T, H, W, 3]`` RGB arrays (PyAV / libx264), with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

PIX_FMTS = ("yuv420p", "yuv444p")


class VideoDecodeError(ValueError):
    """A video file exists but cannot be decoded into the frames the dataset expects."""


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    crf: int = 18,
    pix_fmt: str = "yuv420p",
    gop: int = 30,
) -> None:
    """Encode ``uint8 [T, H, W, 3]`` RGB frames as H.264 mp4.

    The same frames give the same bytes on every run: one encoder thread (x264 output does not depend on
    timing then; at 96x96 one thread is fast enough) and x264's macroblock tree off. With the tree on, x264's
    AVX-512 code reads memory it never wrote, so in a process whose heap holds freed data (after a MuJoCo GL
    context was closed, say) a few small videos came out different; off, files are about 23% larger at the
    same CRF and slightly closer to the input (docs/episode_format.md). ``yuv420p`` halves chroma resolution
    but is what every player decodes; use ``yuv444p`` when colour fidelity matters more than compatibility.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(
            f"{path}: frames must be a non-empty uint8 array [T, H, W, 3] (RGB), "
            f"got dtype {frames.dtype} shape {tuple(frames.shape)}"
        )
    if pix_fmt not in PIX_FMTS:
        raise ValueError(f"{path}: pix_fmt must be one of {PIX_FMTS}, got {pix_fmt!r}")
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"{path}: yuv420p needs even frame sizes, got {height}x{width}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"crf": str(crf), "preset": "fast", "threads": "1", "g": str(gop), "x264-params": "mbtree=0"}
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.thread_count = 1
        stream.codec_context.time_base = Fraction(1, fps)
        for index, rgb in enumerate(frames):
            # Convert, copy out and wrap again: swscale's output frame may carry uninitialised row padding,
            # a freshly wrapped array carries none.
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt).to_ndarray()
            frame = av.VideoFrame.from_ndarray(yuv, format=pix_fmt)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def read_frames(
    path: str | Path,
    indices: Sequence[int] | None = None,
    expected_frames: int | None = None,
    gop: int = 30,
) -> np.ndarray:
    """Decode the frames at ``indices`` (all when ``None``) as ``uint8 [k, H, W, 3]`` RGB, in the given order.

    Frames are located by timestamp: the reader seeks to the key frame before a requested frame and decodes
    forward, and keeps decoding instead of seeking when the next requested frame is less than ``gop`` frames
    ahead. For 16 frames spread over a 150-frame clip this is 2.5x faster than decoding from the start, and
    10x for a window at the end (numbers in docs/episode_format.md). ``expected_frames`` checks the file
    against the episode length recorded in the dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"video file {path} is missing (expected an H.264 mp4 written by EpisodeWriter)"
        )
    wanted = None if indices is None else [int(i) for i in indices]
    if wanted and min(wanted) < 0:
        raise IndexError(f"{path}: negative frame index in {wanted}")
    if expected_frames is not None and wanted and max(wanted) >= expected_frames:
        raise IndexError(f"{path}: frame index {max(wanted)} out of range for {expected_frames} frames")
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: contains no video stream (expected an H.264 mp4)")
            stream = container.streams.video[0]
            shape = (0, stream.codec_context.height, stream.codec_context.width, 3)
            if wanted is None:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
                if expected_frames is not None and len(frames) != expected_frames:
                    raise VideoDecodeError(
                        f"{path}: decoded {len(frames)} frames, expected {expected_frames} "
                        "(the file is truncated or does not belong to this episode)"
                    )
                return np.stack(frames) if frames else np.zeros(shape, np.uint8)
            if not wanted:
                return np.zeros(shape, np.uint8)
            found = _decode_at(container, stream, sorted(set(wanted)), gop, path)
    except av.error.FFmpegError as err:
        raise VideoDecodeError(
            f"{path}: cannot decode video ({err}); expected an H.264 mp4 written by EpisodeWriter - "
            "re-generate or re-convert this episode"
        ) from err
    return np.stack([found[i] for i in wanted])


def _decode_at(
    container: av.container.InputContainer, stream: av.VideoStream, targets: list[int], gop: int, path: Path
) -> dict[int, np.ndarray]:
    """Decode the sorted frame indices ``targets``, seeking only across key-frame distances."""
    fps = float(stream.average_rate or stream.guessed_rate)
    time_base = float(stream.time_base)
    found: dict[int, np.ndarray] = {}
    frames = None
    position = -1
    for target in targets:
        if frames is None or target - position > gop:
            container.seek(int(target / fps / time_base), stream=stream, backward=True)
            frames = container.decode(stream)
        for frame in frames:
            position = round(frame.pts * time_base * fps)
            if position == target:
                found[target] = frame.to_ndarray(format="rgb24")
                break
            if position > target:
                raise VideoDecodeError(
                    f"{path}: frame {target} has no timestamp of its own (variable frame rate?)"
                )
        else:
            raise VideoDecodeError(
                f"{path}: frame {target} is past the end of the video (position {position}); the file is truncated"
            )
    return found
