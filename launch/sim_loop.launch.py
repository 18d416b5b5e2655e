"""Meta-World robot <-> policy: the closed loop without hardware.

ros2 launch vid2robot sim_loop.launch.py checkpoint:=/path/ckpt prompt_video:=/path/prompt.mp4 task:=reach-v3
Parameters come from config/sim_loop.yaml (installed to share/vid2robot/config).
"""

from ros_nodes.launch_description import vid2robot_launch_description

CONFIG = "sim_loop.yaml"
# each node (also its name) and the parameters that same-named launch arguments set, beside CONFIG's
NODES = {"sim_robot_node": ("task",), "policy_node": ("checkpoint", "prompt_video")}


def generate_launch_description():  # -> launch.LaunchDescription
    return vid2robot_launch_description(CONFIG, NODES)
