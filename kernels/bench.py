"""Benchmark of the fused ops: ``python -m kernels.bench [--device cuda] [--ops ...] [--quick] [--out DIR]``.

For each op, setting and backend: forward ms, forward+backward ms, peak extra memory, and ratios to
``reference`` and to plain SDPA without bias over the same queries and keys (for routing and neighborhood SDPA
is dense attention over all tokens, the unsparsified op). Times are wall time per call (synchronised); on CUDA
the GPU time spent in kernels per call (torch.profiler's device events) is reported beside it, so that launch
and host overhead (wall minus kernel time) is told apart from kernel time. CPU has no device timer: wall time
only. Prints a markdown table and writes ``<stem>.json`` and ``<stem>.md`` under ``--out``. Not a test:
numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

import kernels
from kernels import dispatch


@dataclass(frozen=True)
class Setting:
    op: str
    name: str
    shape: dict[str, int]


SETTINGS = [
    Setting("boxrpb", "Plain-DETR train (Q=1800)", {"B": 2, "h": 8, "Q": 1800, "H": 50, "W": 84, "d": 32}),
    Setting("boxrpb", "Plain-DETR eval (Q=300)", {"B": 2, "h": 8, "Q": 300, "H": 50, "W": 84, "d": 32}),
    Setting("routing", "BiFormer-S stage 2 @224", {"B": 16, "h": 4, "R": 49, "T": 16, "k": 4, "d": 32}),
    Setting("routing", "BiFormer-S stage 3 @224", {"B": 16, "h": 8, "R": 49, "T": 4, "k": 16, "d": 32}),
    Setting("routing", "BiFormer-S stage 2 @512", {"B": 4, "h": 4, "R": 256, "T": 16, "k": 4, "d": 32}),
    Setting("routing", "BiFormer-S stage 3 @512", {"B": 4, "h": 8, "R": 256, "T": 4, "k": 16, "d": 32}),
    Setting("neighborhood", "64x64, kernel 7", {"B": 2, "h": 4, "H": 64, "W": 64, "d": 32, "K": 7}),
]
QUICK_SETTINGS = [
    Setting("boxrpb", "quick: Q=100, 25x42", {"B": 1, "h": 8, "Q": 100, "H": 25, "W": 42, "d": 32}),
    Setting("routing", "quick: stage 2 @224, B=2", {"B": 2, "h": 4, "R": 49, "T": 16, "k": 4, "d": 32}),
    Setting("routing", "quick: stage 3 @224, B=2", {"B": 2, "h": 8, "R": 49, "T": 4, "k": 16, "d": 32}),
    Setting("neighborhood", "quick: 32x32, kernel 7", {"B": 1, "h": 4, "H": 32, "W": 32, "d": 32, "K": 7}),
]
# Interpreter-sized (the GPU check's CPU dry run times Triton through TRITON_INTERPRET=1).
TINY_SETTINGS = [
    Setting("boxrpb", "tiny: Q=20, 3x5", {"B": 1, "h": 2, "Q": 20, "H": 3, "W": 5, "d": 16}),
    Setting("routing", "tiny: R=4, T=4, top-2", {"B": 1, "h": 2, "R": 4, "T": 4, "k": 2, "d": 16}),
    Setting("neighborhood", "tiny: 8x8, kernel 3", {"B": 1, "h": 1, "H": 8, "W": 8, "d": 16, "K": 3}),
]
SIZES = {"full": SETTINGS, "quick": QUICK_SETTINGS, "tiny": TINY_SETTINGS}


def make_case(setting: Setting, device: torch.device, dtype: torch.dtype) -> tuple[Callable, list, Callable]:
    """(op taking backend=, differentiable inputs, the SDPA lower-bound call) for one setting."""
    s = setting.shape
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    if setting.op == "boxrpb":
        n_k = s["H"] * s["W"]
        inputs = [randn(s["B"], s["h"], s["Q"], s["d"]), randn(s["B"], s["h"], n_k, s["d"]),
                  randn(s["B"], s["h"], n_k, s["d"]), randn(s["B"], s["h"], s["Q"], s["W"]),
                  randn(s["B"], s["h"], s["Q"], s["H"])]  # fmt: skip
        return kernels.boxrpb_attention, inputs, lambda q, k, v, *_: F.scaled_dot_product_attention(q, k, v)
    if setting.op == "routing":
        n = s["R"] * s["T"]
        inputs = [randn(s["B"], s["h"], n, s["d"]) for _ in range(3)]
        index = torch.rand(s["B"], s["R"], s["R"], generator=g).topk(s["k"], dim=-1).indices.to(device)

        def routed(q, k, v, backend):
            return kernels.routed_attention(q, k, v, index, s["T"], backend=backend)

        return routed, inputs, lambda q, k, v: F.scaled_dot_product_attention(q, k, v)
    inputs = [randn(s["B"], s["h"], s["H"], s["W"], s["d"]) for _ in range(3)]

    def neighborhood(q, k, v, backend):
        return kernels.neighborhood_attention_2d(q, k, v, s["K"], backend=backend)

    def dense(q, k, v):
        return F.scaled_dot_product_attention(*(t.flatten(2, 3) for t in (q, k, v)))

    return neighborhood, inputs, dense


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` (after one warm-up call, which also compiles)."""
    return steady_ms_and_peak(fn, device, repeats)[0]


def steady_ms_and_peak(
    fn: Callable[[], object], device: torch.device, repeats: int
) -> tuple[float, float | None]:
    """Median wall time (ms) of ``fn`` after one warm-up call (compilation, autotuning, allocator), and the peak
    CUDA memory (MiB) over the timed calls; None off CUDA."""
    fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return statistics.median(samples), peak


def device_time_ms(events: list, device_type: DeviceType = DeviceType.CUDA) -> float:
    """Total duration of the profiler's events on one device (on CUDA: kernels, copies, memsets)."""
    return sum(e.time_range.elapsed_us() for e in events if e.device_type == device_type) / 1e3


def kernel_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float | None:
    """GPU time per call spent on the device (after the warm-up ``time_ms`` did); None off CUDA, and None where
    the profiler recorded no device event (CUPTI unavailable) rather than a misleading zero."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            fn()
        torch.cuda.synchronize()
    total = device_time_ms(prof.events())
    if total == 0:
        print("kernel time: the profiler recorded no CUDA events (is CUPTI available?)", flush=True)
        return None
    return total / repeats


def peak_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory above what was allocated before the call (CPU: op-level allocation timeline)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    level = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


def measure(setting: Setting, backend: str, device: torch.device, dtype: torch.dtype, repeats: int) -> dict:
    op, inputs, sdpa = make_case(setting, device, dtype)
    leaves = [t.clone().requires_grad_() for t in inputs]

    def forward():
        with torch.no_grad():
            return sdpa(*inputs) if backend == "sdpa" else op(*inputs, backend=backend)

    def train_step():
        out = sdpa(*leaves) if backend == "sdpa" else op(*leaves, backend=backend)
        out.backward(torch.ones_like(out))
        for t in leaves:
            t.grad = None

    row = {"op": setting.op, "setting": setting.name, "backend": backend, **{"shape": setting.shape}}
    row["fwd_ms"] = time_ms(forward, device, repeats)
    row["fwd_kernel_ms"] = kernel_ms(forward, device, repeats)
    row["fwd_peak_mib"] = peak_mib(forward, device)
    trains = backend != "flex" or device.type == "cuda"
    row["fwd_bwd_ms"] = time_ms(train_step, device, repeats) if trains else None
    row["fwd_bwd_kernel_ms"] = kernel_ms(train_step, device, repeats) if trains else None
    row["fwd_bwd_peak_mib"] = peak_mib(train_step, device) if trains else None
    if backend == "triton" and device.type == "cuda":
        row["tuned"] = tuned_configs(setting.op)
    return row


def tuned_configs(op: str) -> dict[str, str]:
    """The config the autotuner chose for each Triton kernel of ``op`` at its last call."""
    module = dispatch.implementation(op, "triton")
    return {name: str(getattr(module, name).best_config) for name in module.TUNING}


BENCH_BACKENDS = ("sdpa", "reference", "triton", "flex")


def backends_for(device: torch.device) -> list[str]:
    names = list(BENCH_BACKENDS)
    if device.type != "cuda" and not dispatch.triton_interpreted():
        names.remove("triton")  # needs CUDA (the interpreter is for tests, not timings)
    return names


def add_ratios(rows: list[dict]) -> None:
    for row in rows:
        same = {r["backend"]: r for r in rows if r["setting"] == row["setting"]}
        for base, keys in (("reference", ("fwd_ms", "fwd_bwd_ms")), ("sdpa", TIMES)):
            for key in keys:
                other = same.get(base, {}).get(key)
                row[f"{key}_vs_{base}"] = row[key] / other if row.get(key) is not None and other else None


TIMES = ("fwd_ms", "fwd_bwd_ms", "fwd_kernel_ms", "fwd_bwd_kernel_ms")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict], header: str, failures: list[dict] = ()) -> str:
    """The table; the kernel columns (GPU time in kernels per call, and its ratio to SDPA's) only on CUDA."""
    kernel = any(r.get("fwd_kernel_ms") is not None for r in rows)
    note = (
        "ms: wall time per call; kernel ms: GPU time in kernels per call (torch.profiler), the rest of the "
        "wall time is launch and host overhead"
        if kernel
        else "ms: wall time per call (no device timer here)"
    )
    extra = (
        " fwd kernel ms | fwd+bwd kernel ms | fwd kernel / SDPA | fwd+bwd kernel / SDPA |" if kernel else ""
    )
    lines = [header, "", note, "",
             "| op | setting | backend | fwd ms | fwd+bwd ms | fwd peak MiB | fwd+bwd peak MiB "
             "| fwd / ref | fwd / SDPA | fwd+bwd / ref | fwd+bwd / SDPA |" + extra,
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (4 if kernel else 0)]  # fmt: skip
    for r in rows:
        line = (
            f"| {r['op']} | {r['setting']} | {r['backend']} | {_fmt(r['fwd_ms'])} | {_fmt(r['fwd_bwd_ms'])} "
            f"| {_fmt(r['fwd_peak_mib'], 1)} | {_fmt(r['fwd_bwd_peak_mib'], 1)} | {_fmt(r['fwd_ms_vs_reference'])} "
            f"| {_fmt(r['fwd_ms_vs_sdpa'])} | {_fmt(r['fwd_bwd_ms_vs_reference'])} | {_fmt(r['fwd_bwd_ms_vs_sdpa'])} |"
        )
        if kernel:
            line += (
                f" {_fmt(r['fwd_kernel_ms'], 3)} | {_fmt(r['fwd_bwd_kernel_ms'], 3)} "
                f"| {_fmt(r['fwd_kernel_ms_vs_sdpa'])} | {_fmt(r['fwd_bwd_kernel_ms_vs_sdpa'])} |"
            )
        lines.append(line)
    lines += [""] + [f"- failed: {f['setting']} / {f['backend']}: {f['error']}" for f in failures]
    return "\n".join(lines).rstrip() + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ops", default="boxrpb,routing,neighborhood", help="comma-separated subset")
    parser.add_argument(
        "--backends", default=None, help="comma-separated subset of sdpa,reference,triton,flex"
    )
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                        help="default: bfloat16 on CUDA, float32 on CPU")  # fmt: skip
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="small settings (a CPU smoke run)")
    sizes.add_argument(
        "--tiny", action="store_true", help="interpreter-sized settings (the GPU check's dry run)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per number (default 20 CUDA, 3 CPU)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for <stem>.json and <stem>.md")
    parser.add_argument("--stem", default="kernels_bench", help="file name (without suffix) of the results")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    repeats = args.repeats or (20 if device.type == "cuda" else 3)
    ops = args.ops.split(",")
    unknown = set(ops) - set(dispatch.OPS)
    if unknown:
        parser.error(f"unknown ops {sorted(unknown)}; choose from {dispatch.OPS}")
    backends = args.backends.split(",") if args.backends else backends_for(device)
    unknown = set(backends) - set(BENCH_BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {','.join(BENCH_BACKENDS)}")
    torch._dynamo.config.recompile_limit = 64  # one flex compile per setting and mode, all in one process

    size = "quick" if args.quick else "tiny" if args.tiny else "full"
    settings = [s for s in SIZES[size] if s.op in ops]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"{name}, {dtype}, torch {torch.__version__}, triton "
              f"{__import__('triton').__version__ if dispatch.triton_importable() else 'absent'}")  # fmt: skip
    rows: list[dict] = []
    failures: list[dict] = []
    # Backend by backend, flex last: its compiles are the slowest part, and a failure or a time limit there
    # must not cost the other numbers (the files are rewritten after every row).
    for backend in sorted(backends, key=lambda b: b == "flex"):
        for setting in settings:
            try:
                rows.append(measure(setting, backend, device, dtype, repeats))
                print(f"{setting.name} / {backend}: {rows[-1]['fwd_ms']:.2f} ms fwd", flush=True)
            except Exception as error:  # one failing backend must not lose the rest of the table
                failures.append(
                    {"setting": setting.name, "backend": backend, "error": f"{type(error).__name__}: {error}"}
                )
                print(f"{setting.name} / {backend}: failed: {failures[-1]['error']}", flush=True)
            rows.sort(
                key=lambda r: ([s.name for s in settings].index(r["setting"]), backends.index(r["backend"]))
            )
            add_ratios(rows)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                meta = {"device": name, "dtype": str(dtype), "torch": torch.__version__, "repeats": repeats,
                        "sizes": size, "settings": [{"op": s.op, "name": s.name} for s in settings]}  # fmt: skip
                results = {"meta": meta, "rows": rows, "failures": failures}
                (args.out / f"{args.stem}.json").write_text(json.dumps(results, indent=1))
                (args.out / f"{args.stem}.md").write_text(markdown(rows, header, failures))
    print(markdown(rows, header, failures))


if __name__ == "__main__":
    main()
