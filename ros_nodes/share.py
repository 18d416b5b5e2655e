"""Where the package's installed data files are: ``share/vid2robot/config`` under colcon or pip, else the
source checkout's ``config/`` (an editable install has no share folder). No ROS import here."""

from __future__ import annotations

import sys
from pathlib import Path


def config_dirs() -> list[Path]:
    """Candidate config folders, most specific first (ament index, Python prefix, source checkout)."""
    folders = [
        Path(sys.prefix) / "share" / "vid2robot" / "config",
        Path(__file__).resolve().parents[1] / "config",
    ]
    try:
        from ament_index_python.packages import get_package_share_directory

        folders.insert(0, Path(get_package_share_directory("vid2robot")) / "config")
    except (ImportError, LookupError, OSError):  # not in an ament (colcon / ROS) environment
        pass
    return folders


def find_config(name: str) -> Path | None:
    """The first ``name`` in ``config_dirs``, or None."""
    return next((folder / name for folder in config_dirs() if (folder / name).is_file()), None)
