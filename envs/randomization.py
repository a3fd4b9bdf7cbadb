"""Domain randomization for the Franka tasks, as a composition of wrappers with a typed config.

::

    config = DomainRandomizationConfig.load("dynamics")  # a preset, or a JSON file
    env = DomainRandomization(envs.make("robolearn/FrankaPush-v0"), config)
    obs, info = env.reset(seed=0)
    info["randomization"]        # what was drawn for this episode, JSON-ready

On every ``reset`` the wrapper draws new values from its own generator (reseeded by
``reset(seed=...)``, independent of the task's own reset draws), puts the simulated scene at
*nominal × draw* — so nothing drifts over episodes — and resets the task. It works on both
simulators with the same parameters: the scene contract's ``set_randomization`` writes the
MuJoCo model (``robolearn.drivers.mujoco_panda.randomize``) or the PyBullet bodies, joints,
cameras and light.
:class:`DomainRandomization` is ``ObservationNoise(ActionLatency(ModelRandomization(task)))``
under one outer wrapper that draws the values and reports them; the interface wrappers
(:mod:`robolearn.envs.wrappers`) work on any robolearn env, the robot env included. What it
can vary:

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from robolearn.core.config_dict import config_from_dict
from robolearn.core.types import ConfigError, FloatArray
from robolearn.envs.base import FrankaTaskEnv
from robolearn.envs.wrappers import ActionLatency, ObservationNoise, noise_std_per_key

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
        return config_from_dict(
            cls, data, message="domain randomization has no parameters {unknown}; known: {known}"
        )

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


def _franka_task(env: gym.Env[Any, Any], who: str) -> FrankaTaskEnv:
    """The Franka task under ``env``'s wrappers; ConfigError for any other env."""
    base = env.unwrapped
    if not isinstance(base, FrankaTaskEnv):
        raise ConfigError(f"{who} needs a robolearn Franka task env, got {type(base).__name__}")
    return base


class ModelRandomization(gym.Wrapper[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray]):
    """Puts a Franka task's simulated scene at *nominal × draw* on every reset, on either
    backend (the physics and visual part of :class:`DomainRandomization`, which sets
    :attr:`draws`), through the scene contract's ``set_randomization``.

    ``draws`` maps parameter names of :class:`DomainRandomizationConfig` to one value per
    element of :attr:`targets` (as ``DomainRandomization`` draws them); an empty mapping
    leaves the scene nominal. ``close`` puts the nominal scene back.
    """

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray]) -> None:
        gym.Wrapper.__init__(self, env)
        self._base = _franka_task(env, "ModelRandomization")
        self.targets = self._base.driver.randomization_targets()
        """Element names per kind (links, geoms, dofs, servos, objects, cameras, lights,
        colours), in the order of each parameter's draws."""
        self.draws: Mapping[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply :attr:`draws`, reset the task, then rest resized objects on the table."""
        self._base.driver.set_randomization(self.draws)
        obs, info = self.env.reset(seed=seed, options=options)
        if "object_size_scale" in self.draws:
            self._rest_resized_objects(self.draws["object_size_scale"])
            obs, info["is_success"] = self._base.observe(), self._base.is_success()
        return obs, info

    def close(self) -> None:
        """Put the nominal scene back, then close the task."""
        self._base.driver.set_randomization({})
        super().close()

    def _rest_resized_objects(self, scales: np.ndarray) -> None:
        """The task placed each object for its nominal half height; lift it to its new one."""
        driver = self._base.driver
        half_heights = {o.name: o.half_extents[2] for o in driver.scene.objects}
        for name, scale in zip(self.targets["objects"], scales, strict=True):
            pos, quat = driver.object_pose(name)
            pos[2] += (float(scale) - 1.0) * half_heights[name]
            driver.set_object_pose(name, pos, quat)


class DomainRandomization(
    gym.Wrapper[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray],
    gym.utils.RecordConstructorArgs,
):
    """Draws :class:`DomainRandomizationConfig` values on every reset and applies them.

    It is the composition ``ObservationNoise(ActionLatency(ModelRandomization(task)))``
    (available as :attr:`noise`, :attr:`latency`, :attr:`model_randomization`): this outer
    wrapper draws every value from one generator, hands each part its share, and reports
    the draws in ``info["randomization"]`` (reset and step infos) and :attr:`values`. Same
    seed ⇒ the same draws, noise and (with the same actions) the same trajectory. The
    wrapped env must be a Franka task (``envs.make("robolearn/...")``).
    """

    def __init__(self, env: gym.Env[Any, Any], config: DomainRandomizationConfig) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, config=config)
        _franka_task(env, "DomainRandomization")
        self.model_randomization = ModelRandomization(env)
        self.latency = ActionLatency(self.model_randomization)
        stds = noise_std_per_key(
            env.observation_space, config.obs_noise_std, config.obs_noise_std_per_key, GOAL_KEYS
        )
        self.noise = ObservationNoise(self.latency, stds, seed_to_rng=noise_generator)
        gym.Wrapper.__init__(self, self.noise)
        self.config = config
        self._targets = self.model_randomization.targets
        self._param_rng = param_generator(None)
        self._draws: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}
        """What was drawn for the current episode (as in ``info["randomization"]``)."""

    @property
    def spec(self) -> EnvSpec | None:
        """The task's spec plus this wrapper and its config, as before the split into parts:
        ``gym.make(spec)`` rebuilds the parts through this wrapper."""
        if self._cached_spec is not None:
            return self._cached_spec
        inner = self.model_randomization.env.spec
        if inner is None:
            return None
        wrapper = WrapperSpec(
            name=self.class_name(),
            entry_point=f"{self.__module__}:{type(self).__name__}",
            kwargs=self._saved_kwargs,
        )
        spec = copy.deepcopy(inner)  # as gymnasium's wrappers do: no shared references
        spec.additional_wrappers += (wrapper,)
        return spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        self._cached_spec = value

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw new values (reseeding the generators with ``seed``), hand them to the parts,
        reset through them; ``info["randomization"]`` holds the draws."""
        if seed is not None:
            self._param_rng = param_generator(seed)
        self._draws = self._draw()
        self.values = self._describe(self._draws)
        self.model_randomization.draws = self._draws
        self.latency.ticks = int(self._draws.get("action_latency_ticks", np.zeros(1))[0])
        obs, info = self.env.reset(seed=seed, options=options)
        info["randomization"] = copy.deepcopy(self.values)  # callers may keep or edit infos
        return obs, info

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Step through the parts (latency, then noise on the observation)."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["randomization"] = copy.deepcopy(self.values)
        return obs, float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> dict[str, np.ndarray]:
        """One value per element and enabled parameter, in a fixed order."""
        c, rng = self.config, self._param_rng
        n = {kind: len(names) for kind, names in self._targets.items()}
        ranges = {
            "link_mass_scale": (c.link_mass_scale, n["links"]),
            "friction_scale": (c.friction_scale, n["geoms"]),
            "joint_damping_scale": (c.joint_damping_scale, n["dofs"]),
            "actuator_gain_scale": (c.actuator_gain_scale, n["servos"]),
            "object_size_scale": (c.object_size_scale, n["objects"]),
            "object_mass_scale": (c.object_mass_scale, n["objects"]),
            "light_diffuse_scale": (c.light_diffuse_scale, n["lights"]),
        }
        draws: dict[str, np.ndarray] = {
            k: rng.uniform(r[0], r[1], size) for k, (r, size) in ranges.items() if r is not None
        }
        if c.action_latency_ticks is not None:
            lo, hi = c.action_latency_ticks
            draws["action_latency_ticks"] = rng.integers(int(lo), int(hi) + 1, 1)
        offsets = {
            "camera_pos_offset_m": (c.camera_pos_offset_m, (n["cameras"], 3)),
            "light_pos_offset_m": (c.light_pos_offset_m, (n["lights"], 3)),
            "rgba_offset": (c.rgba_offset, (n["colours"], 3)),
        }
        for key, (half, shape) in offsets.items():
            if half > 0:
                draws[key] = rng.uniform(-half, half, shape)
        if c.camera_rot_offset_rad > 0:
            rotvecs = _random_rotvecs(rng, n["cameras"], c.camera_rot_offset_rad)
            draws["camera_rot_offset_rad"] = rotvecs
        return draws

    def _describe(self, draws: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The draws keyed by element name, as plain Python numbers (JSON-ready)."""
        lb = self._targets
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
            "rgba_offset": lb["colours"],
        }
        out: dict[str, Any] = {
            key: dict(zip(names[key], value.tolist(), strict=True))
            for key, value in draws.items()
            if key in names
        }
        if "action_latency_ticks" in draws:
            out["action_latency_ticks"] = int(draws["action_latency_ticks"][0])
        if self.noise.std_per_key:
            out["obs_noise_std"] = dict(self.noise.std_per_key)
        return out


def param_generator(seed: int | None) -> np.random.Generator:
    """The parameter-draw stream of ``seed`` (independent of :func:`noise_generator`)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])


def noise_generator(seed: int | None) -> np.random.Generator:
    """The observation-noise stream of ``seed`` (independent of :func:`param_generator`)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])


def _random_rotvecs(rng: np.random.Generator, n: int, max_angle_rad: float) -> FloatArray:
    axes = rng.normal(size=(n, 3))  # (n, 3)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return axes * rng.uniform(0.0, max_angle_rad, (n, 1))
