"""One markdown row per closed-loop run: successes per task, mean and prompt following, with 95% intervals.

``python -m vid2robot.evaluation.results_table LABEL=RUN/results.json ...`` prints the rows the README's
results tables are made of, so a table is rebuilt from the runs' own files rather than typed in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vid2robot.sim.closed_loop_report import wilson_interval


def load_results(path: Path) -> dict:
    """A ``results.json`` written by ``vid2robot-eval mode=closed_loop`` (or the demo), checked for its keys."""
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable results.json ({error})") from error
    if not isinstance(results, dict) or not {"tasks", "mean_success_rate", "mean_ci95"} <= set(results):
        raise ValueError(
            f"{path}: not a closed-loop results.json (needs tasks, mean_success_rate, mean_ci95)"
        )
    return results


def prompt_following(results: dict) -> tuple[int, int]:
    """Episodes, over every opposite pair, in which the prompt's task was done first; and all such episodes."""
    followed = trials = 0
    for entry in results.get("prompt_swap", {}).values():
        for prompt, row in entry["prompts"].items():
            followed += row[prompt]["count"]
            trials += sum(cell["count"] for cell in row.values())
    return followed, trials


def header(tasks: list[str]) -> str:
    names = [task.removesuffix("-v3") for task in tasks]
    return "\n".join(
        [
            "| run | " + " | ".join(names) + " | mean (95% CI) | prompt followed (95% CI) |",
            "|---|" + "---|" * (len(names) + 2),
        ]
    )


def _percent(rate: float, interval: tuple[float, float]) -> str:
    return f"{100 * rate:.1f}% [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def row(label: str, results: dict) -> str:
    cells = [f"{t['successes']}/{t['episodes']}" for t in results["tasks"].values()]
    cells.append(_percent(results["mean_success_rate"], results["mean_ci95"]))
    followed, trials = prompt_following(results)
    cells.append(_percent(followed / trials, wilson_interval(followed, trials)) if trials else "-")
    return f"| {label} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RESULTS_JSON")
    args = parser.parse_args(argv)
    labelled = []
    for run in args.runs:
        label, sep, path = run.partition("=")  # paths may hold "=" (epoch=005)
        if not sep:
            parser.error(f"{run!r}: expected LABEL=path/to/results.json")
        labelled.append((label, load_results(Path(path))))
    tasks = list(labelled[0][1]["tasks"])
    if any(list(results["tasks"]) != tasks for _, results in labelled):
        parser.error("the runs evaluated different tasks; make one table per task list")
    print(header(tasks))
    for label, results in labelled:
        print(row(label, results))


if __name__ == "__main__":
    main()
