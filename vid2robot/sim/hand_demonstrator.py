"""A render-only human hand that shows a scripted expert's episode as a person doing the task.

The demonstrator view of the ``hand`` camera draws the Meta-World scene without the Sawyer (every robot geom
transparent) and puts a skin-toned hand with a forearm where the expert's gripper is, fingers curling as the
gripper closes. The hand is OpenAI's Shadow hand model, loaded from the installed ``gymnasium-robotics`` wheel
(its meshes and ``LICENSE.md`` stay there; nothing of it is copied into this package).

The hand lives in a *separate* MuJoCo model used only for rendering: the physics model, its qpos layout and
its masses are untouched (Meta-World indexes ``qpos`` by position). Before each render the render model copies
the joint positions, mocap pose, and the body/site placements Meta-World writes into ``model`` at reset, then
runs forward kinematics only.

Appearance varies per episode (``HandAppearance``: skin tone, hand size, viewpoint, table and light colours,
path noise, pace), drawn from a seeded generator out of one of two disjoint pools: ``seen`` for training data and
``held_out`` for evaluation prompts only (``HAND_POOLS``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

HAND_CAMERA = "hand_view"  # camera_views value of a hand view: the free camera of the episode's appearance
HAND_SCALES = (0.9, 1.0, 1.12)  # hand sizes (relative to the Shadow hand, itself about an adult's)
SKIN_TONES: dict[str, tuple[float, float, float]] = {
    "light": (0.96, 0.80, 0.69),
    "fair": (0.91, 0.72, 0.60),
    "medium": (0.78, 0.57, 0.44),
    "tan": (0.69, 0.49, 0.34),
    "brown": (0.55, 0.37, 0.25),
    "dark": (0.36, 0.24, 0.17),
}
# Finger and thumb joint angles of a curled (gripping) hand; the open hand is a relaxed fraction of it.
_GRIP_POSE = {
    "J3": 0.0,
    "J2": 1.25,
    "J1": 1.1,
    "J0": 0.9,
    "THJ4": 0.9,
    "THJ3": 1.0,
    "THJ1": 0.3,
    "THJ0": -0.6,
}
_RELAXED = 0.15
# Palm centre in the forearm body's frame (the mount puts it at the gripper's grasp point).
_PALM_OFFSET = np.array([0.0, -0.02, 0.33])
_FOREARM_LENGTH, _FOREARM_RADIUS = 0.24, 0.026
_PARKED = np.array([0.0, 0.0, -10.0])  # unused hand sizes wait out of every camera's view


@dataclass(frozen=True)
class Viewpoint:
    """A free camera: look-at point, distance (m), azimuth and elevation (degrees), vertical field of view."""

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float
    fovy: float = 45.0


@dataclass(frozen=True)
class HandPool:
    """Ranges one appearance is drawn from. Each ``(low, high)`` is uniform; ``azimuth`` may list several."""

    skin_tones: tuple[str, ...]
    azimuth: tuple[tuple[float, float], ...]
    elevation: tuple[float, float] = (-48.0, -34.0)
    distance: tuple[float, float] = (0.8, 0.95)  # close enough that a 64 px frame shows fingers
    lookat_jitter: float = 0.04  # m, per axis
    table_tint: tuple[float, float] = (0.6, 1.25)  # multiplies the table texture, per channel
    light_level: tuple[float, float] = (0.55, 0.95)
    light_tint: float = 0.12  # per-channel spread of the light's colour around white
    path_noise: tuple[float, float] = (0.004, 0.015)  # m, amplitude of the hand's smooth deviation
    pace: tuple[float, float] = (0.7, 1.0)  # fraction of the video the movement takes (1 = the expert's)
    wrist_jitter: float = 0.25  # rad, how differently people turn and tilt their hand


# The two pools share table, light, noise and pace ranges but no skin tone and no viewpoint: the held-out pool's
# viewpoint is the gap between the seen azimuth bands, so no seen camera ever looks from there.
HAND_POOLS: dict[str, HandPool] = {
    "seen": HandPool(
        skin_tones=("light", "fair", "tan", "brown", "dark"),
        azimuth=((112.0, 130.0), (154.0, 172.0)),
    ),
    "held_out": HandPool(skin_tones=("medium",), azimuth=((139.0, 145.0),)),
}
_LOOKAT = np.array([0.0, 0.72, 0.12])


@dataclass(frozen=True)
class HandAppearance:
    """One episode's look of the hand demonstrator; ``to_dict`` is what datasets record."""

    pool: str
    skin_tone: str
    skin_rgba: tuple[float, float, float, float]
    hand_scale: float
    viewpoint: Viewpoint
    table_rgba: tuple[float, float, float, float]
    light_diffuse: tuple[float, float, float]
    noise_amplitude: tuple[float, float, float]
    noise_frequency: tuple[float, float, float]  # Hz of simulated time
    noise_phase: tuple[float, float, float]
    pace_start: float  # fraction of the video before the hand starts moving
    pace_fraction: float  # fraction of the video the movement takes
    pace_wobble: float  # relative speed modulation within the movement
    wrist_roll: float = 0.0  # rad, added to the hand's roll about its own axis
    wrist_tilt: float = 0.0  # rad, added to the forearm's elevation

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def canonical(cls) -> HandAppearance:
        """The appearance with no variation (middle of the seen ranges): for pictures and tests."""
        return cls(
            pool="seen",
            skin_tone="fair",
            skin_rgba=(*SKIN_TONES["fair"], 1.0),
            hand_scale=1.0,
            viewpoint=Viewpoint(tuple(_LOOKAT), 0.87, 125.0, -40.0),
            table_rgba=(1.0, 1.0, 1.0, 1.0),
            light_diffuse=(0.75, 0.75, 0.75),
            noise_amplitude=(0.0, 0.0, 0.0),
            noise_frequency=(1.0, 1.0, 1.0),
            noise_phase=(0.0, 0.0, 0.0),
            pace_start=0.0,
            pace_fraction=1.0,
            pace_wobble=0.0,
        )


def sample_appearance(rng: np.random.Generator, pool: str = "seen") -> HandAppearance:
    """Draw one episode's appearance from ``HAND_POOLS[pool]``; the same generator state gives the same draw."""
    if pool not in HAND_POOLS:
        raise ValueError(f"hand pool must be one of {sorted(HAND_POOLS)}, got {pool!r}")
    p = HAND_POOLS[pool]
    tone = p.skin_tones[int(rng.integers(len(p.skin_tones)))]
    skin = np.clip(np.asarray(SKIN_TONES[tone]) * rng.uniform(0.95, 1.05), 0.0, 1.0)
    band = p.azimuth[int(rng.integers(len(p.azimuth)))]
    lookat = _LOOKAT + rng.uniform(-p.lookat_jitter, p.lookat_jitter, 3)
    viewpoint = Viewpoint(
        tuple(float(x) for x in lookat),
        float(rng.uniform(*p.distance)),
        float(rng.uniform(*band)),
        float(rng.uniform(*p.elevation)),
    )
    level = rng.uniform(*p.light_level)
    light = np.clip(level * (1 + rng.uniform(-p.light_tint, p.light_tint, 3)), 0.0, 1.0)
    fraction = float(rng.uniform(*p.pace))
    return HandAppearance(
        pool=pool,
        skin_tone=tone,
        skin_rgba=(*(float(x) for x in skin), 1.0),
        hand_scale=float(HAND_SCALES[int(rng.integers(len(HAND_SCALES)))]),
        viewpoint=viewpoint,
        table_rgba=(*(float(x) for x in rng.uniform(*p.table_tint, 3)), 1.0),
        light_diffuse=tuple(float(x) for x in light),
        noise_amplitude=tuple(float(x) for x in rng.uniform(*p.path_noise, 3)),
        noise_frequency=tuple(float(x) for x in rng.uniform(0.3, 1.2, 3)),
        noise_phase=tuple(float(x) for x in rng.uniform(0.0, 2 * np.pi, 3)),
        pace_start=float(rng.uniform(0.0, 1.0 - fraction)),
        pace_fraction=fraction,
        pace_wobble=float(rng.uniform(0.0, 0.3)),
        wrist_roll=float(rng.uniform(-p.wrist_jitter, p.wrist_jitter)),
        wrist_tilt=float(rng.uniform(-p.wrist_jitter, p.wrist_jitter) / 2),
    )


def pace_indices(length: int, appearance: HandAppearance) -> np.ndarray:
    """Which expert step each of the ``length`` hand frames shows: a person who waits, then moves at their own pace.

    The hand holds the first state for ``pace_start`` of the video, performs the whole movement in
    ``pace_fraction`` of it with a smooth speed change (``pace_wobble``), and holds the last state after. The
    frame count stays the episode's, so every camera of an episode keeps one frame per step.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    u = (np.arange(length) / max(length - 1, 1) - appearance.pace_start) / appearance.pace_fraction
    u = np.clip(u, 0.0, 1.0)
    # A monotone warp of [0, 1]: speed 1 + wobble * cos(2 pi u) integrates to u + wobble * sin(2 pi u) / (2 pi).
    warped = u + appearance.pace_wobble * np.sin(2 * np.pi * u) / (2 * np.pi)
    return np.rint(np.clip(warped, 0.0, 1.0) * (length - 1)).astype(np.int64)


def shadow_hand_dir() -> Path:
    """``gymnasium_robotics/envs/assets`` of the installed wheel (the Shadow hand's XML, meshes and licence)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the hand demonstrator needs the Shadow hand model from gymnasium-robotics: "
            "pip install 'gymnasium-robotics==1.4.2' (or the package's 'sim' extra)"
        )
    assets = Path(spec.submodule_search_locations[0]) / "envs" / "assets"
    if not (assets / "hand" / "robot.xml").exists():
        raise FileNotFoundError(f"{assets / 'hand' / 'robot.xml'} is missing: reinstall gymnasium-robotics")
    return assets


def _scaled_hand(scale: float) -> mujoco.MjSpec:
    """The Shadow hand (forearm down) with every length multiplied by ``scale``; visual geoms only."""
    hand = mujoco.MjSpec.from_file(str(shadow_hand_dir() / "hand" / "reach.xml"))
    for mesh in hand.meshes:
        mesh.scale = np.asarray(mesh.scale) * scale
    for body in hand.bodies:
        body.pos = np.asarray(body.pos) * scale
    for geom in hand.geoms:
        geom.pos = np.asarray(geom.pos) * scale
        geom.size = np.asarray(geom.size) * scale
    return hand


class HandRenderer:
    """Renders a physics env's current state with the hand demonstrator in place of the robot.

    ``physics`` is the Meta-World env (``SawyerXYZEnv``) whose ``model``/``data`` drive the picture; it is only
    read. One render model holds a hand of each ``HAND_SCALES`` size on its own mocap body; the unused ones
    are parked out of view.
    """

    def __init__(self, physics, image_size: int) -> None:
        self._physics = physics
        spec = mujoco.MjSpec.from_file(physics.model_name)
        spec.add_material(name="v2r_skin", rgba=[0.9, 0.7, 0.6, 1.0], specular=0.15, shininess=0.15)
        self._mounts = []
        for i, scale in enumerate(HAND_SCALES):
            mount = spec.worldbody.add_body(name=f"v2r_hand{i}", mocap=True, pos=_PARKED)
            frame = mount.add_frame(pos=-_PALM_OFFSET * scale)
            prefix = f"v2r_h{i}_"
            frame.attach_body(_scaled_hand(scale).body("robot0:forearm"), prefix, "")
            forearm = spec.body(f"{prefix}robot0:forearm")
            forearm.add_geom(  # a person's forearm instead of the Shadow hand's motor housing
                name=f"{prefix}arm",
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=[0, 0, 0.25 * scale, 0, 0, (0.25 - _FOREARM_LENGTH) * scale],
                size=[_FOREARM_RADIUS * scale, 0, 0],
                material="v2r_skin",
            )
            self._mounts.append(mount.name)
        for element in [*spec.actuators, *spec.tendons, *spec.sensors]:
            if element.name.startswith("v2r_"):
                element.delete()
        for pair in list(spec.pairs):
            if pair.geomname1.startswith("v2r_"):
                pair.delete()
        for body in spec.bodies:
            if not body.name.startswith("v2r_"):
                continue
            for geom in list(body.geoms):
                if geom.name.endswith("robot0:V_forearm") or geom.group == 4 or "robot0:C_" in geom.name:
                    geom.delete()  # collision shapes and the motor housing
                else:
                    geom.material, geom.contype, geom.conaffinity = "v2r_skin", 0, 0
        model = spec.compile()
        self.model, self.data = model, mujoco.MjData(model)
        pm = physics.model
        self._check_prefix(pm, model)
        self._hand_mocap = [model.body_mocapid[model.body(name).id] for name in self._mounts]
        self._finger_qpos = self._finger_joints(model)
        self._robot_geoms = self._robot_geom_ids(model)
        self._skin_material = model.mat("v2r_skin").id
        self._robot_sites = np.array(
            [s for s in range(pm.nsite) if self._on_robot(model, model.site_bodyid[s])], np.int64
        )
        self._table_mat = [
            m
            for m in range(model.nmat)
            if model.mat(m).name.startswith("table") and "col" not in model.mat(m).name
        ]
        model.geom_rgba[self._robot_geoms, 3] = 0.0
        model.geom_matid[self._robot_geoms] = -1
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth, model.vis.global_.offheight = image_size, image_size
        self._base_table_rgba = model.mat_rgba[self._table_mat].copy()
        self.renderer = mujoco.Renderer(model, image_size, image_size)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE

    @staticmethod
    def _check_prefix(pm: mujoco.MjModel, model: mujoco.MjModel) -> None:
        """The physics model's bodies, joints and sites come first, in order, in the render model (copied by index)."""
        same_bodies = all(pm.body(b).name == model.body(b).name for b in range(pm.nbody))
        same_sites = all(pm.site(s).name == model.site(s).name for s in range(pm.nsite))
        same_joints = np.array_equal(pm.jnt_qposadr, model.jnt_qposadr[: pm.njnt]) and all(
            pm.joint(j).name == model.joint(j).name for j in range(pm.njnt)
        )
        if not (same_bodies and same_sites and same_joints and model.nmocap == pm.nmocap + len(HAND_SCALES)):
            raise RuntimeError("hand render model does not extend the physics model as expected")

    @staticmethod
    def _robot_geom_ids(model: mujoco.MjModel) -> np.ndarray:
        """Every geom of the Sawyer (pedestal, arm, gripper): drawn fully transparent in the hand view."""
        return np.array(
            [g for g in range(model.ngeom) if HandRenderer._on_robot(model, model.geom_bodyid[g])], np.int64
        )

    @staticmethod
    def _on_robot(model: mujoco.MjModel, body: int) -> bool:
        root = model.body("base").id
        while body > 0:
            if body == root:
                return True
            body = model.body_parentid[body]
        return False

    @staticmethod
    def _finger_joints(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
        """qpos addresses of every hand's finger and thumb joints, and their fully curled angles."""
        addresses, angles = [], []
        for j in range(model.njnt):
            name = model.joint(j).name
            if not name.startswith("v2r_"):
                continue
            short = name.split("robot0:")[-1]
            key = short if short.startswith("TH") else short[2:]
            if key in _GRIP_POSE:
                addresses.append(model.jnt_qposadr[j])
                low, high = model.jnt_range[j]
                angles.append(float(np.clip(_GRIP_POSE[key], low, high)))
        return np.array(addresses, np.int64), np.array(angles)

    def render(self, appearance: HandAppearance, time_s: float) -> np.ndarray:
        """``uint8 [S, S, 3]`` of the physics env's current state; ``time_s`` (episode time) drives the path noise."""
        physics = self._physics
        pm, pd, model, data = physics.model, physics.data, self.model, self.data
        data.qpos[: pm.nq] = pd.qpos
        model.body_pos[: pm.nbody] = pm.body_pos
        model.body_quat[: pm.nbody] = pm.body_quat
        model.site_pos[: pm.nsite] = pm.site_pos
        model.site_rgba[: pm.nsite] = pm.site_rgba
        model.site_rgba[self._robot_sites, 3] = 0.0
        data.mocap_pos[: pm.nmocap] = pd.mocap_pos
        data.mocap_quat[: pm.nmocap] = pd.mocap_quat
        self._place_hand(appearance, time_s)
        model.mat_rgba[self._skin_material] = appearance.skin_rgba
        model.mat_rgba[self._table_mat] = self._base_table_rgba * np.asarray(appearance.table_rgba)
        model.light_diffuse[:] = appearance.light_diffuse
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_camlight(model, data)
        view = appearance.viewpoint
        self._camera.lookat[:] = view.lookat
        self._camera.distance, self._camera.azimuth, self._camera.elevation = (
            view.distance,
            view.azimuth,
            view.elevation,
        )
        model.vis.global_.fovy = view.fovy
        self.renderer.update_scene(data, camera=self._camera)
        return self.renderer.render()

    def _place_hand(self, appearance: HandAppearance, time_s: float) -> None:
        grasp = np.asarray(self._physics.tcp_center, np.float64)
        phase = 2 * np.pi * np.asarray(appearance.noise_frequency) * time_s + np.asarray(
            appearance.noise_phase
        )
        grasp = grasp + np.asarray(appearance.noise_amplitude) * np.sin(phase)
        # Gripper opening (Meta-World's normalised finger distance, obs[3]) -> how far the fingers curl.
        claws = self._physics.data.body("rightclaw").xpos - self._physics.data.body("leftclaw").xpos
        opening = float(np.clip(np.linalg.norm(claws) / 0.1, 0.0, 1.0))
        curl = _RELAXED + (1.0 - _RELAXED) * (1.0 - opening)
        addresses, angles = self._finger_qpos
        self.data.qpos[addresses] = curl * angles
        quat = _hand_orientation(appearance.wrist_tilt, appearance.wrist_roll)
        for i, mocap in enumerate(self._hand_mocap):
            active = np.isclose(HAND_SCALES[i], appearance.hand_scale)
            self.data.mocap_pos[mocap] = grasp if active else _PARKED
            self.data.mocap_quat[mocap] = quat

    def close(self) -> None:
        self.renderer.close()


def _hand_orientation(tilt: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """A person reaching in from the robot's side: forearm rising toward the robot's base, fingers forward-down.

    The hand's own axis (+z of the forearm body) is turned half a turn about the world z axis, tipped 112
    degrees (plus ``tilt``) about x, and rolled a quarter turn (plus ``roll``) so the palm and fingers face the
    demonstrator cameras.
    """
    turn, tip, spin = np.zeros(4), np.zeros(4), np.zeros(4)
    mujoco.mju_axisAngle2Quat(turn, np.array([0.0, 0.0, 1.0]), np.pi)
    mujoco.mju_axisAngle2Quat(tip, np.array([1.0, 0.0, 0.0]), 0.62 * np.pi + tilt)
    mujoco.mju_axisAngle2Quat(spin, np.array([0.0, 0.0, 1.0]), -np.pi / 2 + roll)
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, turn, tip)
    mujoco.mju_mulQuat(out, out, spin)
    return out
