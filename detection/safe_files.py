"""Files a later step reads: written atomically, loaded safely, refused with the file named and the fix said.

Shared by every package that saves or loads weights, datasets or results; it lives here, the lowest package
that reads and writes such files, so that ``vid2robot`` and ``ros_nodes`` import it with every arrow still
pointing down (``ros_nodes -> vid2robot -> detection -> kernels``).

- Writes go to a temporary file beside the target (same filesystem, whatever ``$TMPDIR`` is), are flushed and
  fsynced, then renamed over it: a reader sees the old file or the new one, never half of one.
- Loads use ``torch.load(weights_only=True)`` or safetensors. A file that is missing, empty, truncated, of
  another kind, or holds pickled objects that safe loading refuses gets a ``CheckpointError`` naming it; the
  advice never includes turning safe loading off.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import torch

_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80"  # a pickle protocol header: torch's pre-1.6 format
_MP4_MARKERS = (b"ftyp",)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class CheckpointError(ValueError):
    """A weights file that cannot be loaded; the message names the file, what was found and what to do."""


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` keeps its old content (or stays absent).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes only ('wb' or 'w'), got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file private (0600); the result gets the target's mode, or what open() would give
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    with atomic_open(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def atomic_save_safetensors(
    state: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None
) -> Path:
    from safetensors.torch import save

    with atomic_open(path) as handle:
        handle.write(save(state, metadata=metadata))
    return Path(path)


def replace_directory(staging: Path, target: Path) -> None:
    """Move a complete ``staging`` folder to ``target``, replacing what is there, never leaving neither.

    The old ``target`` is renamed aside first and removed only once ``staging`` stands in its place, so an
    interruption leaves either the old folder or the new one (plus, at worst, a hidden ``.<name>.old-*``).
    Both must be on one filesystem (put ``staging`` beside ``target``).
    """
    if target.exists() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.rename(staging, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old)


def _kind_of(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        return "an empty file"
    if any(marker in head for marker in _MP4_MARKERS):
        return "a video (mp4/mov)"
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive"
    if head.startswith(b"{") or head.startswith(b"["):
        return "a JSON or text file"
    return "an unknown kind of file"


def load_torch_file(
    path: str | Path, map_location: str | torch.device = "cpu", what: str = "checkpoint"
) -> dict:
    """``torch.load(path, weights_only=True)`` of a dict, with a ``CheckpointError`` for every bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    size = path.stat().st_size
    fix = f"re-create it (e.g. re-run the training or export that wrote it) or pass another {what}"
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a {what}; {fix}")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(_ZIP_MAGIC):
        verify_zip(path, what, fix)
    elif not head.startswith(_LEGACY_MAGIC):
        raise CheckpointError(f"{path} is {_kind_of(path)}, not a PyTorch {what}; {fix}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message suggests weights_only=False, which would run arbitrary code from the file.
        lines = [line.strip() for line in str(err).splitlines()]
        found = next(
            (line for line in lines if "GLOBAL" in line or "Unsupported" in line), "a type it blocks"
        )
        raise CheckpointError(
            f"{path} holds Python objects that safe loading (weights_only=True) does not accept ({found}). "
            f"This package loads weights safely only: if you trust the file, re-save its tensors as a plain "
            f"dict (or with safetensors) in the environment that wrote it; otherwise {fix}"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(
            f"{path} cannot be read as a {what} ({type(err).__name__}: {err}); {fix}"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} holds a {type(data).__name__}, not a dict of tensors and settings: not a {what}; {fix}"
        )
    return data


def verify_zip(path: Path, what: str = "checkpoint", fix: str = "") -> None:
    """Check every member's CRC of a zip-format torch file (reads it once, unpickles nothing)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        bad = f"{err}"
    if bad is not None:
        raise CheckpointError(
            f"{path} is a truncated or corrupt {what} ({path.stat().st_size} bytes; {bad}): an interrupted save "
            f"leaves such files{'; ' + fix if fix else ''}"
        )


def load_safetensors_file(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file`` with a ``CheckpointError`` for a missing, truncated or foreign file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({path.stat().st_size} bytes, {_kind_of(path)}: {err}); "
            "an interrupted save or copy leaves such files: export the weights again"
        ) from None


def read_json_file(
    path: str | Path, what: str, check: Callable[[Any], bool] = lambda data: isinstance(data, dict)
) -> Any:
    """Parse a JSON file another step wrote, naming the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}): a {what} is expected there") from None
    if not check(data):
        raise CheckpointError(f"{path} does not hold a {what} (found {type(data).__name__})")
    return data
