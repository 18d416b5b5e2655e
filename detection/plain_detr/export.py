"""ONNX export of the inference graph (images -> top-k boxes, scores, labels), checked against onnxruntime.

``python -m detection.plain_detr.export CKPT OUT.onnx --size 128`` (a ``.ckpt`` or a :meth:`Detector.save` folder).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from detection.plain_detr.detector import Detector
from detection.plain_detr.model import PlainDETR
from detection.plain_detr.postprocess import InferenceModel
from detection.safe_files import atomic_open

OUTPUT_NAMES = ["boxes", "scores", "labels"]


def export_onnx(model: PlainDETR, path: str | Path, height: int, width: int, top_k: int = 100) -> Path:
    """Trace with a dynamic batch axis at a fixed ``height x width`` (multiples of the stride are best).

    The attention runs on ``kernels``' reference backend (plain matmul/softmax ops that every ONNX runtime has).
    """
    if height < model.config.feature_stride or width < model.config.feature_stride:
        raise ValueError(
            f"export size {height}x{width} is below the feature stride {model.config.feature_stride}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = InferenceModel(model, top_k).eval()
    backends = [m for m in model.modules() if hasattr(m, "backend")]
    saved = [m.backend for m in backends]
    for m in backends:
        m.backend = "reference"
    try:
        # Tracing bakes in Python-side shape checks and the pixel scale: the graph is for this H x W only.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # into a temporary file beside the target, renamed over it once complete
            with atomic_open(path) as handle:
                torch.onnx.export(
                    wrapper,
                    (torch.rand(1, 3, height, width),),
                    handle,
                    input_names=["images"],
                    output_names=OUTPUT_NAMES,
                    dynamic_axes={"images": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
                    opset_version=17,
                    dynamo=False,
                )
    finally:
        for m, b in zip(backends, saved, strict=True):
            m.backend = b
    return path


def onnx_parity(
    model: PlainDETR, path: str | Path, images: torch.Tensor, top_k: int = 100
) -> dict[str, float]:
    """Max absolute difference per output between PyTorch and onnxruntime on ``images [B, 3, H, W]``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = InferenceModel(model, top_k).eval()(images)
    got = session.run(OUTPUT_NAMES, {"images": images.numpy()})
    return {
        name: float(np.abs(g.astype(np.float64) - e.numpy().astype(np.float64)).max())
        for name, g, e in zip(OUTPUT_NAMES, got, expected, strict=True)
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a Plain-DETR checkpoint to ONNX and check it")
    parser.add_argument("checkpoint")
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=None, help="square input size (default: the model's)")
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args(argv)
    detector = Detector.from_checkpoint(args.checkpoint)
    size = args.size or detector.input_size
    path = export_onnx(detector.model, args.output, size, size, args.top_k)
    diff = onnx_parity(detector.model, path, torch.rand(2, 3, size, size), args.top_k)
    print(f"wrote {path}; max |torch - onnxruntime|: {diff}")


if __name__ == "__main__":
    main()
