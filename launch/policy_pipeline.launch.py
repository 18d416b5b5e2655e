"""Camera -> policy on a robot.

ros2 launch vid2robot policy_pipeline.launch.py checkpoint:=/path/ckpt prompt_video:=/path/prompt.mp4 source:=0
Parameters come from config/policy_pipeline.yaml (installed to share/vid2robot/config).
"""

from ros_nodes.launch_description import vid2robot_launch_description

CONFIG = "policy_pipeline.yaml"
# each node (also its name) and the parameters that same-named launch arguments set, beside CONFIG's
NODES = {"camera_node": ("source",), "policy_node": ("checkpoint", "prompt_video")}


def generate_launch_description():  # -> launch.LaunchDescription
    return vid2robot_launch_description(CONFIG, NODES)
