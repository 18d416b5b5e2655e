"""``make gpu-check`` without a GPU: its CPU dry run runs every part at tiny sizes and writes every file, so the
one GPU run cannot fail on a typo; the runner records a failing or overrunning part and goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vid2robot import gpu_check

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_run_writes_every_part_and_the_targets(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "vid2robot.gpu_check", "--dry-run", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert [(p["part"], p["status"]) for p in summary["parts"]] == [(part, "ok") for part in gpu_check.PARTS]
    for part in gpu_check.PARTS:
        assert (tmp_path / f"{part}.json").is_file() and (tmp_path / f"{part}.md").is_file()
    kernels = json.loads((tmp_path / "kernels.json").read_text())
    assert kernels["failures"] == []
    assert {(r["op"], r["backend"]) for r in kernels["rows"]} == {
        (op, backend)
        for op in ("boxrpb", "routing", "neighborhood")
        for backend in ("sdpa", "reference", "triton")
    }
    plain_detr = json.loads((tmp_path / "plain_detr.json").read_text())["rows"]
    assert [(r["backend"], r["dtype"]) for r in plain_detr if "error" not in r] == [
        ("reference", "float32"), ("triton", "float32"), ("reference", "bfloat16"), ("triton", "bfloat16")
    ]  # fmt: skip
    verdicts = {t["target"]: t["verdict"] for t in summary["targets"]}
    assert len(verdicts) == 5
    # every kernel target found its rows; BiFormer's needs the triton row, which only the GPU run measures
    assert [v for t, v in verdicts.items() if not t.startswith("BiFormer")] == ["not met"] * 4
    assert "**Dry run**" in (tmp_path / "summary.md").read_text()
    assert [line.split(":")[0] for line in summary["paper_sizes"]] == [
        "Plain-DETR training step, float32", "Plain-DETR training step, bfloat16", "Vid2Robot paper config, bf16"
    ]  # fmt: skip


def test_runner_records_failures_and_timeouts(tmp_path: Path) -> None:
    def run(code: str, budget: float) -> dict:
        return gpu_check.run_subprocess("part", [sys.executable, "-c", code], budget, tmp_path / "part.log")

    assert run("print('fine')", 30)["status"] == "ok"
    failed = run("raise SystemExit('boom')", 30)
    assert failed["status"] == "failed" and "boom" in failed["error"]
    slow = run("import time; print('started', flush=True); time.sleep(60)", 1)
    assert slow["status"] == "timeout" and "started" in slow["error"] and slow["seconds"] < 30


def test_gpu_run_fits_nine_minutes_and_its_arguments_parse(tmp_path: Path) -> None:
    assert set(gpu_check.BUDGETS) == set(gpu_check.PARTS)
    assert sum(gpu_check.BUDGETS.values()) <= gpu_check.TOTAL_BUDGET <= 9 * 60
    from kernels import bench

    for stem, backends, ops in (("kernels", "sdpa,reference,triton", "boxrpb"), ("f", "flex", "routing")):
        args = bench.build_parser().parse_args(
            gpu_check._kernel_bench_args(tmp_path, False, stem, backends, ops)
        )
        assert args.device == "cuda" and not args.tiny
    for name in gpu_check.KERNEL_TESTS:
        assert (REPO / name.split("::")[0]).is_file()
    with pytest.raises(SystemExit):
        gpu_check.main(["--parts", "kernels,nope"])


def test_a_rerun_of_some_parts_keeps_the_others_records(tmp_path: Path) -> None:
    earlier = [{"part": "kernels", "status": "ok", "seconds": 90.0, "budget_s": 150},
               {"part": "plain_detr", "status": "timeout", "seconds": 90.0, "budget_s": 90}]  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"dry_run": False, "parts": earlier, "targets": []}))
    gpu_check.main(["--parts", "plain_detr", "--out", str(tmp_path), "--budget", "0"])  # no time: skipped
    parts = json.loads((tmp_path / "summary.json").read_text())["parts"]
    assert [(p["part"], p["status"], p.get("note")) for p in parts] == [
        ("kernels", "ok", "earlier run"), ("plain_detr", "skipped", None)
    ]  # fmt: skip


def test_targets_read_the_first_setting_and_every_routing_setting(tmp_path: Path) -> None:
    settings = [{"op": "boxrpb", "name": "train"}, {"op": "boxrpb", "name": "eval"},
                {"op": "routing", "name": "r1"}, {"op": "routing", "name": "r2"},
                {"op": "neighborhood", "name": "n"}]  # fmt: skip

    def row(op: str, setting: str, backend: str, **values: float) -> dict:
        return {"op": op, "setting": setting, "backend": backend, **values}

    rows = [row("boxrpb", "train", "triton", fwd_ms_vs_sdpa=1.2, fwd_kernel_ms_vs_sdpa=1.1, fwd_bwd_ms_vs_sdpa=2.5),
            row("boxrpb", "eval", "triton", fwd_ms_vs_sdpa=9.0, fwd_bwd_ms_vs_sdpa=1.0),
            row("routing", "r1", "triton", fwd_bwd_ms_vs_reference=0.25),
            row("routing", "r2", "triton", fwd_bwd_ms_vs_reference=0.5),
            row("neighborhood", "n", "triton", fwd_ms_vs_sdpa=1.1)]  # fmt: skip
    (tmp_path / "kernels.json").write_text(json.dumps({"meta": {"settings": settings}, "rows": rows}))
    biformer = [{"backend": "reference", "train": True, "images_per_s": 400.0, "peak_mib": 4800.0},
                {"backend": "triton", "train": True, "images_per_s": 420.0, "peak_mib": 2600.0}]  # fmt: skip
    (tmp_path / "biformer.json").write_text(json.dumps({"rows": biformer}))
    found = [(t["verdict"], t["measured"]) for t in gpu_check.targets(tmp_path)]
    assert found == [
        ("met", "1.20x (kernel time 1.10x)"),
        ("not met", "2.50x"),
        ("not met", "r1: 4.00x, r2: 2.00x"),
        ("met", "1.10x"),
        ("met", "1.05x images/s, 0.54x peak memory"),
    ]
    assert [t["verdict"] for t in gpu_check.targets(tmp_path / "empty")] == ["no data"] * 5
