"""Domain randomization for the Franka tasks, as one Gymnasium wrapper with a typed config.

::

    config = DomainRandomizationConfig.load("dynamics")  # a preset, or a JSON file
    env = DomainRandomization(envs.make("robolearn/FrankaPush-v0"), config)
    obs, info = env.reset(seed=0)
    info["randomization"]        # what was drawn for this episode, JSON-ready

On every ``reset`` the wrapper draws new values from its own generator (reseeded by
``reset(seed=...)``, independent of the task's own reset draws), writes *nominal × draw* into
the MuJoCo model — so nothing drifts over episodes — and resets the task. What it can vary:

* dynamics — robot link masses (and inertias), sliding friction of every colliding geom,
  robot joint damping, position-servo gains (stiffness ``kp`` in ``gainprm``/``biasprm``
  together; damping ``kd`` by the square root of the same draw, which keeps the damping ratio),
  task object size and mass (and inertia);
* the interface — action latency (a FIFO of N control ticks: the action given at tick t is
  applied at tick t + N; the first N ticks hold the robot still) and Gaussian observation
  noise per key (float vectors only);
* what cameras see — camera position and orientation, light position and brightness, and the
  colour of every visible geom and material (matters for image observations only).

Values outside the nominal model are never written without their nominal partner: a
randomized object is put back on the table at its new half height after the task placed it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.geometry import quat_from_rotvec, quat_multiply
from robolearn.core.types import Command, ConfigError, ControlMode, FloatArray
from robolearn.envs.base import FrankaTaskEnv

Range = tuple[float, float]
GOAL_KEYS = frozenset({"achieved_goal", "desired_goal", "goal_pos"})
"""Observation keys ``obs_noise_std`` leaves alone (name them in ``obs_noise_std_per_key``
to add noise): goals carry no sensor noise, and noisy achieved goals would disagree with the
reward HER recomputes."""


@dataclass
class DomainRandomizationConfig:
    """Ranges to draw from on every reset; ``None`` / 0 leaves a parameter at its nominal value.

    Scales multiply the nominal value; each element (link, geom, joint, servo, object, light)
    gets its own draw, uniform in the range.
    """

    link_mass_scale: Range | None = None
    """× mass and inertia of each robot link."""
    friction_scale: Range | None = None
    """× sliding friction of each colliding geom (robot, table, floor, objects)."""
    joint_damping_scale: Range | None = None
    """× damping of each robot joint (arm and fingers)."""
    actuator_gain_scale: Range | None = None
    """× stiffness of each position servo (arm and gripper); damping × its square root."""
    object_size_scale: Range | None = None
    """× half extents of each task object (one draw per object, the shape is kept)."""
    object_mass_scale: Range | None = None
    """× mass of each task object."""
    action_latency_ticks: tuple[int, int] | None = None
    """Control ticks between an action and its effect, an integer drawn from [lo, hi]."""
    obs_noise_std: float = 0.0
    """Gaussian noise std added to every float observation key but the goals (GOAL_KEYS)."""
    obs_noise_std_per_key: dict[str, float] = field(default_factory=dict)
    """Noise std per observation key, overriding ``obs_noise_std``."""
    camera_pos_offset_m: float = 0.0
    """Camera position offset, uniform in ± this per axis (in the camera's parent frame)."""
    camera_rot_offset_rad: float = 0.0
    """Camera orientation offset: a rotation about a random axis by up to this angle."""
    light_pos_offset_m: float = 0.0
    """Light position offset, uniform in ± this per axis."""
    light_diffuse_scale: Range | None = None
    """× diffuse colour (brightness) of each light."""
    rgba_offset: float = 0.0
    """Colour offset of each visible geom and material, uniform in ± this per RGB channel
    (clipped to [0, 1]; alpha unchanged)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))
        self._check()

    def _check(self) -> None:
        scales = ("link_mass_scale", "friction_scale", "joint_damping_scale", "actuator_gain_scale")
        for name in (*scales, "object_size_scale", "object_mass_scale", "light_diffuse_scale"):
            _check_range(name, getattr(self, name), low=0.0, strict=name != "light_diffuse_scale")
        if self.action_latency_ticks is not None:
            lo, hi = _check_range("action_latency_ticks", self.action_latency_ticks, 0.0, False)
            if lo != int(lo) or hi != int(hi):
                raise ConfigError(f"action_latency_ticks must be integers, got {(lo, hi)}")
        offsets = ("obs_noise_std", "camera_pos_offset_m", "camera_rot_offset_rad")
        for name in (*offsets, "light_pos_offset_m", "rgba_offset"):
            if not float(getattr(self, name)) >= 0.0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for key, std in self.obs_noise_std_per_key.items():
            if not float(std) >= 0.0:
                raise ConfigError(f"obs_noise_std_per_key[{key!r}] must be ≥ 0, got {std}")

    @property
    def enabled(self) -> list[str]:
        """Names of the parameters this config varies."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainRandomizationConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"domain randomization has no parameters {unknown}; known: {sorted(known)}"
            )
        return cls(**data)

    @classmethod
    def load(cls, spec: str) -> DomainRandomizationConfig:
        """A preset name (see :data:`PRESETS`) or the path of a JSON file of fields."""
        if spec in PRESETS:
            return dataclasses.replace(PRESETS[spec])
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(
                f"randomization {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a "
                "JSON file of DomainRandomizationConfig fields"
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object of randomization fields")
        return cls.from_dict(data)


def _check_range(name: str, value: Any, low: float, strict: bool) -> tuple[float, float]:
    if value is None:
        return (0.0, 0.0)
    if len(value) != 2 or not value[0] <= value[1]:
        raise ConfigError(f"{name} must be a [lo, hi] pair with lo ≤ hi, got {value}")
    if value[0] < low or (strict and value[0] <= low):
        raise ConfigError(f"{name} must lie above {low}, got {value}")
    return float(value[0]), float(value[1])


_DYNAMICS = {
    "link_mass_scale": (0.8, 1.2),
    "friction_scale": (0.7, 1.3),
    "joint_damping_scale": (0.5, 2.0),
    "actuator_gain_scale": (0.7, 1.3),
    "object_size_scale": (0.85, 1.15),
    "object_mass_scale": (0.5, 2.0),
    "action_latency_ticks": (0, 1),
    "obs_noise_std": 0.002,
}
_VISUAL = {
    "camera_pos_offset_m": 0.02,
    "camera_rot_offset_rad": 0.05,
    "light_pos_offset_m": 0.3,
    "light_diffuse_scale": (0.6, 1.4),
    "rgba_offset": 0.15,
}
PRESETS: dict[str, DomainRandomizationConfig] = {
    "none": DomainRandomizationConfig(),
    "dynamics": DomainRandomizationConfig(**_DYNAMICS),  # type: ignore[arg-type]
    "visual": DomainRandomizationConfig(**_VISUAL),  # type: ignore[arg-type]
    "full": DomainRandomizationConfig(**_DYNAMICS, **_VISUAL),  # type: ignore[arg-type]
}
"""Named configs: physics and interface (``dynamics``), what cameras see (``visual``), both."""


@dataclass(frozen=True)
class _Targets:
    """Which model elements each parameter touches, and their labels for ``info``."""

    links: tuple[int, ...]
    geoms: tuple[int, ...]
    dofs: tuple[int, ...]
    servos: tuple[int, ...]
    objects: tuple[tuple[int, int], ...]  # (body id, geom id)
    visible: tuple[int, ...]
    labels: dict[str, list[str]]

    @classmethod
    def of(cls, model: mujoco.MjModel, object_names: list[str]) -> _Targets:
        """The elements of a Franka task scene."""
        links = [
            b for b in range(model.nbody) if _robot(model.body(b).name) and model.body_mass[b] > 0
        ]
        geoms = [
            g for g in range(model.ngeom) if model.geom_contype[g] or model.geom_conaffinity[g]
        ]
        joints = [j for j in range(model.njnt) if _robot(model.joint(j).name)]
        servos = [a for a in range(model.nu) if _is_position_servo(model, a)]
        objects = [(model.body(n).id, model.geom(n).id) for n in object_names]
        visible = [
            g for g in range(model.ngeom) if model.geom_group[g] <= 2 and model.geom_rgba[g, 3] > 0
        ]
        labels = {
            "links": [model.body(b).name for b in links],
            "geoms": [_geom_label(model, g) for g in geoms],
            "dofs": [model.joint(j).name for j in joints],
            "servos": [model.actuator(a).name for a in servos],
            "objects": list(object_names),
            "cameras": [model.camera(c).name for c in range(model.ncam)],
            "lights": [model.light(i).name or f"light{i}" for i in range(model.nlight)],
            "visible": [_geom_label(model, g) for g in visible],
            "materials": [model.material(i).name or f"material{i}" for i in range(model.nmat)],
        }
        dofs = tuple(int(model.jnt_dofadr[j]) for j in joints)
        return cls(
            tuple(links), tuple(geoms), dofs, tuple(servos), tuple(objects), tuple(visible), labels
        )


def _robot(name: str) -> bool:
    return name.startswith("panda_")


def _is_position_servo(model: mujoco.MjModel, a: int) -> bool:
    kp = model.actuator_gainprm[a, 0]
    return bool(
        model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE
        and kp > 0
        and math.isclose(model.actuator_biasprm[a, 1], -kp)
    )


def _geom_label(model: mujoco.MjModel, g: int) -> str:
    return model.geom(g).name or f"{model.body(model.geom_bodyid[g]).name}/geom{g}"


_MODEL_FIELDS = (
    "body_mass",
    "body_inertia",
    "geom_friction",
    "dof_damping",
    "actuator_gainprm",
    "actuator_biasprm",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "cam_pos",
    "cam_quat",
    "light_pos",
    "light_diffuse",
    "geom_rgba",
    "mat_rgba",
)
"""Every model field the wrapper writes; their nominal copies are taken once."""


class DomainRandomization(
    gym.Wrapper[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray],
    gym.utils.RecordConstructorArgs,
):
    """Draws :class:`DomainRandomizationConfig` values on every reset and applies them.

    The draws live in ``info["randomization"]`` (reset and step infos) and in
    :attr:`values`. Same seed ⇒ the same draws, noise and (with the same actions) the same
    trajectory. The wrapped env must be a Franka task (``envs.make("robolearn/...")``).
    """

    def __init__(self, env: gym.Env[Any, Any], config: DomainRandomizationConfig) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, config=config)
        gym.Wrapper.__init__(self, env)
        base = env.unwrapped
        if not isinstance(base, FrankaTaskEnv):
            raise ConfigError(
                f"DomainRandomization needs a robolearn Franka task env, got {type(base).__name__}"
            )
        self.config = config
        self._base = base
        self._model = base.driver.model
        self._targets = _Targets.of(self._model, [o.name for o in base.task.objects])
        self._nominal = {name: getattr(self._model, name).copy() for name in _MODEL_FIELDS}
        self._param_rng, self._noise_rng = _generators(None)
        self._draws: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}
        """What was drawn for the current episode (as in ``info["randomization"]``)."""
        self._pending: deque[np.ndarray] = deque()
        self._scratch: mujoco.MjData | None = None

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw new values (reseeding the wrapper's generators with ``seed``), apply them
        to nominal, reset the task; ``info["randomization"]`` holds the draws."""
        if seed is not None:
            self._param_rng, self._noise_rng = _generators(seed)
        self._draws = self._draw()
        self.values = self._describe(self._draws)
        self._restore_nominal()
        self._apply_model(self._draws)
        obs, info = self.env.reset(seed=seed, options=options)
        if self._apply_after_reset(self._draws):
            obs, info["is_success"] = self._base.observe(), self._base.is_success()
        self._fill_latency(int(self._draws.get("action_latency_ticks", np.zeros(1))[0]))
        info["randomization"] = copy.deepcopy(self.values)  # callers may keep or edit infos
        return self._noisy(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Step with the action given ``latency`` ticks ago; observations get their noise."""
        applied = action
        if self._pending:  # latency: apply the oldest queued action, queue this one
            self._pending.append(self._base._validate_action(action))  # bad actions fail now
            applied = self._pending.popleft()
        obs, reward, terminated, truncated, info = self.env.step(applied)
        info["randomization"] = copy.deepcopy(self.values)
        return self._noisy(obs), float(reward), terminated, truncated, info

    def close(self) -> None:
        """Put the nominal model back, then close the task."""
        self._restore_nominal()
        super().close()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> dict[str, np.ndarray]:
        """One value per element and enabled parameter, in a fixed order."""
        c, t, rng = self.config, self._targets, self._param_rng
        ranges = {
            "link_mass_scale": (c.link_mass_scale, len(t.links)),
            "friction_scale": (c.friction_scale, len(t.geoms)),
            "joint_damping_scale": (c.joint_damping_scale, len(t.dofs)),
            "actuator_gain_scale": (c.actuator_gain_scale, len(t.servos)),
            "object_size_scale": (c.object_size_scale, len(t.objects)),
            "object_mass_scale": (c.object_mass_scale, len(t.objects)),
            "light_diffuse_scale": (c.light_diffuse_scale, self._model.nlight),
        }
        draws = {k: rng.uniform(r[0], r[1], n) for k, (r, n) in ranges.items() if r is not None}
        if c.action_latency_ticks is not None:
            lo, hi = c.action_latency_ticks
            draws["action_latency_ticks"] = rng.integers(int(lo), int(hi) + 1, 1)
        m = self._model
        offsets = {
            "camera_pos_offset_m": (c.camera_pos_offset_m, (m.ncam, 3)),
            "light_pos_offset_m": (c.light_pos_offset_m, (m.nlight, 3)),
            "rgba_offset": (c.rgba_offset, (len(t.visible) + m.nmat, 3)),
        }
        for key, (half, shape) in offsets.items():
            if half > 0:
                draws[key] = rng.uniform(-half, half, shape)
        if c.camera_rot_offset_rad > 0:
            draws["camera_rot_offset_rad"] = _random_rotvecs(rng, m.ncam, c.camera_rot_offset_rad)
        return draws

    def _describe(self, draws: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The draws keyed by element name, as plain Python numbers (JSON-ready)."""
        lb = self._targets.labels
        names = {
            "link_mass_scale": lb["links"],
            "friction_scale": lb["geoms"],
            "joint_damping_scale": lb["dofs"],
            "actuator_gain_scale": lb["servos"],
            "object_size_scale": lb["objects"],
            "object_mass_scale": lb["objects"],
            "light_diffuse_scale": lb["lights"],
            "camera_pos_offset_m": lb["cameras"],
            "camera_rot_offset_rad": lb["cameras"],
            "light_pos_offset_m": lb["lights"],
            "rgba_offset": lb["visible"] + lb["materials"],
        }
        out: dict[str, Any] = {
            key: dict(zip(names[key], value.tolist(), strict=True))
            for key, value in draws.items()
            if key in names
        }
        if "action_latency_ticks" in draws:
            out["action_latency_ticks"] = int(draws["action_latency_ticks"][0])
        noise = self._noise_stds()
        if noise:
            out["obs_noise_std"] = noise
        return out

    # ------------------------------------------------------------------ applying
    def _restore_nominal(self) -> None:
        for name, nominal in self._nominal.items():
            if name not in ("actuator_gainprm", "actuator_biasprm"):  # the driver owns those
                getattr(self._model, name)[:] = nominal

    def _apply_model(self, draws: Mapping[str, np.ndarray]) -> None:
        """Everything but the servo gains, before the task's reset."""
        m, t, nom = self._model, self._targets, self._nominal
        if "link_mass_scale" in draws:
            self._scale_bodies(list(t.links), draws["link_mass_scale"])
        if "friction_scale" in draws:
            ids = list(t.geoms)
            m.geom_friction[ids, 0] = nom["geom_friction"][ids, 0] * draws["friction_scale"]
        if "joint_damping_scale" in draws:
            ids = list(t.dofs)
            m.dof_damping[ids] = nom["dof_damping"][ids] * draws["joint_damping_scale"]
        self._apply_objects(draws)
        self._apply_visuals(draws)
        if {"link_mass_scale", "object_size_scale", "object_mass_scale"} & draws.keys():
            if self._scratch is None:
                self._scratch = mujoco.MjData(m)
            mujoco.mj_setConst(
                m, self._scratch
            )  # subtree masses, inverse weights for the new masses

    def _scale_bodies(
        self, bodies: list[int], mass_scale: np.ndarray, size_scale: Any = 1.0
    ) -> None:
        m, nom = self._model, self._nominal
        m.body_mass[bodies] = nom["body_mass"][bodies] * mass_scale
        inertia_scale = np.asarray(mass_scale * np.square(size_scale))[:, None]
        m.body_inertia[bodies] = nom["body_inertia"][bodies] * inertia_scale

    def _apply_objects(self, draws: Mapping[str, np.ndarray]) -> None:
        if (
            not ({"object_size_scale", "object_mass_scale"} & draws.keys())
            or not self._targets.objects
        ):
            return
        m, nom = self._model, self._nominal
        n = len(self._targets.objects)
        size = draws.get("object_size_scale", np.ones(n))
        mass = draws.get("object_mass_scale", np.ones(n))
        bodies = [b for b, _ in self._targets.objects]
        geoms = [g for _, g in self._targets.objects]
        self._scale_bodies(bodies, mass, size)
        m.geom_size[geoms] = nom["geom_size"][geoms] * size[:, None]
        m.geom_rbound[geoms] = nom["geom_rbound"][geoms] * size
        m.geom_aabb[geoms, 3:] = nom["geom_aabb"][geoms, 3:] * size[:, None]

    def _apply_visuals(self, draws: Mapping[str, np.ndarray]) -> None:
        m, nom = self._model, self._nominal
        if "camera_pos_offset_m" in draws:
            m.cam_pos[:] = nom["cam_pos"] + draws["camera_pos_offset_m"]
        if "camera_rot_offset_rad" in draws:
            for c, rotvec in enumerate(draws["camera_rot_offset_rad"]):
                m.cam_quat[c] = quat_multiply(nom["cam_quat"][c], quat_from_rotvec(rotvec))
        if "light_pos_offset_m" in draws:
            m.light_pos[:] = nom["light_pos"] + draws["light_pos_offset_m"]
        if "light_diffuse_scale" in draws:
            m.light_diffuse[:] = nom["light_diffuse"] * draws["light_diffuse_scale"][:, None]
        if "rgba_offset" in draws:
            visible, offsets = list(self._targets.visible), draws["rgba_offset"]
            rgb = nom["geom_rgba"][visible, :3] + offsets[: len(visible)]
            m.geom_rgba[visible, :3] = rgb.clip(0.0, 1.0)
            m.mat_rgba[:, :3] = (nom["mat_rgba"][:, :3] + offsets[len(visible) :]).clip(0.0, 1.0)

    def _apply_after_reset(self, draws: Mapping[str, np.ndarray]) -> bool:
        """Servo gains (the task's reset sets the nominal ones) and objects resting at their
        new half height; True when the scene moved since the task's observation."""
        if "actuator_gain_scale" in draws:
            self._apply_gains(draws["actuator_gain_scale"])
        if "object_size_scale" not in draws:
            return False
        driver = self._base.driver
        for (_, geom), name in zip(
            self._targets.objects, self._targets.labels["objects"], strict=True
        ):
            pos, quat = driver.object_pose(name)
            pos[2] += self._model.geom_size[geom, 2] - self._nominal["geom_size"][geom, 2]
            driver.set_object_pose(name, pos, quat)
        return True

    def _apply_gains(self, scale: np.ndarray) -> None:
        m, nom, ids = self._model, self._nominal, list(self._targets.servos)
        kp = nom["actuator_gainprm"][ids, 0] * scale
        m.actuator_gainprm[ids, 0] = kp
        m.actuator_biasprm[ids, 1] = -kp
        m.actuator_biasprm[ids, 2] = nom["actuator_biasprm"][ids, 2] * np.sqrt(scale)

    # ------------------------------------------------------------------ interface
    def _fill_latency(self, ticks: int) -> None:
        """Queue ``ticks`` hold actions: the first actions of the episode arrive late."""
        self._pending.clear()
        if ticks <= 0:
            return
        driver = self._base.driver
        hold = Command(
            ControlMode.JOINT_POSITION,
            joint_position=driver.joint_positions(),
            gripper_width=driver.gripper_width(),
        )
        action = self._base.command_to_action(hold)
        self._pending.extend(action.copy() for _ in range(ticks))

    def _noise_stds(self) -> dict[str, float]:
        space = self.observation_space
        subspaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {}
        stds: dict[str, float] = {}
        for key, sub in subspaces.items():
            float_key = sub.dtype is not None and np.issubdtype(sub.dtype, np.floating)
            default = self.config.obs_noise_std if key not in GOAL_KEYS else 0.0
            std = float(self.config.obs_noise_std_per_key.get(key, default))
            if std > 0 and float_key:
                stds[key] = std
        return stds

    def _noisy(self, obs: dict[str, Any]) -> dict[str, Any]:
        stds = self.values.get("obs_noise_std")
        if not stds:
            return obs
        out = dict(obs)
        for key, std in stds.items():
            value = np.asarray(obs[key])
            out[key] = (value + self._noise_rng.normal(0.0, std, value.shape)).astype(value.dtype)
        return out


def _generators(seed: int | None) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for parameter draws and observation noise."""
    params, noise = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(params), np.random.default_rng(noise)


def _random_rotvecs(rng: np.random.Generator, n: int, max_angle_rad: float) -> FloatArray:
    axes = rng.normal(size=(n, 3))  # (n, 3)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return axes * rng.uniform(0.0, max_angle_rad, (n, 1))
