"""The README's table rows come from the runs' results.json: counts, intervals and prompt following."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vid2robot.evaluation.results_table import main


def _cell(count: int) -> dict:
    return {"count": count}


def _results(open_done: tuple[int, int], close_done: tuple[int, int]) -> dict:
    """Opposite drawer pair, 10 episodes per prompt: (did open, did close) first for each prompt."""
    return {
        "tasks": {
            "drawer-open-v3": {"successes": open_done[0], "episodes": 10},
            "drawer-close-v3": {"successes": close_done[1], "episodes": 10},
        },
        "mean_success_rate": (open_done[0] + close_done[1]) / 20,
        "mean_ci95": [0.0, 1.0],
        "prompt_swap": {
            "drawer-open-v3|drawer-close-v3": {
                "prompts": {
                    "drawer-open-v3": {
                        "drawer-open-v3": _cell(open_done[0]),
                        "drawer-close-v3": _cell(open_done[1]),
                        "neither": _cell(10 - sum(open_done)),
                    },
                    "drawer-close-v3": {
                        "drawer-open-v3": _cell(close_done[0]),
                        "drawer-close-v3": _cell(close_done[1]),
                        "neither": _cell(10 - sum(close_done)),
                    },
                }
            }
        },
    }


def test_rows_count_what_each_prompt_made_the_robot_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "step=005000"
    runs.mkdir()
    (runs / "a.json").write_text(json.dumps(_results((10, 0), (0, 10))))
    (runs / "b.json").write_text(json.dumps(_results((2, 8), (0, 10))))
    main([f"follows={runs / 'a.json'}", f"ignores={runs / 'b.json'}"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | drawer-open | drawer-close | mean")
    assert lines[2].startswith("| follows | 10/10 | 10/10 | 100.0% [0.0, 100.0] | 100.0% [83.9, 100.0]")
    assert lines[3].startswith("| ignores | 2/10 | 10/10 | 60.0% [0.0, 100.0] | 60.0% [38.7, 78.1]")


def test_a_file_that_is_not_a_results_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"val/loss": 1.0}))
    with pytest.raises(ValueError, match=r"metrics\.json: not a closed-loop results\.json"):
        main([f"run={tmp_path / 'metrics.json'}"])
