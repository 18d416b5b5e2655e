"""Meta-World robot <-> policy: the closed loop without hardware.

ros2 launch vid2robot sim_loop.launch.py checkpoint:=/path/ckpt prompt_video:=/path/prompt.mp4 task:=reach-v3
Parameters come from config/sim_loop.yaml (installed to share/vid2robot/config).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription
from ros_nodes.dds_transport import transport_defaults


def generate_launch_description() -> LaunchDescription:
    config = os.path.join(get_package_share_directory("vid2robot"), "config", "sim_loop.yaml")
    return LaunchDescription(
        [
            # DDS transport for large camera images, for every process of this launch unless the environment
            # configures it already (ros_nodes/dds_transport.py; a camera driver started elsewhere needs it too)
            *(SetEnvironmentVariable(name, value) for name, value in transport_defaults(os.environ).items()),
            DeclareLaunchArgument("checkpoint", description="policy checkpoint (save_policy dir or .ckpt)"),
            DeclareLaunchArgument("prompt_video", description="prompt video of the task (.mp4 or .npy)"),
            DeclareLaunchArgument("task", default_value="reach-v3", description="Meta-World task"),
            Node(
                package="vid2robot",
                executable="sim_robot_node",
                name="sim_robot_node",
                parameters=[config, {"task": ParameterValue(LaunchConfiguration("task"), value_type=str)}],
                output="screen",
            ),
            Node(
                package="vid2robot",
                executable="policy_node",
                name="policy_node",
                parameters=[
                    config,
                    {
                        "checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str),
                        "prompt_video": ParameterValue(LaunchConfiguration("prompt_video"), value_type=str),
                    },
                ],
                output="screen",
            ),
        ]
    )
