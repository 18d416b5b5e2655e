"""Camera -> Plain-DETR detector.

ros2 launch vid2robot detector.launch.py checkpoint:=/path/detector source:=0
Parameters come from config/detector.yaml (installed to share/vid2robot/config).
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
    config = os.path.join(get_package_share_directory("vid2robot"), "config", "detector.yaml")
    return LaunchDescription(
        [
            # DDS transport for large camera images, for every process of this launch unless the environment
            # configures it already (ros_nodes/dds_transport.py; a camera driver started elsewhere needs it too)
            *(SetEnvironmentVariable(name, value) for name, value in transport_defaults(os.environ).items()),
            DeclareLaunchArgument(
                "checkpoint", description="Plain-DETR checkpoint (Detector.save folder or .ckpt)"
            ),
            DeclareLaunchArgument(
                "source", default_value="0", description="camera: device index, file or URL"
            ),
            Node(
                package="vid2robot",
                executable="camera_node",
                name="camera_node",
                parameters=[
                    config,
                    {"source": ParameterValue(LaunchConfiguration("source"), value_type=str)},
                ],
                output="screen",
            ),
            Node(
                package="vid2robot",
                executable="detector_node",
                name="detector_node",
                parameters=[
                    config,
                    {"checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str)},
                ],
                output="screen",
            ),
        ]
    )
