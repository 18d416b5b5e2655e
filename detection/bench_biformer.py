"""Benchmark BiFormer-T forward+backward (and forward-only) per ``kernels`` backend: images/s, peak memory.

``python -m detection.bench_biformer [--device cpu|cuda] [--batch 4] [--size 224] [--iters 3]``

Each backend runs in its own subprocess so peak memory is per backend: CUDA reports
``torch.cuda.max_memory_allocated``; CPU reports the process's peak resident set (``ru_maxrss``, includes the
Python/torch baseline, printed separately). A backend that cannot run a mode here (FlexAttention has no CPU
backward; Triton needs CUDA) is listed with the reason instead of a number.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from detection.biformer import biformer_tiny

BACKENDS = ("reference", "flex", "triton")


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    backend: str, device: torch.device, batch: int, size: int, iters: int, train: bool
) -> dict[str, float]:
    """Images/s over ``iters`` steps after a warm-up step, and peak memory (also used by vid2robot.gpu_check)."""
    torch.manual_seed(0)
    model = biformer_tiny(num_classes=1000, backend=backend).to(device).train(train)
    x = torch.randn(batch, 3, size, size, device=device)
    base = _peak_mib(device)

    def step() -> None:
        if train:
            model(x).logsumexp(-1).mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(x)

    step()  # warm-up (compilation, autotuning, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"images_per_s": batch * iters / seconds, "peak_mib": _peak_mib(device), "baseline_mib": base}


def _run_child(args: argparse.Namespace, backend: str, train: bool) -> dict[str, object]:
    cmd = [sys.executable, "-m", "detection.bench_biformer", "--child", backend, "--device", args.device]
    cmd += ["--batch", str(args.batch), "--size", str(args.size), "--iters", str(args.iters)]
    cmd += [] if train else ["--forward-only"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {args.timeout} s"}
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="BiFormer-T throughput and peak memory per kernels backend")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per backend and mode")
    parser.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.size < 32 or args.iters < 1:
        raise ValueError("need --batch >= 1, --size >= 32 and --iters >= 1")
    device = torch.device(args.device)
    if args.child:
        result = measure(args.child, device, args.batch, args.size, args.iters, train=not args.forward_only)
        print(json.dumps(result))
        return
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"BiFormer-T, batch {args.batch}, {args.size}x{args.size}, {args.iters} timed iterations, {name}, "
        f"torch {torch.__version__}"
    )
    mem = "peak allocated MiB" if device.type == "cuda" else "peak RSS MiB (baseline)"
    print(f"| backend | fwd+bwd images/s | fwd+bwd {mem} | fwd images/s | fwd {mem} |")
    print("|---|---|---|---|---|")
    for backend in args.backends:
        cells = []
        for train in (True, False):
            r = _run_child(args, backend, train)
            if "error" in r:
                cells += [f"n/a: {str(r['error'])[:90]}", ""]
            else:
                base = "" if device.type == "cuda" else f" ({r['baseline_mib']:.0f})"
                cells += [f"{r['images_per_s']:.2f}", f"{r['peak_mib']:.0f}{base}"]
        print(f"| {backend} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
