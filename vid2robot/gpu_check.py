"""One prepared GPU run of every measurement of issue #19: ``make gpu-check`` (docs/gpu_check.md).

``python -m vid2robot.gpu_check [--out docs/gpu_check] [--parts a,b] [--budget S] [--dry-run]``

Parts, in this order, each in its own subprocess under its own time limit (a failure or a timeout is recorded
and the next part runs), each writing ``<part>.json`` and ``<part>.md`` under ``--out``:

- ``kernel_tests``: correctness on the GPU first (every tuning candidate forward and backward, bf16 inputs, no
  device sync, the memory bound), so that the timings after it are of kernels known to be right.
- ``kernels``: ``python -m kernels.bench`` with sdpa, reference and triton (bf16, paper settings).
- ``biformer``: BiFormer-T training and inference, official gather vs fused (``detection.bench_biformer``).
- ``plain_detr``: Plain-DETR training steps at paper size, reference vs fused BoxRPB, fp32 and bf16.
- ``vid2robot``: ``Vid2RobotConfig.paper()``, bf16 training throughput and peak memory on random data.
- ``kernels_flex``: the kernel benchmark of the flex backend (last: its compiles are the slowest).

Then ``summary.json`` and ``summary.md``: each part's status and time, and the issue's targets, met or not.
``--dry-run`` runs every part in this process at tiny sizes on CPU (Triton through its interpreter; flex and the
tests only have their arguments checked), so that a typo cannot cost the GPU run; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Seconds per part on the GPU (compilation and autotuning included); they sum to 505 s, and --budget (530 s)
# caps the whole run, so that it ends within 9 minutes.
BUDGETS = {
    "kernel_tests": 110,
    "kernels": 140,
    "biformer": 70,
    "plain_detr": 85,
    "vid2robot": 45,
    "kernels_flex": 55,
}
TOTAL_BUDGET = 530
# The no-sync and memory checks first (the latter tunes the Q=1800 BoxRPB kernels that ``kernels`` then finds in
# Triton's disk cache), then bf16 inputs and every candidate the autotuner may pick; the fused file's other cases
# (many small shapes, each tuned and compiled anew) ran under the interpreter and would not fit the budget.
KERNEL_TESTS = ["tests/kernels/test_kernels_gpu.py", "tests/kernels/test_kernels_fused.py::test_bfloat16_inputs",
                "tests/kernels/test_kernels_tuning.py", "tests/kernels/test_kernels_api.py"]  # fmt: skip


def _write(out: Path, part: str, result: object, md: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{part}.json").write_text(json.dumps(result, indent=1))
    (out / f"{part}.md").write_text(md)


def _device(dry: bool):
    import torch

    return torch.device("cpu" if dry else "cuda")


# ---- parts ---------------------------------------------------------------------------------------------------
def part_kernel_tests(out: Path, dry: bool) -> None:
    """pytest of the fused kernels on the GPU (no flex: ``kernels_flex`` times it); collected only when dry.

    Its output goes on to this part's log as it comes, so that a timeout still shows how far it got."""
    cmd = [sys.executable, "-m", "pytest", *KERNEL_TESTS, "-q", "-p", "no:cacheprovider", "-k", "not flex"]
    cmd += ["--collect-only"] if dry else []
    lines = []
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip())
    summary = next((line for line in reversed(lines) if line.strip()), "")
    result = {
        "command": " ".join(cmd[1:]),
        "returncode": proc.returncode,
        "summary": summary,
        "tail": lines[-40:],
    }
    _write(out, "kernel_tests", result, f"# Kernel tests\n\n`{result['command']}`\n\n{summary}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"kernel tests failed: {summary}")


def _kernel_bench_args(out: Path, dry: bool, stem: str, backends: str, ops: str) -> list[str]:
    args = ["--out", str(out), "--stem", stem, "--backends", backends, "--ops", ops]
    return args + (["--tiny", "--repeats", "1", "--device", "cpu"] if dry else ["--device", "cuda"])


def part_kernels(out: Path, dry: bool) -> None:
    from kernels import bench

    bench.main(
        _kernel_bench_args(out, dry, "kernels", "sdpa,reference,triton", "boxrpb,routing,neighborhood")
    )


def part_kernels_flex(out: Path, dry: bool) -> None:
    """Routing and neighborhood flex (their BlockMasks are now cached) with sdpa and reference rows for the
    ratios; dry: arguments only (a CPU compile takes ~30 s per op)."""
    from kernels import bench

    args = _kernel_bench_args(out, dry, "kernels_flex", "sdpa,reference,flex", "routing,neighborhood")
    if dry:
        bench.build_parser().parse_args(args)
        note = {"dry_run": "arguments checked: " + " ".join(args)}
        _write(out, "kernels_flex", note, f"# Kernels, flex\n\n{note['dry_run']}\n")
        return
    bench.main(args)


def part_biformer(out: Path, dry: bool) -> None:
    """BiFormer-T as ``docs/benchmarks.md`` measured it (fp32, batch 32, 224 px); dry: reference, tiny."""
    import torch

    from detection.bench_biformer import measure

    device = _device(dry)
    batch, size, iters = (1, 64, 1) if dry else (32, 224, 10)
    rows: list[dict] = []
    for backend in ["reference"] if dry else ["reference", "triton"]:
        for train in (True, False):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            row = {"backend": backend, "train": train}
            try:
                row.update(measure(backend, device, batch, size, iters, train))
            except Exception as error:  # one failing row must not lose the others
                row["error"] = f"{type(error).__name__}: {error}"
            rows.append(row)
            result = {"batch": batch, "size": size, "iters": iters, "rows": rows}
            _write(out, "biformer", result, _biformer_markdown(result))


def _biformer_markdown(result: dict) -> str:
    lines = [f"# BiFormer-T, fp32, batch {result['batch']}, {result['size']}x{result['size']}, "
             f"{result['iters']} timed steps", "", "| backend | mode | images/s | peak MiB |", "|---|---|---:|---:|"]  # fmt: skip
    for r in result["rows"]:
        mode = "fwd+bwd" if r["train"] else "fwd"
        cells = (
            f"failed: {r['error'][:120]} | |"
            if "error" in r
            else f"{r['images_per_s']:.1f} | {r['peak_mib']:.0f} |"
        )
        lines.append(f"| {r['backend']} | {mode} | {cells}")
    return "\n".join(lines) + "\n"


def part_plain_detr(out: Path, dry: bool) -> None:
    from detection.plain_detr import bench

    device = _device(dry)

    def save(rows: list[dict]) -> None:
        _write(out, "plain_detr", {"rows": rows}, "# " + bench.markdown(rows, bench.header(device, dry)))

    bench.run(
        device, ["reference", "triton"], ["float32", "bfloat16"], steps=1 if dry else 5, tiny=dry, on_row=save
    )


# The dry run's Vid2Robot: paper() with every size shrunk (same code path, 32 px frames).
TINY_VID2ROBOT = {"image_size": 32, "prompt_frames": 4, "state_frames": 2, "encoder_dim": 32, "encoder_depth": 1,
                  "encoder_heads": 2, "d_model": 32, "num_heads": 2, "prompt_latents": 4, "state_latents": 4,
                  "resampler_depth": 1, "fusion_depth": 1, "decoder_depth": 1, "embed_dim": 16}  # fmt: skip


def vid2robot_training(device, batch: int, steps: int, tiny: bool) -> dict[str, object]:
    """Paper-config training steps under bf16 autocast (AdamW, random videos; no task text, so no VTCL term)."""
    import torch

    from kernels.bench import steady_ms_and_peak
    from vid2robot.policy import Vid2RobotConfig, Vid2RobotLoss, Vid2RobotPolicy

    torch.manual_seed(0)
    config = Vid2RobotConfig.paper(**(TINY_VID2ROBOT if tiny else {}))
    policy = Vid2RobotPolicy(config).to(device).train()
    loss_fn = Vid2RobotLoss.from_config(config).to(device)
    optimizer = torch.optim.AdamW([*policy.parameters(), *loss_fn.parameters()], lr=1e-4)
    size = config.image_size
    prompt = torch.rand(batch, config.prompt_frames, 3, size, size, device=device)
    robot = torch.rand(batch, config.state_frames, 3, size, size, device=device)
    actions = torch.rand(batch, config.action_dim, device=device) * 2 - 1
    labels = torch.arange(batch, device=device) % 2

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = loss_fn(policy(prompt, robot), actions, task_labels=labels)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_ms, peak = steady_ms_and_peak(step, device, steps)
    return {"batch": batch, "steps": steps, "parameters_m": sum(p.numel() for p in policy.parameters()) / 1e6,
            "step_ms": step_ms, "samples_per_s": batch * 1e3 / step_ms, "peak_mib": peak}  # fmt: skip


def part_vid2robot(out: Path, dry: bool) -> None:
    r = vid2robot_training(_device(dry), batch=2 if dry else 8, steps=1 if dry else 10, tiny=dry)
    peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
    md = (f"# Vid2Robot paper configuration, bf16 autocast training\n\n{r['parameters_m']:.1f} M parameters, batch "
          f"{r['batch']}, {r['steps']} timed steps: {r['step_ms']:.1f} ms/step, {r['samples_per_s']:.2f} samples/s, "
          f"peak allocated {peak} MiB\n")  # fmt: skip
    _write(out, "vid2robot", r, md)


PARTS: dict[str, Callable[[Path, bool], None]] = {
    "kernel_tests": part_kernel_tests,
    "kernels": part_kernels,
    "biformer": part_biformer,
    "plain_detr": part_plain_detr,
    "vid2robot": part_vid2robot,
    "kernels_flex": part_kernels_flex,
}


# ---- targets -------------------------------------------------------------------------------------------------
def _load(out: Path, part: str) -> dict | None:
    path = out / f"{part}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(kernels: dict, op: str, backend: str) -> dict | None:
    """The ``backend`` row of the op's first benchmark setting (Q=1800 for BoxRPB, 64x64 for neighborhood)."""
    first = next((s["name"] for s in kernels["meta"]["settings"] if s["op"] == op), None)
    return next((r for r in kernels["rows"] if r["setting"] == first and r["backend"] == backend), None)


def _at_most(value: float | None, limit: float, kernel: float | None = None) -> tuple[str, str]:
    if value is None:
        return "no data", "-"
    shown = f"{value:.2f}x" + ("" if kernel is None else f" (kernel time {kernel:.2f}x)")
    return ("met" if value <= limit else "not met"), shown


def targets(out: Path) -> list[dict[str, str]]:
    """The issue's targets against whatever the parts measured ("no data" where a part did not deliver)."""
    rows: list[tuple[str, tuple[str, str]]] = []
    kernels = _load(out, "kernels") or {"meta": {"settings": []}, "rows": []}
    box = _row(kernels, "boxrpb", "triton") or {}
    rows.append(("BoxRPB forward <= 1.3x SDPA (Q=1800)",
                 _at_most(box.get("fwd_ms_vs_sdpa"), 1.3, box.get("fwd_kernel_ms_vs_sdpa"))))  # fmt: skip
    rows.append(("BoxRPB fwd+bwd <= 2x SDPA (Q=1800)",
                 _at_most(box.get("fwd_bwd_ms_vs_sdpa"), 2.0, box.get("fwd_bwd_kernel_ms_vs_sdpa"))))  # fmt: skip
    speedups = {}
    for r in kernels["rows"]:
        if r["op"] == "routing" and r["backend"] == "triton" and r.get("fwd_bwd_ms_vs_reference"):
            speedups[r["setting"]] = 1 / r["fwd_bwd_ms_vs_reference"]
    verdict = ("no data", "-")
    if speedups:
        shown = ", ".join(f"{name}: {s:.2f}x" for name, s in speedups.items())
        verdict = ("met" if min(speedups.values()) >= 3 else "not met", shown)
    rows.append(("routing fwd+bwd >= 3x faster than the official gather (every setting)", verdict))
    hood = _row(kernels, "neighborhood", "triton") or {}
    rows.append(("neighborhood forward <= 1.2x dense SDPA",
                 _at_most(hood.get("fwd_ms_vs_sdpa"), 1.2, hood.get("fwd_kernel_ms_vs_sdpa"))))  # fmt: skip
    rows.append(("BiFormer-T training >= official gather's images/s at no more peak memory", _biformer(out)))
    return [{"target": name, "verdict": v, "measured": m} for name, (v, m) in rows]


def _biformer(out: Path) -> tuple[str, str]:
    result = _load(out, "biformer") or {"rows": []}
    train = {r["backend"]: r for r in result["rows"] if r["train"] and "error" not in r}
    if not {"reference", "triton"} <= train.keys():
        return "no data", "-"
    ref, fused = train["reference"], train["triton"]
    speed, memory = fused["images_per_s"] / ref["images_per_s"], fused["peak_mib"] / ref["peak_mib"]
    verdict = "met" if speed >= 1 and memory <= 1 else "not met"
    return verdict, f"{speed:.2f}x images/s, {memory:.2f}x peak memory"


def paper_sizes(out: Path) -> list[str]:
    """One line per paper-size result (no targets there): fused against reference, and Vid2Robot's throughput."""
    lines = []
    detr = (_load(out, "plain_detr") or {"rows": []})["rows"]
    for dtype in dict.fromkeys(r["dtype"] for r in detr):
        done = {r["backend"]: r for r in detr if r["dtype"] == dtype and "error" not in r}
        if {"reference", "triton"} <= done.keys():
            ref, fused = done["reference"], done["triton"]
            memory = (
                ""
                if ref["peak_mib"] is None
                else f", peak {fused['peak_mib']:.0f} vs {ref['peak_mib']:.0f} MiB"
            )
            lines.append(f"Plain-DETR training step, {dtype}: fused BoxRPB {fused['step_ms']:.0f} ms vs reference "
                         f"{ref['step_ms']:.0f} ms{memory}")  # fmt: skip
    v2r = _load(out, "vid2robot")
    if v2r:
        peak = "" if v2r["peak_mib"] is None else f", peak {v2r['peak_mib']:.0f} MiB"
        lines.append(
            f"Vid2Robot paper config, bf16: {v2r['samples_per_s']:.1f} samples/s (batch {v2r['batch']}){peak}"
        )
    return lines


def write_summary(out: Path, records: list[dict], dry: bool) -> None:
    goals, paper = targets(out), paper_sizes(out)
    result = {"dry_run": dry, "parts": records, "targets": goals, "paper_sizes": paper}
    _write(out, "summary", result, summary_markdown(records, goals, paper, dry))


def summary_markdown(records: list[dict], goals: list[dict], paper: list[str], dry: bool) -> str:
    lines = ["# GPU check summary", ""]
    if dry:
        lines += ["**Dry run** (CPU, tiny sizes, Triton interpreted): the numbers mean nothing.", ""]
    lines += ["| part | status | seconds | budget s | note |", "|---|---|---:|---:|---|"]
    for r in records:
        note = "; ".join(x for x in (r.get("note"), r.get("error", "")[:150]) if x)
        lines.append(f"| {r['part']} | {r['status']} | {r['seconds']:.0f} | {r['budget_s']} | {note} |")
    lines += ["", "| target | verdict | measured |", "|---|---|---|"]
    lines += [f"| {g['target']} | {g['verdict']} | {g['measured']} |" for g in goals]
    lines += [""] + [f"- {line}" for line in paper]
    return "\n".join(lines).rstrip() + "\n"


# ---- running -------------------------------------------------------------------------------------------------
def run_subprocess(part: str, cmd: list[str], budget: float, log: Path) -> dict:
    """Run one part's process under ``budget`` seconds (its whole process group killed past it)."""
    start = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    record = {"part": part, "seconds": time.monotonic() - start, "budget_s": round(budget)}
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    if code is None:
        return {**record, "status": "timeout", "error": f"killed after {budget:.0f} s; last line: {tail[0]}"}
    if code != 0:
        return {**record, "status": "failed", "error": f"exit {code}: {tail[0]}"}
    return {**record, "status": "ok"}


def run_in_process(part: str, out: Path, budget: float) -> dict:
    start = time.monotonic()
    try:
        PARTS[part](out, True)
        status, error = "ok", ""
    except Exception as exc:  # recorded; the next part still runs
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    record = {"part": part, "status": status, "seconds": time.monotonic() - start, "budget_s": round(budget)}
    return {**record, "error": error} if error else record


def merged(records: list[dict], earlier: dict[str, dict]) -> list[dict]:
    """This run's records, and an earlier run's for the parts not rerun (marked), in the parts' order."""
    done = {r["part"]: r for r in records}
    kept = {p: {**r, "note": "earlier run"} for p, r in earlier.items() if p not in done}
    return [done.get(p) or kept[p] for p in PARTS if p in done or p in kept]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vid2robot.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "gpu_check")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated subset (a rerun keeps the others' records)"
    )
    parser.add_argument("--budget", type=float, default=TOTAL_BUDGET, help="seconds for all parts together")
    parser.add_argument("--part-budget", type=float, default=None, help="seconds per part (default: BUDGETS)")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes on CPU, every part in this process"
    )
    parser.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)  # a part's own process
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the parts' processes run in the repository root
    if args.part:
        PARTS[args.part](args.out, False)
        return
    chosen = args.parts.split(",")
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    if args.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports the kernels
        os.environ.setdefault(
            "OMP_NUM_THREADS", "1"
        )  # tiny ops: extra threads only contend (before torch loads)
    deadline = time.monotonic() + args.budget
    earlier = (
        {} if args.dry_run else {r["part"]: r for r in (_load(args.out, "summary") or {}).get("parts", [])}
    )
    records = []
    for part in [p for p in PARTS if p in chosen]:
        budget = min(args.part_budget or BUDGETS[part], deadline - time.monotonic())
        if budget < 5:
            records.append({"part": part, "status": "skipped", "seconds": 0.0, "budget_s": 0,
                            "error": "the total budget was spent"})  # fmt: skip
        elif args.dry_run:
            records.append(run_in_process(part, args.out, budget))
        else:
            cmd = [sys.executable, "-m", "vid2robot.gpu_check", "--part", part, "--out", str(args.out)]
            args.out.mkdir(parents=True, exist_ok=True)
            records.append(run_subprocess(part, cmd, budget, args.out / f"{part}.log"))
        print(f"gpu_check: {records[-1]}", flush=True)
        write_summary(args.out, merged(records, earlier), args.dry_run)
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
