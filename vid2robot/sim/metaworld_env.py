"""Meta-World (MT10 and the other v3 tasks) as a camera-frame environment with fast CPU rendering.

Named views: ``robot`` (what the policy sees), ``demonstrator`` (another viewpoint with the arm re-coloured) and
``hand`` (the robot hidden and a human hand doing the task, ``vid2robot.sim.hand_demonstrator``). Frames are
``uint8 [S, S, 3]`` RGB. Layouts (object and goal positions) are a pure function of the reset seed.
The package ``vid2robot.sim`` (imported before this module) sets the headless rendering defaults.
"""

from __future__ import annotations

import atexit
import pickle
import warnings
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import mujoco
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, ML1_ARGS_KWARGS, MT10_V3
from metaworld.policies import ENV_POLICY_MAP
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.types import Task

from vid2robot.sim.hand_demonstrator import HAND_CAMERA, HandAppearance, HandRenderer

MT10_TASKS: tuple[str, ...] = tuple(MT10_V3)
ALL_TASKS: tuple[str, ...] = MT10_TASKS + tuple(t for t in ALL_V3_ENVIRONMENTS if t not in MT10_TASKS)
CAMERA_VIEWS: dict[str, str] = {"robot": "corner", "demonstrator": "corner3", "hand": HAND_CAMERA}
# The cameras of every Meta-World v3 model; a view can be any of them, or HAND_CAMERA (the hand demonstrator,
# seen from its episode's own viewpoint).
METAWORLD_CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")
VIEW_CAMERAS = (*METAWORLD_CAMERAS, HAND_CAMERA)

MAX_PATH_LENGTH = 500  # Meta-World refuses to step further without a reset
CONTROL_FPS = 80  # Meta-World steps 5 physics steps of 2.5 ms: 80 control steps per second of simulated time
ACTION_NAMES = ("dx", "dy", "dz", "gripper")
STATE_NAMES = (
    *(f"hand_{a}" for a in "xyz"),
    "gripper_open",
    *(f"obj{i}_{c}" for i in (1, 2) for c in ("x", "y", "z", "qw", "qx", "qy", "qz")),
    *(f"prev_hand_{a}" for a in "xyz"),
    "prev_gripper_open",
    *(f"prev_obj{i}_{c}" for i in (1, 2) for c in ("x", "y", "z", "qw", "qx", "qy", "qz")),
    *(f"goal_{a}" for a in "xyz"),
)
TASK_TEXT = {
    "reach-v3": "reach to the goal position",
    "push-v3": "push the puck to the goal",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "door-open-v3": "open the door",
    "drawer-open-v3": "open the drawer",
    "drawer-close-v3": "close the drawer",
    "button-press-topdown-v3": "press the button from the top",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
}
# Pairs of opposite tasks on one scene (same model, same layout ranges) and the position of the object's
# joint (qpos[9]: drawer slide, handle height, lock angle) halfway between the two tasks' own starts. With
# ``shared_start`` both tasks of a pair begin there, so the robot's first frame cannot tell them apart and
# only the prompt says which way to go. The scripted experts succeed from it (5/5 layouts per task, checked).
SHARED_STARTS: dict[str, float] = {
    "drawer-open-v3": -0.1,
    "drawer-close-v3": -0.1,
    "handle-press-v3": -0.05,
    "handle-pull-v3": -0.05,
    "door-lock-v3": 0.785,
    "door-unlock-v3": 0.785,
}
_SHARED_JOINT_QPOS = 9
_ARM_QPOS = slice(0, _SHARED_JOINT_QPOS)  # the Sawyer's 7 joints and 2 fingers come first in every v3 model
_HAND_RESET_STEPS = 50  # control steps Meta-World's ``_reset_hand`` takes to bring the arm to its start
# Each opposite pair's other task: both are done in one scene, so a prompt-swap evaluation can check both.
OPPOSITE_TASK: dict[str, str] = {
    a: b
    for x, y in (
        ("drawer-open-v3", "drawer-close-v3"),
        ("handle-press-v3", "handle-pull-v3"),
        ("door-lock-v3", "door-unlock-v3"),
    )
    for a, b in ((x, y), (y, x))
}
# The demonstrator's arm: skin-toned links and a dark gripper instead of the Sawyer's red and grey.
ARM_RGBA = (0.87, 0.68, 0.55, 1.0)
GRIPPER_RGBA = (0.15, 0.15, 0.18, 1.0)
_ARM_ROOT, _GRIPPER_ROOT = "right_arm_base_link", "hand"


def task_index(task_name: str) -> int:
    """Stable task id: the position in Meta-World's v3 task list (MT10 tasks come first)."""
    check_task(task_name)
    return ALL_TASKS.index(task_name)


def task_text(task_name: str) -> str:
    check_task(task_name)
    return TASK_TEXT.get(task_name, task_name.removesuffix("-v3").replace("-", " "))


def check_task(task_name: str) -> None:
    if task_name not in ALL_V3_ENVIRONMENTS:
        raise ValueError(
            f"unknown Meta-World task {task_name!r}; expected a v3 name such as {', '.join(MT10_TASKS[:3])} "
            f"(MT10: {list(MT10_TASKS)})"
        )


def _make_mt_env(task_name: str) -> SawyerXYZEnv:
    """The task's env with MT settings (goal in the observation), without building MT1's 50 fixed goals.

    ``MT1(task)`` resets the env 50 times to pre-draw goals we then discard (about 2 s per env); the task
    data below is what it would pass to ``set_task``.
    """
    env_cls = ALL_V3_ENVIRONMENTS[task_name]
    env = env_cls()
    kwargs = {k: v for k, v in ML1_ARGS_KWARGS[task_name]["kwargs"].items() if k != "task_id"}
    space = env._random_reset_space
    data = kwargs | {
        "env_cls": env_cls,
        "rand_vec": (space.low + space.high) / 2,
        "partially_observable": False,
    }
    env.set_task(Task(env_name=task_name, data=pickle.dumps(data)))
    return env


_LIVE_ENVS: weakref.WeakSet[MetaWorldEnv] = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []
# Renderers of collected envs wait here and are closed only at safe points (never inside a render). The
# cyclic garbage collector can finalize an env in the middle of another env's render, between making that
# renderer's GL context current and reading its pixels; closing a context there (EGL releases the thread's
# current context) leaves the render drawing nowhere, and it returns uninitialised memory as the frame.
_PENDING_RELEASE: deque[tuple[tuple[mujoco.Renderer, ...], SawyerXYZEnv]] = deque()


def _close_live_envs() -> None:
    for env in list(_LIVE_ENVS):
        env.close()
    _release_pending()


def _register_exit_hook() -> None:
    if not _EXIT_HOOK:
        atexit.register(_close_live_envs)
        _EXIT_HOOK.append(True)


def _defer_release(renderers: tuple[mujoco.Renderer, ...], env: SawyerXYZEnv) -> None:
    _PENDING_RELEASE.append((renderers, env))


def _release_pending() -> None:
    """Close the queued renderers; called once per render, so an empty queue costs one length check."""
    while _PENDING_RELEASE:
        try:
            renderers, env = _PENDING_RELEASE.popleft()
        except IndexError:  # emptied by another thread (the ROS sim node renders in its own thread)
            return
        for renderer in renderers:
            renderer.close()
        env.close()


@dataclass
class Observation:
    """Frames per camera (``uint8 [S, S, 3]`` RGB) and Meta-World's 39-d state vector (float32)."""

    frames: dict[str, np.ndarray]
    state: np.ndarray


class MetaWorldEnv:
    """One Meta-World task with a seeded layout per reset and offscreen frames from named cameras.

    ``step`` returns ``(observation, success, done)``: ``success`` is the task's own success flag at that
    step, ``done`` is true once ``max_steps`` steps were taken. Rendering turns off shadows, reflections and
    multisampling and sizes the offscreen buffer to the frame (Meta-World's default renderer draws a
    4096^2 shadow map with 4x anti-aliasing, about 10x slower on CPU).
    """

    def __init__(
        self,
        task_name: str,
        seed: int = 0,
        image_size: int = 96,
        cameras: Sequence[str] = ("robot", "demonstrator"),
        demonstrator_appearance: bool = True,
        max_steps: int = MAX_PATH_LENGTH,
        hide_goal: bool = False,
        camera_views: Mapping[str, str] | None = None,
        shared_start: bool = False,
    ) -> None:
        check_task(task_name)
        if shared_start and task_name not in SHARED_STARTS:
            raise ValueError(f"shared_start needs a task of an opposite pair: {sorted(SHARED_STARTS)}")
        views = dict(CAMERA_VIEWS if camera_views is None else camera_views)
        unknown = [c for c in cameras if c not in views]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; known: {sorted(views)} (or pass camera_views)")
        if not 1 <= max_steps <= MAX_PATH_LENGTH:
            raise ValueError(f"max_steps must be in [1, {MAX_PATH_LENGTH}], got {max_steps}")
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.task_name, self.image_size, self.max_steps = task_name, image_size, max_steps
        self.cameras, self.camera_views = tuple(cameras), views
        self.demonstrator_appearance = demonstrator_appearance
        self.shared_start = shared_start

        _release_pending()
        self._env = _make_mt_env(task_name)
        self._env._freeze_rand_vec = False  # a fresh layout each reset, drawn from the env's seeded RNG
        self._env.seeded_rand_vec = True
        self._env.seed(seed)
        self._expert = ENV_POLICY_MAP[task_name]()
        model = self._env.model
        for name in views.values():
            if name != HAND_CAMERA and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name) < 0:
                raise ValueError(f"camera {name!r} is not in the {task_name} model")
        if hide_goal:  # "goal" in most tasks; some name theirs per task (handle-press: goalPress, goalPull)
            for site in range(model.nsite):
                if model.site(site).name.startswith("goal"):
                    model.site_rgba[site, 3] = 0.0
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth, model.vis.global_.offheight = image_size, image_size
        self._renderer = mujoco.Renderer(model, image_size, image_size)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._recolour = self._demonstrator_colours(model)
        # The hand view draws from its own render-only model (built only when a camera shows it).
        hand_view = any(views[c] == HAND_CAMERA for c in self.cameras)
        self._hand = HandRenderer(self._env, image_size) if hand_view else None
        self.hand_appearance = HandAppearance.canonical()
        renderers = (self._renderer,) if self._hand is None else (self._renderer, self._hand.renderer)
        # Free the GL contexts (at the next safe point) once the env is collected, and at exit before MuJoCo's own
        # exit hook terminates the EGL display (registered on the first context, so ours must come after it).
        self._finalizer = weakref.finalize(self, _defer_release, renderers, self._env)
        self._finalizer.atexit = False
        _register_exit_hook()
        _LIVE_ENVS.add(self)
        self._raw_obs: np.ndarray | None = None
        self._start_arm = self._arm_after_hand_reset() if shared_start else None
        self.steps = 0

    @staticmethod
    def _demonstrator_colours(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
        """Visible geoms of the arm and gripper and the colours they get in the demonstrator view."""
        arm, gripper = model.body(_ARM_ROOT).id, model.body(_GRIPPER_ROOT).id

        def root_of(body: int) -> int | None:
            while body > 0:
                if body in (arm, gripper):
                    return body
                body = model.body_parentid[body]
            return None

        ids, colours = [], []
        for geom in range(model.ngeom):
            root = root_of(model.geom_bodyid[geom])
            if root is not None and model.geom_rgba[geom, 3] > 0:
                ids.append(geom)
                colours.append(GRIPPER_RGBA if root == gripper else ARM_RGBA)
        return np.asarray(ids, np.int64), np.asarray(colours, np.float32)

    @property
    def action_dim(self) -> int:
        return len(ACTION_NAMES)

    @property
    def state(self) -> np.ndarray:
        """The current 39-d Meta-World observation (hand, gripper, objects, previous, goal) as float32."""
        if self._raw_obs is None:
            raise RuntimeError("call reset() before reading the state")
        return self._raw_obs.astype(np.float32)

    def render(self, camera: str) -> np.ndarray:
        """``uint8 [S, S, 3]`` RGB frame of a named camera at the current state."""
        if camera not in self.camera_views:
            raise ValueError(f"unknown camera {camera!r}; known: {sorted(self.camera_views)}")
        _release_pending()
        if self.camera_views[camera] == HAND_CAMERA:
            if self._hand is None:
                raise ValueError(
                    f"camera {camera!r} shows the hand: pass it in cameras= when creating the env"
                )
            return self._hand.render(self.hand_appearance, self.steps / CONTROL_FPS)
        model = self._env.model
        recolour = (
            camera.startswith("demonstrator") and self.demonstrator_appearance and len(self._recolour[0])
        )
        if recolour:
            ids, colours = self._recolour
            saved = model.geom_rgba[ids].copy()
            model.geom_rgba[ids] = colours
        try:
            self._renderer.update_scene(self._env.data, camera=self.camera_views[camera])
            frame = self._renderer.render()
        finally:
            if recolour:
                model.geom_rgba[ids] = saved
        if self.camera_views[camera].startswith("corner"):
            frame = frame[::-1, ::-1]  # Meta-World's corner cameras are mounted upside down
        return np.ascontiguousarray(frame)

    def _observation(self) -> Observation:
        return Observation({cam: self.render(cam) for cam in self.cameras}, self.state)

    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode; ``seed`` fixes the layout (``None`` draws the next layout of the seeded stream)."""
        if seed is not None:
            self._env.seed(int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # gymnasium's "reset seed ignored" style notes
            self._raw_obs, _ = self._env.reset()
        if self.shared_start:
            self._raw_obs = self._move_to_shared_start()
        self.steps = 0
        return self._observation()

    def _move_to_shared_start(self) -> np.ndarray:
        """Set the object's joint to the pair's shared start and the arm to where the hand reset leaves it.

        The arm is set too because door-lock's reset steps the simulation once more after placing the hand
        (door-unlock's does not), so its arm would start 0.02 rad (0.5-4 mm) away and tell the two tasks apart. Returns
        the observation as Meta-World's reset makes it.
        """
        env = self._env
        env.data.qpos[_ARM_QPOS], env.data.qvel[_ARM_QPOS] = self._start_arm
        env.data.qpos[_SHARED_JOINT_QPOS] = SHARED_STARTS[self.task_name]
        env.data.qvel[_SHARED_JOINT_QPOS] = 0.0
        mujoco.mj_forward(env.model, env.data)
        obs = env._get_obs()
        env._prev_obs = obs[:18].copy()  # no previous frame at the start: reset repeats the current one
        obs[18:36] = env._prev_obs
        return obs

    def _arm_after_hand_reset(self) -> tuple[np.ndarray, np.ndarray]:
        """Arm joint positions and velocities after Meta-World's ``_reset_hand`` alone, on a scratch copy.

        Replays the hand reset (mocap held at the task's start, gripper open) from the model's initial state,
        so the result does not depend on what the task's own reset did afterwards, nor on the layout.
        """
        env = self._env
        data = mujoco.MjData(env.model)
        mocap = env.model.body_mocapid[env.model.body("mocap").id]
        data.ctrl[:] = (-1.0, 1.0)
        for _ in range(_HAND_RESET_STEPS):
            data.mocap_pos[mocap] = env.hand_init_pos
            data.mocap_quat[mocap] = (1.0, 0.0, 1.0, 0.0)
            mujoco.mj_step(env.model, data, nstep=env.frame_skip)
        return data.qpos[_ARM_QPOS].copy(), data.qvel[_ARM_QPOS].copy()

    def step(self, action: np.ndarray) -> tuple[Observation, bool, bool]:
        """Apply a ``[4]`` action in ``[-1, 1]`` (clipped); returns (observation, success, done)."""
        if self._raw_obs is None:
            raise RuntimeError("call reset() before step()")
        if self.steps >= self.max_steps:
            raise RuntimeError(f"episode is over after max_steps={self.max_steps}; call reset()")
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (self.action_dim,) or not np.isfinite(action).all():
            raise ValueError(
                f"action must be {self.action_dim} finite floats (dx, dy, dz, gripper), got {action}"
            )
        self._raw_obs, _, _, _, info = self._env.step(np.clip(action, -1.0, 1.0))
        self.steps += 1
        return self._observation(), bool(info["success"]), self.steps >= self.max_steps

    def expert_action(self) -> np.ndarray:
        """The scripted Meta-World expert's action for the current state, clipped to ``[-1, 1]``."""
        if self._raw_obs is None:
            raise RuntimeError("call reset() before expert_action()")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Constant(s) may be too high": we clip
            action = self._expert.get_action(self._raw_obs)
        return np.clip(np.asarray(action, np.float32), -1.0, 1.0)

    def close(self) -> None:
        self._finalizer()
        _release_pending()

    def __enter__(self) -> MetaWorldEnv:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TaskSuccessProbe:
    """Whether another task of the same scene counts as done in an env's current state (no rendering).

    For the opposite pairs (``OPPOSITE_TASK``): the probe is the other task's own Meta-World env, reset to the
    same layout (checked: same object placements), which reads the scene env's physics
    state each step and applies its own success test. A prompt-swap evaluation uses it to see which task a
    policy did, whatever task's prompt it was given.
    """

    def __init__(self, env: MetaWorldEnv, task_name: str) -> None:
        check_task(task_name)
        self.env, self.task_name = env, task_name
        self._probe = _make_mt_env(task_name)
        if self._probe.model_name != env._env.model_name:
            raise ValueError(f"{task_name} is not played in the scene of {env.task_name}: no shared model")
        self._probe._freeze_rand_vec = False
        self._probe.seeded_rand_vec = True

    def reset(self, seed: int) -> None:
        """Match the scene env's layout ``seed`` (call right after ``env.reset(seed)``)."""
        probe, scene = self._probe, self.env._env
        probe.seed(int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            probe.reset()
        # The objects must stand where the scene's stand (the arms may start apart: the probe copies the arm).
        same_layout = np.allclose(probe.model.body_pos, scene.model.body_pos)
        if not same_layout:
            raise ValueError(f"{self.task_name} and {self.env.task_name} lay out seed {seed} differently")

    def __call__(self, action: np.ndarray) -> bool:
        """The probe task's success flag for the scene env's current state, reached by ``action``."""
        probe, scene = self._probe, self.env._env
        probe.data.qpos[:] = scene.data.qpos
        probe.data.qvel[:] = scene.data.qvel
        probe.data.mocap_pos[:] = scene.data.mocap_pos
        probe.data.mocap_quat[:] = scene.data.mocap_quat
        mujoco.mj_forward(probe.model, probe.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            _, info = probe.evaluate_state(probe._get_obs(), np.clip(action, -1.0, 1.0))
        return bool(info["success"])

    def close(self) -> None:
        self._probe.close()
