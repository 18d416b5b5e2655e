"""Camera -> Plain-DETR detector.

ros2 launch vid2robot detector.launch.py checkpoint:=/path/detector source:=0
Parameters come from config/detector.yaml (installed to share/vid2robot/config).
"""

from ros_nodes.launch_description import vid2robot_launch_description

CONFIG = "detector.yaml"
# each node (also its name) and the parameters that same-named launch arguments set, beside CONFIG's
NODES = {"camera_node": ("source",), "detector_node": ("checkpoint",)}


def generate_launch_description():  # -> launch.LaunchDescription
    return vid2robot_launch_description(CONFIG, NODES)
