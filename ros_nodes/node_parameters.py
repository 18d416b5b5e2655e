"""Every ROS parameter of every vid2robot node: one table that nodes declare from, and that the launch-file
check and the docs read (so YAML, launch files and nodes cannot drift apart)."""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: ParamValue
    description: str
    read_only: bool = True
    # the node refuses to start while it is '' (and a launch file makes it a required argument)
    required: bool = False


# Shared by policy_node and sim_robot_node: the action <-> velocity scale (ros_nodes.action_mapping).
MAX_LINEAR_SPEED = ParamSpec(
    "max_linear_speed", 0.25, "m/s per unit action; each axis of the end-effector velocity is clamped to it"
)

# Shared by policy_node and detector_node: which camera messages to subscribe (ros_nodes.camera_input).
IMAGE_TRANSPORT = ParamSpec(
    "image_transport",
    "raw",
    "camera input: 'raw' subscribes sensor_msgs/Image on 'image'; 'compressed' subscribes "
    "sensor_msgs/CompressedImage (jpeg, png) on 'image/compressed' (image_transport's naming)",
)

CAMERA_NODE = (
    ParamSpec("source", "0", "OpenCV source: a device index ('0'), a video file path or a stream URL"),
    ParamSpec("rate_hz", 30.0, "publish rate (Hz)"),
    ParamSpec("frame_id", "camera", "header.frame_id of the published images"),
    ParamSpec("loop", False, "restart a video file at its end (ignored for devices and streams)"),
    ParamSpec("width", 0, "resize frames to this width before publishing (pixels); 0 keeps the source's"),
    ParamSpec("height", 0, "resize frames to this height before publishing (pixels); 0 keeps the source's"),
)

POLICY_NODE = (
    ParamSpec(
        "checkpoint",
        "",
        "policy checkpoint (save_policy directory or Lightning .ckpt); required",
        required=True,
    ),
    ParamSpec(
        "prompt_video",
        "",
        "prompt video of the task (.mp4, or .npy uint8 [T,H,W,3] RGB); required; changing it swaps the prompt",
        read_only=False,
        required=True,
    ),
    ParamSpec("control_rate_hz", 10.0, "policy rate (Hz); one action per new image, at most this often"),
    ParamSpec("image_timeout_s", 0.5, "no image for this long -> zero velocity until images return"),
    IMAGE_TRANSPORT,
    MAX_LINEAR_SPEED,
    ParamSpec("max_speed_norm", 0.0, "cap on the norm of the linear velocity (m/s); 0 disables"),
    ParamSpec("command_frame_id", "base_link", "header.frame_id of the velocity command (robot base frame)"),
    ParamSpec("enabled", True, "false -> zero velocity, the policy is not run", read_only=False),
    ParamSpec("device", "cpu", "torch device for inference ('cpu', 'cuda', 'cuda:1')"),
    ParamSpec(
        "temporal_ensemble_coeff",
        -1.0,
        "action-chunk policies: < 0 replays each chunk; >= 0 predicts every tick and blends the overlapping "
        "chunks with weights exp(-coeff * i), oldest first (ACT uses 0.01)",
    ),
)

SIM_ROBOT_NODE = (
    ParamSpec("task", "reach-v3", "Meta-World task name"),
    ParamSpec("seed", 0, "layout stream: episode i has the closed-loop evaluator's layout i for this seed"),
    ParamSpec("num_episodes", 0, "episodes to run before the node exits; 0 runs forever"),
    ParamSpec("max_episode_steps", 150, "steps per episode (an episode also ends at success)"),
    ParamSpec("camera", "robot", "camera view of vid2robot.sim.MetaWorldEnv that renders the images"),
    ParamSpec("hide_goal", False, "hide the goal marker (the policy must infer the goal from the prompt)"),
    ParamSpec(
        "shared_start", False, "start an opposite-task pair (drawer, handle, door lock) from one scene"
    ),
    ParamSpec("image_size", 96, "published image size (square, pixels)"),
    ParamSpec("frame_id", "sim_camera", "header.frame_id of the published images"),
    ParamSpec("lock_step", True, "step once per command answering the last image (else free-run at rate_hz)"),
    ParamSpec("rate_hz", 10.0, "free-running step rate (Hz), lock_step false only"),
    ParamSpec("command_timeout_s", 0.5, "no command for this long -> the robot holds still (zero velocity)"),
    MAX_LINEAR_SPEED,
    ParamSpec(
        "policy_reset_service", "/policy_node/reset", "Trigger service called at each episode start; '' none"
    ),
)

DETECTOR_NODE = (
    ParamSpec(
        "checkpoint",
        "",
        "Plain-DETR checkpoint (Detector.save folder or Lightning .ckpt); required",
        required=True,
    ),
    IMAGE_TRANSPORT,
    ParamSpec("score_threshold", 0.3, "publish detections with at least this score"),
    ParamSpec("top_k", 100, "at most this many detections per image"),
    ParamSpec("input_size", 0, "longer image side fed to the model (pixels); 0 keeps the checkpoint's"),
    ParamSpec("labels_file", "", "text file with one class name per line; '' publishes class indices"),
    ParamSpec("device", "cpu", "torch device for inference"),
)

EPISODE_RECORDER = (
    ParamSpec(
        "dataset",
        "",
        "episode dataset folder: created by the first episode, else appended to; required",
        required=True,
    ),
    ParamSpec("cameras", "robot", "camera names, comma-separated, one per image topic (video folder names)"),
    ParamSpec(
        "image_topics",
        "image",
        "image topics, comma-separated; one ending in /compressed is sensor_msgs/CompressedImage (jpeg, png), "
        "others sensor_msgs/Image",
    ),
    ParamSpec("image_width", 0, "stored frame width (pixels, even); 0: the first frame's (or the dataset's)"),
    ParamSpec(
        "image_height", 0, "stored frame height (pixels, even); 0: the first frame's (or the dataset's)"
    ),
    ParamSpec("action_topic", "action", "the control ticks: one episode row per message"),
    ParamSpec(
        "action_type",
        "float32_multi_array",
        "twist_stamped | float32_multi_array | joint_state (positions; joint_state:velocity, joint_state:effort)",
    ),
    ParamSpec("action_names", "", "comma-separated: select and order entries by name ('' keeps all)"),
    ParamSpec("state_topic", "", "robot state topic; '' records no state"),
    ParamSpec("state_type", "joint_state", "message kind of state_topic, as action_type"),
    ParamSpec("state_names", "", "comma-separated: select and order state entries by name ('' keeps all)"),
    ParamSpec("fps", 10, "nominal control rate (Hz) written to info.json; the videos play at it"),
    ParamSpec("max_age_s", 0.5, "a frame or state older than this at an action's time drops that row"),
    ParamSpec(
        "time_reference",
        "header",
        "header: message stamps (DDS source time for messages without a header); arrival: reception times "
        "(when the publishers' clocks disagree)",
    ),
    ParamSpec("task", "task", "task id of the next episodes", read_only=False),
    ParamSpec("task_text", "", "instruction text of the next episodes ('' = task)", read_only=False),
    ParamSpec("split", "train", "split of the next episodes: train, val or test", read_only=False),
    ParamSpec(
        "default_success", True, "success flag of an episode stopped by the record topic", read_only=False
    ),
    ParamSpec("robot", "", "robot name written to info.json"),
    ParamSpec("min_episode_steps", 2, "shorter episodes are discarded (with a warning)"),
    ParamSpec("max_episode_steps", 0, "an episode stops (saved) at this many steps; 0: no limit"),
)

NODE_PARAMETERS: dict[str, tuple[ParamSpec, ...]] = {
    "camera_node": CAMERA_NODE,
    "policy_node": POLICY_NODE,
    "sim_robot_node": SIM_ROBOT_NODE,
    "detector_node": DETECTOR_NODE,
    "episode_recorder": EPISODE_RECORDER,
}


def declare(node: Node, specs: tuple[ParamSpec, ...]) -> None:
    """Declare ``specs`` on ``node`` with descriptions (and read-only flags) from the table; a required one left
    '' stops the node with the README table to read."""
    for spec in specs:
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        node.declare_parameter(spec.name, spec.default, descriptor)
    table = next((name for name, listed in NODE_PARAMETERS.items() if listed is specs), node.get_name())
    for spec in specs:
        if spec.required and not node.get_parameter(spec.name).value:
            raise ValueError(f"parameter '{spec.name}' is required (see the README's {table} table)")
