"""What every vid2robot launch file starts, built in one place: the DDS transport for large camera images, one
launch argument per node parameter the command line sets, and the nodes with their ``config/*.yaml``.

A launch file names its YAML file and, per node, the parameters ``ros2 launch ... name:=value`` sets. The launch
arguments take their description, type and default from the nodes' parameter table (``node_parameters``), so
the launch files, the YAML files, the nodes and the docs cannot drift apart; a required parameter is a required
argument. ``launch_plan`` is plain data (checked without ROS's launch packages, which PyPI does not ship);
``vid2robot_launch_description`` turns it into ``launch`` objects and imports ``launch``/``launch_ros`` only then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ros_nodes.dds_transport import transport_defaults
from ros_nodes.node_parameters import NODE_PARAMETERS, ParamSpec

PACKAGE = "vid2robot"


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    description: str
    default: str | None  # None: required on the command line
    value_type: type  # what the parameter's launch value is converted to


@dataclass(frozen=True)
class LaunchPlan:
    config: str  # file name under share/vid2robot/config
    arguments: tuple[LaunchArgument, ...]
    nodes: tuple[tuple[str, tuple[str, ...]], ...]  # (executable, parameters set from launch arguments)


def _spec(executable: str, name: str) -> ParamSpec:
    for spec in NODE_PARAMETERS[executable]:
        if spec.name == name:
            return spec
    raise ValueError(f"{executable} has no parameter {name!r}; see ros_nodes/node_parameters.py")


def launch_plan(config: str, nodes: Mapping[str, Sequence[str]]) -> LaunchPlan:
    """The arguments and nodes of a launch file: ``nodes`` maps each executable (also its node name, which the
    YAML sections use) to the parameters set from same-named launch arguments. Two nodes sharing an argument must
    agree on its default."""
    arguments: dict[str, LaunchArgument] = {}
    for executable, names in nodes.items():
        if executable not in NODE_PARAMETERS:
            raise ValueError(f"{executable!r} is not a vid2robot node; nodes: {sorted(NODE_PARAMETERS)}")
        for name in names:
            spec = _spec(executable, name)
            default = None if spec.required else str(spec.default)
            argument = LaunchArgument(name, spec.description, default, type(spec.default))
            known = arguments.setdefault(name, argument)
            if (known.default, known.value_type) != (argument.default, argument.value_type):
                raise ValueError(
                    f"launch argument {name!r}: {executable} and another node give it another default"
                )
    return LaunchPlan(
        config,
        tuple(arguments.values()),
        tuple((executable, tuple(names)) for executable, names in nodes.items()),
    )


def vid2robot_launch_description(config: str, nodes: Mapping[str, Sequence[str]]) -> Any:
    """``launch.LaunchDescription`` of ``launch_plan(config, nodes)``, with the DDS transport defaults
    (ros_nodes/dds_transport.py) set for every process it starts unless the environment configures them."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    from launch import LaunchDescription

    plan = launch_plan(config, nodes)
    config_path = os.path.join(get_package_share_directory(PACKAGE), "config", plan.config)
    actions: list[Any] = [
        SetEnvironmentVariable(name, value) for name, value in transport_defaults(os.environ).items()
    ]
    for argument in plan.arguments:
        optional = {} if argument.default is None else {"default_value": argument.default}
        actions.append(DeclareLaunchArgument(argument.name, description=argument.description, **optional))
    value_types = {argument.name: argument.value_type for argument in plan.arguments}
    for executable, names in plan.nodes:
        inline = {
            name: ParameterValue(LaunchConfiguration(name), value_type=value_types[name]) for name in names
        }
        actions.append(
            Node(
                package=PACKAGE,
                executable=executable,
                name=executable,
                parameters=[config_path, inline],
                output="screen",
            )
        )
    return LaunchDescription(actions)
