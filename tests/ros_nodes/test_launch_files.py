"""launch_ros is not installable here, so the launch files are checked through their plans
(ros_nodes.launch_description.launch_plan, the data vid2robot_launch_description turns into launch objects): they
start only vid2robot nodes whose YAML section exists, set only declared parameters, and leave no required one
unset. The YAML files are checked against the nodes' parameter table."""

from __future__ import annotations

import importlib.util
from importlib import import_module
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from ros_nodes import EXECUTABLES
from ros_nodes.bringup import NODE_CLASSES
from ros_nodes.launch_description import LaunchArgument, launch_plan
from ros_nodes.node_parameters import NODE_PARAMETERS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIGS = sorted((REPO / "config").glob("*.yaml"))
PY_TYPES = {bool: bool, int: int, float: float, str: str}


def _declared(node: str) -> dict[str, object]:
    return {spec.name: spec.default for spec in NODE_PARAMETERS[node]}


def _required(node: str) -> set[str]:
    return {spec.name for spec in NODE_PARAMETERS[node] if spec.required}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.name.removesuffix(".py").replace(".", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no ROS launch package: those load inside the builder
    return module


def test_launch_files_and_configs_exist() -> None:
    assert {p.name for p in LAUNCH_FILES} >= {
        "policy_pipeline.launch.py",
        "sim_loop.launch.py",
        "detector.launch.py",
    }
    assert {p.name for p in CONFIGS} >= {"policy_pipeline.yaml", "sim_loop.yaml"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_starts_vid2robot_nodes_with_their_config_and_every_required_parameter(
    path: Path,
) -> None:
    module = _load(path)
    assert callable(module.generate_launch_description)
    plan = launch_plan(module.CONFIG, module.NODES)  # raises for an unknown node or parameter
    config_path = REPO / "config" / plan.config
    assert config_path.is_file(), f"{path.name} loads missing {config_path}"
    sections = yaml.safe_load(config_path.read_text())
    assert plan.nodes, f"{path.name} starts no node"
    for executable, inline in plan.nodes:
        assert executable in sections, f"{config_path.name} has no section for {executable}"
        in_yaml = set(sections[executable].get("ros__parameters", {}))
        missing = _required(executable) - set(inline) - in_yaml
        assert not missing, f"{path.name} never sets the required {sorted(missing)} of {executable}"


def test_launch_arguments_take_the_parameter_table_description_default_and_type() -> None:
    plan = launch_plan("sim_loop.yaml", {"sim_robot_node": ("task", "seed"), "policy_node": ("checkpoint",)})
    task, seed, checkpoint = plan.arguments
    assert task == LaunchArgument("task", "Meta-World task name", "reach-v3", str)
    assert (seed.default, seed.value_type) == ("0", int)
    assert checkpoint.default is None and checkpoint.value_type is str  # required: no default
    assert plan.nodes == (("sim_robot_node", ("task", "seed")), ("policy_node", ("checkpoint",)))
    shared = launch_plan(
        "x.yaml", {"policy_node": ("max_linear_speed",), "sim_robot_node": ("max_linear_speed",)}
    )
    assert [a.name for a in shared.arguments] == ["max_linear_speed"]  # one argument sets both nodes


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"planner_node": ()}, "'planner_node' is not a vid2robot node"),
        ({"policy_node": ("chekpoint",)}, "policy_node has no parameter 'chekpoint'"),
        ({"camera_node": ("rate_hz",), "sim_robot_node": ("rate_hz",)}, "launch argument 'rate_hz'"),
    ],
)
def test_launch_plan_names_what_a_launch_file_got_wrong(nodes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        launch_plan("x.yaml", nodes)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_sets_only_declared_parameters_with_their_types(path: Path) -> None:
    sections = yaml.safe_load(path.read_text())
    nodes = [name for name in sections if name != "/**"]
    assert set(nodes) <= set(NODE_PARAMETERS), f"{path.name}: unknown node sections"
    for node in nodes:
        declared = _declared(node)
        for key, value in sections[node]["ros__parameters"].items():
            assert key in declared, f"{path.name}: {node} does not declare {key!r}"
            want = PY_TYPES[type(declared[key])]
            assert type(value) is want, f"{path.name}: {node}.{key} = {value!r} must be a {want.__name__}"
    for key, value in sections.get("/**", {}).get("ros__parameters", {}).items():
        users = [n for n in nodes if key in _declared(n)]
        assert users, f"{path.name}: no node of this file declares the shared parameter {key!r}"
        assert all(type(value) is PY_TYPES[type(_declared(n)[key])] for n in users)


def test_executable_table_matches_the_nodes_and_the_bringup() -> None:
    nodes = {name for name in EXECUTABLES if not name.startswith("vid2robot-")}  # the rest are CLIs
    assert nodes == set(NODE_PARAMETERS) == set(NODE_CLASSES)
    assert EXECUTABLES["vid2robot-bringup"] == "ros_nodes.bringup:main"
    for name, target in EXECUTABLES.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(import_module(module), attr)), f"{name} -> {target}"


def test_console_scripts_are_registered_for_ros2_run() -> None:
    scripts = {
        ep.name: ep.value for ep in distribution("vid2robot").entry_points if ep.group == "console_scripts"
    }
    missing = {name: target for name, target in EXECUTABLES.items() if scripts.get(name) != target}
    assert not missing, f"setup.py must register these console scripts (then reinstall): {missing}"
