"""Bad files given to the loaders: a clear error naming the file and the fix, nothing on disk changed.

Each case builds a folder of files a careless or hostile user could pass; the loader must refuse with a
message matching the table (and never advise turning off safe loading), and leave every byte as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from detection.safe_files import CheckpointError
from vid2robot.policy import Vid2RobotPolicy, load_policy, save_policy


class RunsCode:
    """A pickle payload: loading it unsafely would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _policy_dir(tmp_path: Path, tiny_config) -> Path:
    return save_policy(Vid2RobotPolicy(tiny_config()).eval(), tmp_path / "policy")


def _truncated_safetensors(tmp_path: Path, tiny_config) -> Path:
    folder = _policy_dir(tmp_path, tiny_config)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    return folder


def _config_not_json(tmp_path: Path, tiny_config) -> Path:
    folder = _policy_dir(tmp_path, tiny_config)
    (folder / "config.json").write_text("{'policy_class': broken")
    return folder


def _file(name: str, content: bytes | Callable[[Path], None]) -> Callable[[Path, object], Path]:
    def make(tmp_path: Path, _tiny_config) -> Path:
        path = tmp_path / name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        return path

    return make


def _save(obj) -> Callable[[Path], None]:
    return lambda path: torch.save(obj, path)


def _detector_like(path: Path) -> None:
    torch.save({"state_dict": {"model.w": torch.ones(1)}, "hyper_parameters": {"model": {}}}, path)


MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(200)

LOADER_CASES = {
    "zero-byte .ckpt": (_file("empty.ckpt", b""), r"empty\.ckpt is empty \(0 bytes\)"),
    "truncated .ckpt": (
        _file("cut.ckpt", lambda p: p.write_bytes(_bytes_of({"state_dict": {}})[:300])),
        r"cut\.ckpt is a truncated or corrupt policy checkpoint",
    ),
    "mp4 renamed to .ckpt": (
        _file("video.ckpt", MP4_HEAD),
        r"video\.ckpt is a video \(mp4/mov\), not a PyTorch",
    ),
    "text file as .ckpt": (_file("notes.ckpt", b'{"a": 1}'), r"notes\.ckpt is a JSON or text file"),
    "non-dict .ckpt": (_file("list.ckpt", _save([1, 2, 3])), r"list\.ckpt holds a list, not a dict"),
    "pickle with code": (
        _file("evil.ckpt", _save({"state_dict": RunsCode()})),
        r"evil\.ckpt holds Python objects that safe loading .* GLOBAL posix\.system",
    ),
    "checkpoint of another model": (
        _file("detector.ckpt", _detector_like),
        r"detector\.ckpt is not a policy checkpoint .*Detector\.from_checkpoint",
    ),
    "truncated .safetensors": (
        _truncated_safetensors,
        r"model\.safetensors is not a readable safetensors file",
    ),
    "config.json not JSON": (_config_not_json, r"config\.json is not valid JSON"),
    "weights file instead of its folder": (
        lambda tmp_path, tiny: _policy_dir(tmp_path, tiny) / "model.safetensors",
        r"pass the folder that holds it",
    ),
    "empty folder": (lambda tmp_path, _: tmp_path, r"has no config\.json .*save_policy"),
}


def _bytes_of(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(LOADER_CASES))
def test_load_policy_refuses_bad_files_clearly(case: str, tmp_path: Path, tiny_config, capfd) -> None:
    make, message = LOADER_CASES[case]
    path = make(tmp_path, tiny_config)
    before = _snapshot(tmp_path)
    with pytest.raises((CheckpointError, FileNotFoundError), match=message) as raised:
        load_policy(path)
    text = str(raised.value)
    assert str(path.name) in text or str(path) in text
    assert "weights_only=False" not in text and "set to `False`" not in text  # never the unsafe advice
    assert _snapshot(tmp_path) == before
    assert "this must never run" not in capfd.readouterr().out


def test_detector_loader_refuses_bad_files_clearly(tmp_path: Path) -> None:
    from detection import Detector

    cases = {
        tmp_path / "empty.ckpt": (b"", r"empty\.ckpt is empty"),
        tmp_path / "video.ckpt": (MP4_HEAD, r"video\.ckpt is a video"),
    }
    for path, (content, _) in cases.items():
        path.write_bytes(content)
    torch.save({"hyper_parameters": {"policy_class": "Vid2RobotPolicy"}}, tmp_path / "policy.ckpt")
    before = _snapshot(tmp_path)
    for path, (_, message) in cases.items():
        with pytest.raises(CheckpointError, match=message):
            Detector.from_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"not a PlainDETRModule checkpoint .*load_policy"):
        Detector.from_checkpoint(tmp_path / "policy.ckpt")
    with pytest.raises(FileNotFoundError, match="no detector checkpoint"):
        Detector.from_checkpoint(tmp_path / "missing.ckpt")
    assert _snapshot(tmp_path) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_with_the_fix(tmp_path: Path, tiny_config) -> None:
    folder = _policy_dir(tmp_path, tiny_config)
    with pytest.raises(
        ValueError, match=r"device='cuda' but this machine has no usable CUDA .* use device=cpu"
    ):
        load_policy(folder, map_location="cuda")
    with pytest.raises(ValueError, match=r"device='gpu0' is not a torch device"):
        load_policy(folder, map_location="gpu0")


def test_prompt_files_too_short_or_malformed(tmp_path: Path) -> None:
    from ros_nodes.prompt import ShortPromptWarning, prompt_tensor

    one = tmp_path / "one.npy"
    np.save(one, np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"one\.npy has 1 frame\(s\); a prompt needs at least 2"):
        prompt_tensor(one, 4, 8)
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.warns(ShortPromptWarning, match=r"short\.npy has 3 frames but the policy samples 4"):
        assert prompt_tensor(short, 4, 8).shape == (4, 3, 8, 8)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([RunsCode()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"objects\.npy: expected a uint8 \[T, H, W, 3\] array"):
        prompt_tensor(objects, 4, 8)


def test_atomic_writes_keep_ordinary_file_modes(tmp_path: Path) -> None:
    """A temporary file from mkstemp is private (0600); the written file must not be."""
    from detection.safe_files import atomic_write_text

    fresh = atomic_write_text(tmp_path / "fresh.json", "{}")
    probe = tmp_path / "probe"
    probe.write_text("")
    assert fresh.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777
    shared = tmp_path / "shared.json"
    shared.write_text("old")
    shared.chmod(0o664)
    atomic_write_text(shared, "new")
    assert shared.stat().st_mode & 0o777 == 0o664 and shared.read_text() == "new"
