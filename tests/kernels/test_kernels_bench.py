"""``python -m kernels.bench`` runs end to end at the tiny sizes and reports wall and (on CUDA) kernel time."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from kernels import bench


def test_tiny_run_writes_rows_for_every_backend(tmp_path: Path) -> None:
    bench.main(["--tiny", "--ops", "boxrpb", "--backends", "sdpa,reference,triton", "--repeats", "1",
                "--device", "cpu", "--out", str(tmp_path), "--stem", "kernels"])  # fmt: skip
    results = json.loads((tmp_path / "kernels.json").read_text())
    assert [r["backend"] for r in results["rows"]] == ["sdpa", "reference", "triton"]
    assert results["failures"] == [] and results["meta"]["sizes"] == "tiny"
    row = results["rows"][2]
    assert row["fwd_ms"] > 0 and row["fwd_bwd_ms"] > 0 and row["fwd_kernel_ms"] is None  # no device timer
    assert row["fwd_ms_vs_sdpa"] == row["fwd_ms"] / results["rows"][0]["fwd_ms"]
    assert "wall time per call (no device timer here)" in (tmp_path / "kernels.md").read_text()


def test_device_time_sums_one_device_and_markdown_shows_kernel_columns() -> None:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.randn(64, 64) @ torch.randn(64, 64)
    assert bench.device_time_ms(prof.events(), DeviceType.CPU) > 0
    assert bench.device_time_ms(prof.events()) == 0  # no CUDA events here
    row = {"op": "boxrpb", "setting": "s", "backend": "triton", "fwd_ms": 1.0, "fwd_bwd_ms": 3.0,
           "fwd_kernel_ms": 0.5, "fwd_bwd_kernel_ms": 2.0, "fwd_peak_mib": 1.0, "fwd_bwd_peak_mib": 2.0}  # fmt: skip
    bench.add_ratios([row])
    table = bench.markdown([row], "header", [{"setting": "s", "backend": "flex", "error": "boom"}])
    assert "| fwd kernel ms |" in table and "| 0.500 | 2.000 |" in table
    assert "- failed: s / flex: boom" in table
