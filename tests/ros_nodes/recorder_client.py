"""The test's side of an episode_recorder: its services, parameters, and waiting for episodes on disk."""

from __future__ import annotations

from pathlib import Path

from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_fixtures import wait_for
from std_srvs.srv import SetBool, Trigger

from vid2robot.data.episode_dataset import EpisodeDataset


class RecorderClient:
    """Calls ``/<name>/start_episode``, ``stop_episode``, ``discard_episode`` and ``set_parameters``.

    Waiting on a future needs the node spun by another thread (the ``ros`` fixture's executor, or a
    multi-threaded one when calling from inside a callback)."""

    def __init__(self, ros: Node, name: str = "episode_recorder", callback_group=None) -> None:
        self.name = name
        self.clients = {
            service: ros.create_client(kind, f"/{name}/{service}", callback_group=callback_group)
            for service, kind in (
                ("start_episode", Trigger),
                ("stop_episode", SetBool),
                ("discard_episode", Trigger),
                ("set_parameters", SetParameters),
            )
        }

    def _call(self, service: str, request, timeout: float = 20.0):
        client = self.clients[service]
        assert client.wait_for_service(timeout), f"no service /{self.name}/{service}"
        future = client.call_async(request)
        wait_for(future.done, timeout, f"/{self.name}/{service}")
        return future.result()

    def start(self) -> Trigger.Response:
        return self._call("start_episode", Trigger.Request())

    def stop(self, success: bool) -> SetBool.Response:
        return self._call("stop_episode", SetBool.Request(data=success))

    def discard(self) -> Trigger.Response:
        return self._call("discard_episode", Trigger.Request())

    def set_param(self, name: str, value) -> None:
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        result = self._call("set_parameters", request).results[0]
        assert result.successful, result.reason


def episodes_on_disk(root: Path) -> int:
    """Episodes the dataset at ``root`` lists (0 before its first episode)."""
    return len(EpisodeDataset(root)) if (root / "meta" / "episodes.parquet").is_file() else 0


def wait_for_episodes(root: Path, count: int, timeout: float = 60.0) -> EpisodeDataset:
    wait_for(lambda: episodes_on_disk(root) >= count, timeout, f"{count} episodes in {root}")
    return EpisodeDataset(root)
