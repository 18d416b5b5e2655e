"""Writes offline-evaluation results: JSON, a markdown table, and a picture of attention over prompt frames."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: robots and CI have no display
import matplotlib.pyplot as plt
import numpy as np

from detection.safe_files import atomic_open, atomic_write_json, atomic_write_text
from vid2robot.evaluation.offline import AttentionExample, OfflineResults


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def offline_markdown(results: OfflineResults) -> str:
    dims = results.action_names
    header = ["task", "items", "bin acc %", *[f"acc {d} %" for d in dims], "MAE", "retrieval %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = [*results.per_task.items(), ("**all**", results.overall)]
    for task, row in rows:
        cells = [
            task,
            str(row["items"]),
            _percent(row["bin_accuracy"]),
            *[_percent(v) for v in row["bin_accuracy_per_dim"]],
            f"{row['mae']:.4f}",
            _percent(row["retrieval_accuracy"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_prompt_attention(examples: list[AttentionExample], path: Path) -> None:
    """One row per task: the prompt frames, and under them how much the robot's state tokens attend to each."""
    if not examples:
        raise ValueError("no attention examples to plot (the policy returns no prompt_frame_attention)")
    frames = examples[0].prompt_frames.shape[0]
    fig, axes = plt.subplots(
        2 * len(examples),
        frames,
        figsize=(1.1 * frames, 2.6 * len(examples)),
        squeeze=False,
        gridspec_kw={"height_ratios": [1, 0.6] * len(examples)},
    )
    for row, example in enumerate(examples):
        image_axes, bar_axes = axes[2 * row], axes[2 * row + 1]
        for t, ax in enumerate(image_axes):
            ax.imshow(example.prompt_frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
        image_axes[0].set_ylabel(example.task, rotation=0, ha="right", va="center", fontsize=9)
        peak = float(np.max(example.attention)) or 1.0
        for t, ax in enumerate(bar_axes):
            ax.bar([0], [example.attention[t]], color="tab:orange", width=0.8)
            ax.set_ylim(0, peak * 1.05)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{example.attention[t]:.2f}", fontsize=7)
    fig.suptitle("State-to-prompt cross-attention over prompt frames (bars: attention weight)")
    fig.tight_layout()
    with atomic_open(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def write_offline_report(results: OfflineResults, out_dir: Path) -> dict[str, Path]:
    """Write ``offline_results.{json,md}`` and ``prompt_attention.png`` (if any); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "offline_results.json", "markdown": out_dir / "offline_results.md"}
    atomic_write_json(paths["json"], results.to_dict())
    atomic_write_text(paths["markdown"], offline_markdown(results))
    if results.attention_examples:
        paths["attention"] = out_dir / "prompt_attention.png"
        plot_prompt_attention(results.attention_examples, paths["attention"])
    return paths
