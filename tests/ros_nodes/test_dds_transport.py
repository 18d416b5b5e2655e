"""The shipped DDS transport defaults: what is set, that nothing the user configured is replaced, the profile
itself, and that the launch files and setup.py use them. (Delivery of large frames with them is tested over
real DDS in test_large_images.py.)"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ros_nodes.dds_transport import (
    PROFILE_VARIABLE,
    apply_transport_defaults,
    shipped_profile,
    transport_defaults,
    transport_hint,
)

REPO = Path(__file__).resolve().parents[2]
NS = {"dds": "http://www.eprosima.com"}


def test_the_profile_is_set_when_nothing_is_configured(tmp_path: Path) -> None:
    assert transport_defaults({}, cwd=tmp_path) == {PROFILE_VARIABLE: str(shipped_profile())}
    assert transport_defaults({"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}, cwd=tmp_path)


@pytest.mark.parametrize(
    "environ",
    [
        {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"},
        {"FASTDDS_BUILTIN_TRANSPORTS": ""},
        {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"},
        {"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"},
        {"SKIP_DEFAULT_XML_FILE": "1"},
        {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
    ],
)
def test_a_user_setting_is_never_replaced(environ: dict[str, str], tmp_path: Path) -> None:
    assert transport_defaults(environ, cwd=tmp_path) == {}
    copy = dict(environ)
    assert apply_transport_defaults(copy) == {} and copy == environ


def test_a_profile_in_the_working_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    assert transport_defaults({}, cwd=tmp_path) == {}


def test_the_shipped_profile_keeps_the_default_transports_with_a_large_segment() -> None:
    profile = shipped_profile()
    assert profile == REPO / "config" / "fastdds_large_images.xml"
    root = ET.parse(profile).getroot()
    kinds = {
        d.findtext("dds:transport_id", namespaces=NS): d
        for d in root.iterfind(".//dds:transport_descriptor", NS)
    }
    assert sorted(d.findtext("dds:type", namespaces=NS) for d in kinds.values()) == ["SHM", "UDPv4"]
    shm = next(d for d in kinds.values() if d.findtext("dds:type", namespaces=NS) == "SHM")
    assert int(shm.findtext("dds:segment_size", namespaces=NS)) > 1920 * 1080 * 3  # a 1080p rgb8 frame fits
    participant = root.find(".//dds:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind(".//dds:userTransports/dds:transport_id", NS)]
    assert sorted(used) == sorted(kinds)
    assert participant.findtext(".//dds:useBuiltinTransports", namespaces=NS) == "false"


def test_hints_name_the_fix_for_this_process() -> None:
    assert f"{PROFILE_VARIABLE}={shipped_profile()}" in transport_hint({})
    assert "BOTH processes" in transport_hint({})
    assert "needs the same" in transport_hint({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"})
    assert "CYCLONEDDS_URI" in transport_hint({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})


@pytest.mark.parametrize("path", sorted((REPO / "launch").glob("*.launch.py")), ids=lambda p: p.name)
def test_launch_files_set_the_transport_defaults_for_their_processes(path: Path) -> None:
    launch_file = ast.parse(path.read_text())
    returned = [ast.unparse(n.value) for n in ast.walk(launch_file) if isinstance(n, ast.Return)]
    assert returned == ["vid2robot_launch_description(CONFIG, NODES)"], (
        f"{path.name} must use the shared builder"
    )
    builder = next(
        n
        for n in ast.walk(ast.parse((REPO / "ros_nodes" / "launch_description.py").read_text()))
        if isinstance(n, ast.FunctionDef) and n.name == "vid2robot_launch_description"
    )
    statements = [ast.unparse(n) for n in builder.body]
    first_action = next(i for i, text in enumerate(statements) if text.startswith("actions"))
    assert (
        "SetEnvironmentVariable(name, value) for name, value in transport_defaults(os.environ)"
        in (statements[first_action])
    ), "the environment must be set before the first node starts"
    assert all("Node(" not in text for text in statements[:first_action])


def test_setup_installs_the_profile() -> None:
    assert 'glob("config/*.xml")' in (REPO / "setup.py").read_text()
