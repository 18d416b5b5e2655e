"""What a closed-loop evaluation reports: per-task success with Wilson 95% intervals, the prompt-swap matrix
(for opposite pairs: which task the robot did first, per prompt), and the ``results.json`` / ``results.md``
files, written atomically."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from detection.safe_files import atomic_write_json, atomic_write_text
from vid2robot.sim.metaworld_env import OPPOSITE_TASK


@dataclass
class EpisodeRecord:
    """One evaluated episode, as ``results.json`` lists it under ``per_episode``."""

    seed: int
    success: bool
    first_done: str | None  # the task whose success came first (with a probe: either task of the pair)
    steps: int
    prompt_episode: int


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial rate (scipy's; sound at 0% and 100%, unlike +-2 SE)."""
    if trials <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def task_result(episodes: list[EpisodeRecord]) -> dict:
    """A task's entry of ``results.json``: success rate, interval, mean steps and the episodes."""
    successes, n = sum(e.success for e in episodes), len(episodes)
    return {
        "success_rate": successes / n,
        "successes": successes,
        "episodes": n,
        "ci95": wilson_interval(successes, n),
        "mean_steps": float(np.mean([e.steps for e in episodes])),
        "per_episode": [asdict(e) for e in episodes],
    }


def pooled_success(results: dict[str, dict]) -> tuple[float, tuple[float, float]]:
    """Mean success over tasks with its interval (equal episodes per task: the pooled rate is the mean)."""
    total = sum(r["successes"] for r in results.values())
    trials = sum(r["episodes"] for r in results.values())
    return float(np.mean([r["success_rate"] for r in results.values()])), wilson_interval(total, trials)


def write_closed_loop_report(summary: dict, out_dir: Path) -> None:
    atomic_write_json(out_dir / "results.json", summary)
    atomic_write_text(out_dir / "results.md", closed_loop_markdown(summary))


def prompt_swap_matrix(results: dict[str, dict]) -> dict[str, dict]:
    """Per opposite pair evaluated together: for each prompt task, how often each task was done first.

    ``{"drawer-open-v3|drawer-close-v3": {prompt: {"drawer-open-v3": {...}, "drawer-close-v3": {...},
    "neither": {...}}}}``, each cell ``{"count", "rate", "ci95"}``; ``prompt_following`` is the diagonal's
    pooled rate with its Wilson interval.
    """
    matrix: dict[str, dict] = {}
    for task in results:
        partner = OPPOSITE_TASK.get(task)
        if partner not in results or f"{partner}|{task}" in matrix:
            continue
        pair = (task, partner)
        rows = {}
        for prompt in pair:
            firsts = [e["first_done"] for e in results[prompt]["per_episode"]]
            n = len(firsts)
            rows[prompt] = {
                column: {"count": k, "rate": k / n, "ci95": wilson_interval(k, n)}
                for column, k in [(t, firsts.count(t)) for t in pair] + [("neither", firsts.count(None))]
            }
        followed = sum(rows[p][p]["count"] for p in pair)
        trials = sum(results[p]["episodes"] for p in pair)
        matrix["|".join(pair)] = {
            "prompts": rows,
            "prompt_following": followed / trials,
            "prompt_following_ci95": wilson_interval(followed, trials),
        }
    return matrix


def prompt_swap_markdown(matrix: dict[str, dict]) -> str:
    """One table per pair: rows are prompts, columns the task done first (95% Wilson intervals)."""
    if not matrix:
        return ""
    lines = ["## Prompt swap: which task was done first", ""]
    for key, entry in matrix.items():
        pair = key.split("|")
        lines += [
            f"| prompt | did {pair[0]} | did {pair[1]} | neither |",
            "|---|---|---|---|",
        ]
        for prompt, row in entry["prompts"].items():
            cells = [_rate_cell(row[column]) for column in (*pair, "neither")]
            lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
        low, high = entry["prompt_following_ci95"]
        lines += ["", f"Prompt followed: {entry['prompt_following']:.1%} [{low:.1%}, {high:.1%}]", ""]
    return "\n".join(lines)


def _rate_cell(cell: dict) -> str:
    low, high = cell["ci95"]
    return f"{cell['rate']:.0%} [{low:.0%}, {high:.0%}]"


def closed_loop_markdown(summary: dict) -> str:
    """A markdown table of per-task and mean success with 95% Wilson intervals."""
    coeff = summary.get("temporal_ensemble_coeff")
    blending = "" if coeff is None else f"; overlapping action chunks blended (coefficient {coeff})"
    lines = [
        f"# Closed-loop success: {summary['policy']}",
        "",
        f"Prompts: `{summary['prompt_camera']}` camera, `{summary['prompt_split']}` episodes of "
        f"`{summary['prompt_dataset']}`; {summary['episodes_per_task']} episodes per task, seed {summary['seed']}, "
        f"max {summary['max_steps']} steps{blending}.",
        "",
        "| task | success | 95% CI | successes | mean steps |",
        "|---|---|---|---|---|",
    ]
    for task, r in summary["tasks"].items():
        low, high = r["ci95"]
        lines.append(
            f"| {task} | {r['success_rate']:.1%} | [{low:.1%}, {high:.1%}] | {r['successes']}/{r['episodes']} "
            f"| {r['mean_steps']:.0f} |"
        )
    low, high = summary["mean_ci95"]
    lines.append(f"| **mean** | **{summary['mean_success_rate']:.1%}** | [{low:.1%}, {high:.1%}] | | |")
    swap = prompt_swap_markdown(summary.get("prompt_swap", {}))
    return "\n".join(lines) + "\n" + ("\n" + swap if swap else "")
