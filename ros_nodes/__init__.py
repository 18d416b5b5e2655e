"""ROS 2 nodes of vid2robot: the only package that imports rclpy (see docs/architecture.md).

Executables (``ros2 run vid2robot <name>``) map to ``ros_nodes.<module>:main``; see ``EXECUTABLES``.
"""

EXECUTABLES: dict[str, str] = {
    "camera_node": "ros_nodes.camera_node:main",
    "policy_node": "ros_nodes.policy_node:main",
    "sim_robot_node": "ros_nodes.sim_robot_node:main",
    "detector_node": "ros_nodes.detector_node:main",
    "episode_recorder": "ros_nodes.episode_recorder:main",
    "vid2robot-bringup": "ros_nodes.bringup:main",
}
