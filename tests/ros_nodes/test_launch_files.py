"""launch_ros is not installable here, so the launch files are checked statically: they parse, start only
vid2robot executables that exist, pass only declared parameters (from config/*.yaml and inline), and use
only declared launch arguments. The YAML files are checked against the nodes' parameter table."""

from __future__ import annotations

import ast
from importlib import import_module
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml

from ros_nodes import EXECUTABLES
from ros_nodes.bringup import NODE_CLASSES
from ros_nodes.node_parameters import NODE_PARAMETERS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIGS = sorted((REPO / "config").glob("*.yaml"))
REQUIRED = {"policy_node": {"checkpoint", "prompt_video"}, "detector_node": {"checkpoint"}}
PY_TYPES = {bool: bool, int: int, float: float, str: str}


def _call_name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def _kwargs(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _constant(node: ast.expr) -> object:
    assert isinstance(node, ast.Constant), f"expected a literal, got {ast.unparse(node)}"
    return node.value


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == name]


def _declared(node: str) -> dict[str, object]:
    return {spec.name: spec.default for spec in NODE_PARAMETERS[node]}


def test_launch_files_and_configs_exist() -> None:
    assert {p.name for p in LAUNCH_FILES} >= {
        "policy_pipeline.launch.py",
        "sim_loop.launch.py",
        "detector.launch.py",
    }
    assert {p.name for p in CONFIGS} >= {"policy_pipeline.yaml", "sim_loop.yaml"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_existing_executables_and_declared_parameters(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description" for f in tree.body)
    configs = [
        c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and str(c.value).endswith(".yaml")
    ]
    assert len(configs) == 1, f"{path.name} should load exactly one config/*.yaml, found {configs}"
    config_path = REPO / "config" / configs[0]
    assert config_path.is_file(), f"{path.name} loads missing {config_path}"
    sections = yaml.safe_load(config_path.read_text())

    arguments = {_constant(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    used = {_constant(c.args[0]) for c in _calls(tree, "LaunchConfiguration")}
    assert used <= arguments, f"{path.name} uses undeclared launch arguments {sorted(used - arguments)}"

    nodes = _calls(tree, "Node")
    assert nodes, f"{path.name} starts no node"
    for call in nodes:
        kwargs = _kwargs(call)
        package, executable = _constant(kwargs["package"]), _constant(kwargs["executable"])
        assert package == "vid2robot"
        assert executable in NODE_PARAMETERS, f"{path.name}: {executable} is not a vid2robot node executable"
        assert _constant(kwargs["name"]) == executable, (
            "node name = executable name (the YAML sections use it)"
        )
        assert executable in sections, f"{config_path.name} has no section for {executable}"
        parameters = kwargs["parameters"]
        assert isinstance(parameters, ast.List)
        inline = set()
        for item in parameters.elts:
            if isinstance(item, ast.Dict):
                inline |= {_constant(k) for k in item.keys}
            else:
                assert ast.unparse(item) == "config", (
                    f"{path.name}: unexpected parameter source {ast.unparse(item)}"
                )
        declared = _declared(executable)
        assert inline <= set(declared), (
            f"{path.name}: {executable} does not declare {sorted(inline - set(declared))}"
        )
        in_yaml = set(sections[executable].get("ros__parameters", {}))
        missing = REQUIRED.get(executable, set()) - inline - in_yaml
        assert not missing, f"{path.name} never sets the required {sorted(missing)} of {executable}"


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
