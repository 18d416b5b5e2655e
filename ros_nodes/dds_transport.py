"""DDS transport defaults for full-resolution camera images, set by the launch files, vid2robot-bringup and the
node executables before ROS starts.

Default Fast DDS gives each process a 512 KB shared-memory segment; a best-effort sample larger than that (a
640x480 rgb8 frame is 921 KB) goes out in fragments that are mostly lost, so the policy sees a frame every few
seconds. The shipped profile ``config/fastdds_large_images.xml`` keeps Fast DDS's default transports (shared
memory and UDPv4) with a 16 MiB segment. The sender's segment is the one that limits a sample, so the camera
driver's process needs the profile; a process without it still talks to one with it. (``LARGE_DATA`` builtin
transports were measured too: they deliver large frames only when every process that talks to them uses them,
and not at all under ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; docs/benchmarks.md, "ROS 2 control loop".)

Fast DDS reads the profile when a process first creates a participant (``rclpy.init``), so it is set before
that or inherited. Nothing the user configured is replaced: a transport or profile variable already set, a
``DEFAULT_FASTDDS_PROFILES.xml`` in the working directory, SKIP_DEFAULT_XML_FILE, or another RMW.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from ros_nodes.share import find_config

PROFILE_NAME = "fastdds_large_images.xml"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
BUILTIN_TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"
# Any of these set means the user chose Fast DDS's transports themselves (FASTRTPS_: Fast DDS 2.x, Humble).
USER_SETTINGS = (
    PROFILE_VARIABLE,
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    BUILTIN_TRANSPORTS,
    "SKIP_DEFAULT_XML_FILE",
)
CWD_PROFILE = "DEFAULT_FASTDDS_PROFILES.xml"  # Fast DDS loads it from the working directory when present


def shipped_profile() -> Path | None:
    """The installed ``config/fastdds_large_images.xml`` (see ros_nodes.share)."""
    return find_config(PROFILE_NAME)


def uses_fastdds(environ: Mapping[str, str]) -> bool:
    """True for the default RMW (rmw_fastrtps_cpp) and its dynamic variant."""
    return environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp").startswith("rmw_fastrtps")


def transport_defaults(environ: Mapping[str, str], cwd: Path | None = None) -> dict[str, str]:
    """The variables to add to ``environ`` for large images; none when the user configured the transport."""
    if not uses_fastdds(environ) or any(name in environ for name in USER_SETTINGS):
        return {}
    profile = shipped_profile()
    if profile is None or ((cwd or Path.cwd()) / CWD_PROFILE).is_file():
        return {}
    return {PROFILE_VARIABLE: str(profile)}


def apply_transport_defaults(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Add ``transport_defaults`` to ``environ`` (call before ``rclpy.init``); returns what was added."""
    added = transport_defaults(environ)
    environ.update(added)
    return added


def transport_hint(environ: Mapping[str, str]) -> str:
    """The likely fix when a camera's frames do not arrive, for the RMW and the settings of this process."""
    if not uses_fastdds(environ):
        return (
            "frames over ~500 KB need large socket buffers in BOTH processes (camera driver and this node); "
            "for Cyclone DDS: CYCLONEDDS_URI with SocketReceiveBufferSize min='10MB' and "
            "sysctl net.core.rmem_max=10485760 (README, ROS 2 nodes)"
        )
    builtin = environ.get(BUILTIN_TRANSPORTS, "")
    if builtin.split("?")[0] in ("LARGE_DATA", "LARGE_DATAv6"):
        return (
            f"this node runs {BUILTIN_TRANSPORTS}={builtin}: the camera driver's process needs the same "
            "(LARGE_DATA processes do not talk to default ones)"
        )
    profile = shipped_profile() or f"share/vid2robot/config/{PROFILE_NAME}"
    return (
        "frames over 512 KB need a larger Fast DDS shared-memory segment in BOTH processes (it is the camera "
        f"driver's, the sender's, that counts): {PROFILE_VARIABLE}={profile} (README, ROS 2 nodes)"
    )
