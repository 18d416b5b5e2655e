"""Bad input given to each CLI: one line naming the key or file and the fix, exit status 2, files untouched.

The CLIs run in this process through their real Hydra entry points (``sys.argv``), so composition,
validation and the error report are the ones a user meets; one case per CLI also runs as a console script.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from vid2robot.cli import datagen, train
from vid2robot.cli import eval as eval_cli

CLIS: dict[str, Callable[[], None]] = {
    "vid2robot-train": train.main,
    "vid2robot-eval": eval_cli.main,
    "vid2robot-datagen": datagen.main,
}


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "hydra_out" not in p.parts}


def _run(app: str, args: list[str], tmp_path: Path, monkeypatch, capsys) -> tuple[int, str]:
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [app, *args, f"hydra.run.dir={tmp_path / 'hydra_out'}"])
    with pytest.raises(SystemExit) as exited:
        CLIS[app]()
    return exited.value.code, capsys.readouterr().err


@pytest.fixture
def user_files(tmp_path: Path) -> Path:
    """A folder a user keeps other things in: nothing in it may change."""
    folder = tmp_path / "data"
    (folder / "my_dataset" / "meta").mkdir(parents=True)
    (folder / "my_dataset" / "meta" / "notes.txt").write_text("keep me")
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "video.ckpt").write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(64))
    return folder


def _cases(folder: Path) -> list[tuple[str, list[str], str]]:
    dataset = f"data.root={folder / 'my_dataset'}"
    return [
        (
            "vid2robot-train",
            [dataset, "module.learning_rate=abc"],
            r"module\.learning_rate='abc': expected a number",
        ),
        (
            "vid2robot-train",
            [dataset, "task=bcz", "module.policy_class=Vid2RobotPolicy"],
            r"module\.policy_class=Vid2RobotPolicy takes a Vid2RobotConfig but module\.policy_config is a BCZConfig",
        ),
        (
            "vid2robot-train",
            [dataset, "trainer.max_steps=abc"],
            r"trainer\.max_steps='abc': expected an integer",
        ),
        ("vid2robot-train", [dataset, "data.batch_size=0"], r"need batch_size >= 1"),
        ("vid2robot-train", [f"data.root={folder / 'nowhere'}"], r"nowhere is not an episode dataset"),
        (
            "vid2robot-train",
            [dataset, "ckpt_path=last"],
            r"checkpoint to resume from not found: .*last\.ckpt",
        ),
        ("vid2robot-train", [dataset, "loggers=[wandb]"], r"unknown logger\(s\) \['wandb'\]"),
        ("vid2robot-eval", [f"checkpoint={folder / 'empty.ckpt'}"], r"empty\.ckpt is empty \(0 bytes\)"),
        ("vid2robot-eval", [f"checkpoint={folder / 'video.ckpt'}"], r"video\.ckpt is a video"),
        ("vid2robot-eval", [f"checkpoint={folder / 'none.ckpt'}"], r"no policy checkpoint at .*none\.ckpt"),
        ("vid2robot-eval", [f"checkpoint={folder / 'empty.ckpt'}", "mode=online"], r"mode must be one of"),
        ("vid2robot-datagen", [f"out_dir={folder}", "overwrite=true"], r"not a vid2robot episode dataset"),
        (
            "vid2robot-datagen",
            [f"out_dir={folder / 'new'}", "tasks=[reach]"],
            r"unknown Meta-World task 'reach'",
        ),
        ("vid2robot-datagen", [f"out_dir={folder / 'new'}", "hand_pool=train"], r"hand_pool must be one of"),
        (
            "vid2robot-datagen",
            [f"out_dir={folder / 'new'}", "episodes_per_task=0"],
            r"episodes_per_task must be >= 1",
        ),
    ]


def test_every_cli_refuses_bad_input_in_one_line_and_changes_nothing(
    user_files: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    before = _snapshot(tmp_path)
    for app, args, message in _cases(user_files):
        code, err = _run(app, args, tmp_path, monkeypatch, capsys)
        assert code == 2, (app, args, err)
        assert err.startswith(f"{app}: error: ") and "Traceback" not in err, (app, args, err)
        assert __import__("re").search(message, err), (app, args, err)
        assert _snapshot(tmp_path) == before, (app, args)
    assert not (user_files / "new").exists()


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_eval_on_a_missing_device_names_the_fix(tmp_path: Path, monkeypatch, capsys, tiny_checkpoint) -> None:
    code, err = _run(
        "vid2robot-eval", [f"checkpoint={tiny_checkpoint}", "device=cuda"], tmp_path, monkeypatch, capsys
    )
    assert code == 2 and "no usable CUDA device" in err and "use device=cpu" in err


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    from vid2robot.policy import Vid2RobotConfig, Vid2RobotPolicy, save_policy

    config = Vid2RobotConfig(image_size=32, prompt_frames=4, state_frames=2, d_model=32, num_heads=2)
    return save_policy(Vid2RobotPolicy(config), tmp_path / "policy")


@pytest.mark.slow
def test_console_script_prints_the_refusal_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vid2robot.cli.train", f"data.root={tmp_path}", "module.learning_rate=abc",
         f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "vid2robot-train: error: module.learning_rate='abc': expected a number (got str); "
        "e.g. module.learning_rate=3.0e-4"
    ]
