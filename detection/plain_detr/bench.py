"""Plain-DETR training steps at the paper's size, per BoxRPB attention backend: step time and peak memory.

``python -m detection.plain_detr.bench [--device cuda] [--backends reference triton] [--dtype float32 bfloat16]``

Paper size: ``PlainDETRConfig``'s defaults (d 256, 8 heads, 6 decoder layers, 300 one-to-one + 1500 one-to-many
queries) on 800x1344 images, a 50x84 stride-16 map (the Q=1800 setting of ``kernels.bench``), batch 2, the
default conv backbone (the paper's Swin/ViT backbones are not part of the comparison). A step is forward,
hybrid-matching loss, backward and AdamW on random images with 10 random boxes each; ``bfloat16`` runs under
autocast. Only ``attention_backend`` differs between rows. CUDA peak memory is ``max_memory_allocated`` over
the timed steps; CPU reports none. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

import torch

from detection.plain_detr.config import PlainDETRConfig, tiny_config
from detection.plain_detr.losses import SetCriterion
from detection.plain_detr.model import PlainDETR
from kernels.bench import steady_ms_and_peak

PAPER_IMAGE = (800, 1344)
TINY_IMAGE = (64, 96)


def tiny_bench_config() -> PlainDETRConfig:
    """The dry-run size: one decoder layer, 10 + 10 queries (the interpreter runs the Triton kernels)."""
    return tiny_config(3, num_layers=1, num_heads=2, num_queries_one2one=10, num_queries_one2many=10)


def _targets(batch: int, num_classes: int, device: torch.device, g: torch.Generator) -> list[dict]:
    targets = []
    for _ in range(batch):
        centre = 0.2 + 0.6 * torch.rand(10, 2, generator=g)
        size = 0.05 + 0.25 * torch.rand(10, 2, generator=g)
        boxes = torch.cat((centre, size), -1).to(device)
        targets.append({"labels": torch.randint(num_classes, (10,), generator=g).to(device), "boxes": boxes})
    return targets


def measure(
    config: PlainDETRConfig,
    backend: str,
    device: torch.device,
    dtype: torch.dtype,
    image_hw: tuple[int, int] = PAPER_IMAGE,
    batch: int = 2,
    steps: int = 5,
) -> dict[str, object]:
    """Median training-step time (after one warm-up step: compilation, autotuning) and peak memory."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = PlainDETR(replace(config, attention_backend=backend)).to(device).train()
    criterion = SetCriterion(model.config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(batch, 3, *image_hw, generator=g).to(device)
    targets = _targets(batch, config.num_classes, device, g)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = criterion(model(images), targets)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_ms, peak = steady_ms_and_peak(step, device, steps)
    return {"backend": backend, "dtype": str(dtype).removeprefix("torch."), "step_ms": step_ms,
            "images_per_s": batch * 1e3 / step_ms, "peak_mib": peak, "steps": steps}  # fmt: skip


def markdown(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        "| backend | dtype | step ms | images/s | peak allocated MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['dtype']} | failed: {r['error'][:120]} | | |")
            continue
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        lines.append(
            f"| {r['backend']} | {r['dtype']} | {r['step_ms']:.1f} | {r['images_per_s']:.2f} | {peak} |"
        )
    return "\n".join(lines) + "\n"


def run(
    device: torch.device,
    backends: list[str],
    dtypes: list[str],
    steps: int = 5,
    tiny: bool = False,
    on_row: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Every (dtype, backend) row; a failing row is recorded with its error and the others still run."""
    config, image = (tiny_bench_config(), TINY_IMAGE) if tiny else (PlainDETRConfig(), PAPER_IMAGE)
    rows: list[dict] = []
    for dtype in dtypes:
        for backend in backends:
            try:
                rows.append(measure(config, backend, device, getattr(torch, dtype), image, steps=steps))
            except Exception as error:  # one failing row must not lose the others
                rows.append({"backend": backend, "dtype": dtype, "error": f"{type(error).__name__}: {error}"})
            print(rows[-1], flush=True)
            if on_row:
                on_row(rows)
    return rows


def header(device: torch.device, tiny: bool) -> str:
    image = TINY_IMAGE if tiny else PAPER_IMAGE
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return f"Plain-DETR training step, batch 2, {image[0]}x{image[1]}, {name}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m detection.plain_detr.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backends", nargs="+", default=["reference", "triton"])
    parser.add_argument(
        "--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="dry-run size (tiny model, 64x96 images)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = run(device, args.backends, args.dtype, args.steps, args.tiny)
    print(markdown(rows, header(device, args.tiny)))


if __name__ == "__main__":
    main()
