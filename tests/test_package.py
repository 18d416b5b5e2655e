"""The package as pip and ROS 2 see it: metadata, entry points, import direction, and the colcon layout."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import import_module
from importlib.metadata import distribution
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vid2robot", "detection", "kernels", "ros_nodes")
NODE_EXECUTABLES = ("camera_node", "policy_node", "detector_node", "sim_robot_node")


def console_scripts() -> dict[str, str]:
    entry_points = distribution("vid2robot").entry_points
    return {ep.name: ep.value for ep in entry_points if ep.group == "console_scripts"}


def test_package_xml_is_format_3_ament_python_with_run_dependencies() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "vid2robot"
    assert root.find("export/build_type").text == "ament_python"
    run_deps = {dep.text for dep in root.findall("exec_depend")}
    for dep in (
        "rclpy",
        "sensor_msgs",
        "geometry_msgs",
        "std_msgs",
        "std_srvs",
        "diagnostic_msgs",
        "python3-opencv",
    ):
        assert dep in run_deps, f"package.xml lacks <exec_depend>{dep}</exec_depend>"


def test_layout_is_as_the_design_fixes_it() -> None:
    for name in (
        "package.xml",
        "setup.py",
        "setup.cfg",
        "resource/vid2robot",
        *PACKAGES,
        "launch",
        "config",
        "tests",
    ):
        assert (REPO / name).exists(), f"missing {name}"


def test_every_console_script_resolves_to_a_callable() -> None:
    scripts = console_scripts()
    for name, target in scripts.items():
        module_name, _, attr = target.partition(":")
        assert callable(getattr(import_module(module_name), attr)), f"{name} -> {target} is not callable"


def _imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# Which first-party packages each package may import: arrows only point down.
ALLOWED = {
    "kernels": {"kernels"},
    "detection": {"detection", "kernels"},
    "vid2robot": {"vid2robot", "detection", "kernels"},
    "ros_nodes": set(PACKAGES),
}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_only_point_down_and_rclpy_mmdet_stay_in_their_place(package: str) -> None:
    for path in sorted((REPO / package).rglob("*.py")):
        imported = _imported_top_level_modules(path)
        upward = (imported & set(PACKAGES)) - ALLOWED[package]
        assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)} (arrows only point down)"
        if package != "ros_nodes":
            assert "rclpy" not in imported, f"{path.relative_to(REPO)} imports rclpy outside ros_nodes/"
        if path != REPO / "detection" / "mmdet_plugin.py":
            assert not imported & {"mmdet", "mmcv", "mmengine"}, (
                f"{path.relative_to(REPO)} imports mmdet/mmcv"
            )


@pytest.mark.skipif(
    shutil.which("colcon", path=str(Path(sys.executable).parent)) is None, reason="colcon not installed"
)
def test_colcon_build_produces_the_ros_layout(tmp_path: Path) -> None:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [
            colcon,
            "--log-base",
            str(tmp_path / "log"),
            "build",
            "--base-paths",
            str(REPO),
            "--build-base",
            str(tmp_path / "build"),
            "--install-base",
            str(tmp_path / "install"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "vid2robot"
    share = prefix / "share" / "vid2robot"
    assert (share / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "vid2robot").is_file()
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*.yaml")):
        expected = sorted(p.name for p in (REPO / folder).glob(pattern))
        assert expected, f"the repo has no {folder}/{pattern}"
        assert sorted(p.name for p in (share / folder).glob(pattern)) == expected
    executables = prefix / "lib" / "vid2robot"
    for name in console_scripts():
        assert (executables / name).is_file(), f"colcon did not install the executable {name}"
    for name in NODE_EXECUTABLES:
        if name in console_scripts():
            assert os.access(executables / name, os.X_OK)
