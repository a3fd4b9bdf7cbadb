"""The Franka task environment: a driver plus a task, as a ``gymnasium.Env``.

Observation modes (``obs_mode``):

* ``"state"`` — a ``Dict`` of named arrays: proprioception plus the task's privileged state;
* ``"image"`` — proprioception plus ``<camera>_rgb`` (H, W, 3) uint8 and, with
  ``depth=True``, ``<camera>_depth`` (H, W, 1) float32 metres;
* ``goal_conditioned=True`` (state only) — ``observation`` / ``achieved_goal`` /
  ``desired_goal`` as Stable-Baselines3's HER expects, with a vectorized ``compute_reward``.

Control modes (``control_mode``), all with a last gripper entry:

* ``"ee_delta"`` (default) — ``[-1, 1]^4``: xyz delta × ``max_ee_step_m``, gripper; the
  gripper stays pointing down;
* ``"ee_delta_pose"`` — ``[-1, 1]^7``: xyz delta, axis-angle delta × ``max_ee_rot_rad``, gripper;
* ``"joint_position"`` — absolute joint targets (rad) and gripper width (m);
* ``"joint_torque"`` — joint torques (N·m, gravity compensated) and gripper width (m).

Actions in ``[-1, 1]`` map the gripper linearly from closed (-1) to open (+1).

``backend`` chooses the simulator: ``"mujoco"`` (default) or ``"pybullet"``, the same robot,
scene, cameras, observations and action spaces on either (:mod:`robolearn.drivers.panda`).

``realtime=True`` paces the simulation to the wall clock, as a real arm would run.

Bad actions: a wrong shape, NaN or inf raises :class:`ActionError` before anything reaches
the physics. Finite values outside the action space are clipped to it (documented rule).
These rules, the gripper mapping and the observation keys are shared with the robot env
through :mod:`robolearn.envs.conventions`.

A solver blow-up (NaN, runaway speeds, MuJoCo resetting a bad state, an object thrown out of
the scene) raises :class:`~robolearn.core.types.PhysicsDivergedError` from ``step`` and every
other observation read: no observation of a diverged simulation reaches a policy. ``reset``
starts a sound episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robolearn.core.geometry import quat_error
from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    FloatArray,
    PhysicsDivergedError,
    RobotState,
)
from robolearn.drivers.panda import (
    BACKENDS,
    HOME_Q,
    CameraRequest,
    Marker,
    SceneConfig,
    SceneObject,
    SimulatedPanda,
    make_simulated_panda,
)
from robolearn.envs import conventions as cv
from robolearn.envs.conventions import CONTROL_MODES as CONTROL_MODES
from robolearn.envs.conventions import ActionError as ActionError
from robolearn.envs.conventions import EnvControlMode as EnvControlMode

ObsMode = Literal["state", "image"]
RewardType = Literal["dense", "sparse"]
DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])
"""End-effector pointing down (tool z along world -z), the home orientation."""
MAX_GRIPPER_WIDTH = 0.08
GRIPPER = cv.GripperRange(0.0, MAX_GRIPPER_WIDTH)
"""The Franka hand's opening range, which gripper actions span."""
ACTION_WORDING = cv.ActionWording(
    bad_shape="action must have shape {expected} for control_mode={mode!r}, got {got}",
    not_finite="action contains NaN or inf: {values}",
)
"""The task envs' messages for refused actions."""


@dataclass(frozen=True)
class TaskState:
    """What a task's reset sampled, kept for observations, rewards and experts."""

    goal: FloatArray
    object_start: FloatArray | None = None


class Task:
    """Task logic: scene extras, reset distribution, goals. Subclasses fill it in."""

    name: ClassVar[str] = "Task"
    objects: ClassVar[tuple[SceneObject, ...]] = ()
    markers: ClassVar[tuple[Marker, ...]] = (Marker("goal"),)
    max_episode_steps: ClassVar[int] = 100
    success_threshold_m: ClassVar[float] = 0.05
    version: ClassVar[int] = 0
    """The ``-v<k>`` of the registered id; a released version is frozen, a change makes a
    subclass with ``version + 1``."""
    home_q: ClassVar[FloatArray] = HOME_Q
    """Joint positions each episode starts from (plus ±0.02 rad of noise per joint)."""
    workspace_m: ClassVar[tuple[FloatArray, FloatArray] | None] = None
    """Box (low, high corners) that end-effector actions keep the hand in; None: no box in
    the env (the v0 tasks; on a robot the control loop's safety box still applies)."""

    def reset(self, driver: SimulatedPanda, rng: np.random.Generator) -> TaskState:
        """Place objects and sample the goal."""
        raise NotImplementedError

    def achieved_goal(self, driver: SimulatedPanda) -> FloatArray:
        """The point that must reach the goal (end effector or object), (3,)."""
        raise NotImplementedError

    def state_obs(self, driver: SimulatedPanda, task: TaskState) -> dict[str, FloatArray]:
        """Privileged task state for the ``state`` observation mode."""
        return {"goal_pos": task.goal.astype(np.float32)}


class FrankaTaskEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A Franka Panda task in MuJoCo or PyBullet; see the module docstring for modes and
    spaces."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012 (gym API)

    def __init__(
        self,
        task: Task,
        obs_mode: ObsMode = "state",
        control_mode: EnvControlMode = "ee_delta",
        reward_type: RewardType = "dense",
        goal_conditioned: bool = False,
        control_hz: float = 20.0,
        physics_dt: float = 0.002,
        image_size: tuple[int, int] = (128, 128),
        cameras: tuple[str, ...] = ("front", "wrist"),
        depth: bool = False,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (240, 320),
        max_ee_step_m: float = 0.05,
        max_ee_rot_rad: float = 0.2,
        terminate_on_success: bool = False,
        realtime: bool = False,
        backend: str = "mujoco",
    ) -> None:
        _check_choice("backend", backend, BACKENDS)
        _check_choice("obs_mode", obs_mode, ("state", "image"))
        cv.check_control_mode(control_mode)
        _check_choice("reward_type", reward_type, ("dense", "sparse"))
        if goal_conditioned and obs_mode != "state":
            raise ConfigError("goal_conditioned=True needs obs_mode='state'")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task = task
        self.obs_mode, self.control_mode = obs_mode, control_mode
        self.reward_type, self.goal_conditioned = reward_type, goal_conditioned
        self.control_hz, self.render_mode = float(control_hz), render_mode
        self.max_ee_step_m, self.max_ee_rot_rad = max_ee_step_m, max_ee_rot_rad
        self.terminate_on_success = terminate_on_success
        self._render_size = render_size
        self._cameras = cameras if obs_mode == "image" else ()
        requests = [CameraRequest(c, image_size[0], image_size[1], depth) for c in self._cameras]
        scene = SceneConfig(objects=task.objects, markers=task.markers, physics_dt=physics_dt)
        self.backend = backend
        self.driver: SimulatedPanda = make_simulated_panda(
            backend, scene, cameras=tuple(requests), control_hz=control_hz, realtime=realtime
        )
        self.driver.connect()
        self._task_state = TaskState(goal=np.zeros(3))
        self._ee_quat_ref = DOWN_QUAT.copy()
        self.action_space: spaces.Box = self._make_action_space()
        self._action_low = self.action_space.low.astype(np.float64)
        self._action_high = self.action_space.high.astype(np.float64)
        self.observation_space = self._make_observation_space()

    # ------------------------------------------------------------------ spaces
    def _make_action_space(self) -> spaces.Box:
        spec = self.driver.spec
        if self.control_mode in cv.EE_DELTA_MODES:
            return cv.ee_action_space(self.control_mode)
        if self.control_mode == "joint_position":
            return cv.joint_action_space(spec.limits("lower"), spec.limits("upper"), GRIPPER)
        effort = spec.limits("max_effort")
        return cv.joint_action_space(-effort, effort, GRIPPER)

    def _make_observation_space(self) -> spaces.Dict:
        self.driver.reset_robot(self.task.home_q)
        self._task_state = self.task.reset(self.driver, np.random.default_rng(0))
        return cv.observation_space_of(self._observe())

    # ------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        q0 = self.task.home_q + self.np_random.uniform(-0.02, 0.02, size=7)
        self.driver.reset_robot(q0, gripper_width=MAX_GRIPPER_WIDTH)
        self._task_state = self.task.reset(self.driver, self.np_random)
        self.driver.set_marker("goal", self._task_state.goal)
        obs = self._observe()
        return obs, {"is_success": self._is_success()}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        applied = self.driver.command(self.action_to_command(action))
        self.driver.wait(1.0 / self.control_hz)
        obs = self._observe()
        dist = self._goal_distance()
        reward = self._step_reward(obs, dist)
        success = bool(dist < self.task.success_threshold_m)
        info = {"is_success": success, "applied_command": applied.to_dict()}
        terminated = bool(success and self.terminate_on_success)
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.driver.render_frame("front", *self._render_size)

    def close(self) -> None:
        self.driver.disconnect()

    # ------------------------------------------------------------ helpers
    def _check_physics(self) -> None:
        fault = self.driver.physics_fault()
        if fault is not None:
            spec_id = self.spec.id if self.spec is not None else type(self.task).__name__
            raise PhysicsDivergedError(
                f"{spec_id} on {self.driver.backend}: the simulation diverged at "
                f"t={self.driver.now():.3f} s ({fault}); this episode cannot go on: reset "
                "the env (robolearn eval records it as a failed episode)"
            )

    @property
    def goal(self) -> FloatArray:
        return self._task_state.goal

    @property
    def task_state(self) -> TaskState:
        return self._task_state

    def _step_reward(self, obs: dict[str, np.ndarray], dist: float) -> float:
        if self.reward_type == "sparse":
            return -float(dist > self.task.success_threshold_m)
        return -dist

    def _goal_distance(self) -> float:
        diff = self.task.achieved_goal(self.driver) - self._task_state.goal
        return math.sqrt(float(diff @ diff))

    def _is_success(self) -> bool:
        return bool(self._goal_distance() < self.task.success_threshold_m)

    # ---------------------------------------- pieces for external control loops
    # ``step`` is action_to_command → driver.command → driver.wait → observe. A real-time
    # loop (robolearn.control) runs the same pieces itself, with a safety layer in between.
    def observe(self) -> dict[str, np.ndarray]:
        """The current observation, without advancing time."""
        return self._observe()

    def observe_with_state(self) -> tuple[dict[str, np.ndarray], RobotState]:
        """The current observation and the robot state it was built from
        (PhysicsDivergedError if the simulation has blown up)."""
        self._check_physics()
        state = self.driver.read() if self._cameras else self.driver.read_proprio()
        return self._observation_from(state), state

    def state_observation(self, state: RobotState | None = None) -> dict[str, np.ndarray]:
        """Proprioception plus the task's privileged state, whatever ``obs_mode`` is; from
        ``state`` when the caller has just read it (saves a second read)."""
        state = self.driver.read_proprio() if state is None else state
        return {**self._proprio(state), **self._task_obs()}

    def is_success(self) -> bool:
        """Whether the task is solved now."""
        return self._is_success()

    def action_to_command(self, action: np.ndarray) -> Command:
        """Validate ``action`` (ActionError on bad shape/NaN/inf, clip to the space) and map it
        to the driver command it stands for."""
        return self._action_to_command(self.validate_action(action))

    def validate_action(self, action: np.ndarray) -> np.ndarray:
        """``action`` as it will be applied (float64, clipped to the space); ActionError on a
        bad shape, NaN or inf (the shared rule, :func:`conventions.validate_action`)."""
        return cv.validate_action(action, self.action_space, self.control_mode, ACTION_WORDING)

    def hold_action(self) -> np.ndarray:
        """The action that keeps the arm where it is (zero motion in the EE modes)."""
        hold = cv.hold_command(self.driver.joint_positions(), self.driver.gripper_width())
        return self.command_to_action(hold)

    def command_to_action(self, cmd: Command) -> np.ndarray:
        """The action (in this env's action space) that a driver command stands for: the inverse
        of :meth:`action_to_command`, used to record what was actually sent after the safety
        layer. A hold (a joint-position command in an EE mode) maps to zero motion."""
        width = self.driver.gripper_width() if cmd.gripper_width is None else cmd.gripper_width
        if self.control_mode in cv.EE_DELTA_MODES:
            parts = [cv.unit_from_step(cmd.ee_delta_pos, self.max_ee_step_m)]
            if self.control_mode == "ee_delta_pose":
                parts.append(cv.unit_from_step(cmd.ee_delta_rot, self.max_ee_rot_rad))
            action = np.concatenate([*parts, [GRIPPER.unit(width)]])
        elif self.control_mode == "joint_position":
            q = self.driver.joint_positions() if cmd.joint_position is None else cmd.joint_position
            action = cv.joint_action(q, width)
        else:
            tau = np.zeros(7) if cmd.joint_torque is None else cmd.joint_torque
            action = cv.joint_action(tau, width)
        return action.clip(self._action_low, self._action_high).astype(np.float32)

    def _action_to_command(self, action: np.ndarray) -> Command:
        if self.control_mode in cv.EE_DELTA_MODES:
            return self._ee_command(action)
        values, width = cv.split_joint_action(action, self.driver.spec.dof, has_gripper=True)
        if self.control_mode == "joint_position":
            return Command(ControlMode.JOINT_POSITION, joint_position=values, gripper_width=width)
        return Command(ControlMode.JOINT_TORQUE, joint_torque=values, gripper_width=width)

    def _ee_command(self, action: np.ndarray) -> Command:
        ee_pos, state_quat = self.driver.ee_pose()
        dpos = self._keep_in_workspace(ee_pos, cv.ee_step_m(action, self.max_ee_step_m))
        if self.control_mode == "ee_delta":
            drot = quat_error(self._ee_quat_ref, state_quat)
        else:
            drot = cv.ee_rotation_rad(action, self.max_ee_rot_rad)
        width = GRIPPER.width_m(action[-1])
        return Command(
            ControlMode.EE_DELTA, ee_delta_pos=dpos, ee_delta_rot=drot, gripper_width=width
        )

    def _keep_in_workspace(self, ee_pos: FloatArray, dpos: FloatArray) -> FloatArray:
        """``dpos`` shortened so that the target stays in the task's workspace box; a hand
        already outside may move back in or stay, never further out."""
        if self.task.workspace_m is None:
            return dpos
        low, high = self.task.workspace_m
        target = np.clip(ee_pos + dpos, np.minimum(low, ee_pos), np.maximum(high, ee_pos))
        return target - ee_pos

    def _observe(self) -> dict[str, np.ndarray]:
        self._check_physics()
        state = self.driver.read() if self._cameras else self.driver.read_proprio()
        return self._observation_from(state)

    def _observation_from(self, state: RobotState) -> dict[str, np.ndarray]:
        proprio = self._proprio(state)
        if self.goal_conditioned:
            task_obs = self._task_obs()
            task_obs.pop("goal_pos", None)
            flat = np.concatenate([*proprio.values(), *task_obs.values()]).astype(np.float32)
            return {
                "observation": flat,
                "achieved_goal": self.task.achieved_goal(self.driver).astype(np.float32),
                "desired_goal": self._task_state.goal.astype(np.float32),
            }
        if self.obs_mode == "state":
            return {**proprio, **self._task_obs()}
        obs: dict[str, np.ndarray] = dict(proprio)
        for cam in self._cameras:
            obs[cv.rgb_key(cam)] = state.images[cam]
            if cam in state.depths:
                obs[cv.depth_key(cam)] = state.depths[cam][..., None]
        return obs

    def _task_obs(self) -> dict[str, np.ndarray]:
        return self.task.state_obs(self.driver, self._task_state)

    @staticmethod
    def _proprio(state: RobotState) -> dict[str, np.ndarray]:
        return cv.proprio_observation(state)


class GoalFrankaTaskEnv(FrankaTaskEnv):
    """The goal-conditioned variant (``goal_conditioned=True``): adds ``compute_reward``.

    It is a separate class because Stable-Baselines3 treats any env with ``compute_reward``
    as goal-conditioned.
    """

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any
    ) -> np.ndarray:
        """Vectorized over leading dims: dense = -distance, sparse = -(distance > threshold)."""
        dist = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.reward_type == "sparse":
            return -(dist > self.task.success_threshold_m).astype(np.float32)
        return -dist.astype(np.float32)

    def _step_reward(self, obs: dict[str, np.ndarray], dist: float) -> float:
        # Exactly what compute_reward gives for the (float32) goals in the observation.
        return float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
