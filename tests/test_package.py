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


# The OpenMMLab toolbox stays in the plugin; the mmengine checkpoint allow-list beside it needs only mmengine.
OPENMMLAB_ALLOWED = {
    "detection/mmdet_plugin.py": {"mmdet", "mmcv", "mmengine"},
    "detection/mmengine_checkpoints.py": {"mmengine"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_only_point_down_and_rclpy_mmdet_stay_in_their_place(package: str) -> None:
    for path in sorted((REPO / package).rglob("*.py")):
        imported = _imported_top_level_modules(path)
        upward = (imported & set(PACKAGES)) - ALLOWED[package]
        assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)} (arrows only point down)"
        if package != "ros_nodes":
            assert "rclpy" not in imported, f"{path.relative_to(REPO)} imports rclpy outside ros_nodes/"
        toolbox = imported & {"mmdet", "mmcv", "mmengine"}
        assert toolbox <= OPENMMLAB_ALLOWED.get(path.relative_to(REPO).as_posix(), set()), (
            f"{path.relative_to(REPO)} imports {sorted(toolbox)} (only detection/mmdet_plugin.py may)"
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


def _module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import the module can execute, lazy ones in functions included; ``if TYPE_CHECKING:`` blocks,
    which only type checkers read, are left out."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if (
            isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
        ):
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _module_files()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str | None] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(resolve(alias.name) for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                edges.add(full if full in modules else resolve(base))
        graph[module] = {edge for edge in edges if edge and edge != module}
    return graph


def test_no_module_imports_another_in_a_circle() -> None:
    """Tarjan's strongly connected components of the first-party import graph, lazy imports included."""
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"
