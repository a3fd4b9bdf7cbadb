"""A Gymnasium env over any driver (a real arm or its emulator) plus cameras, with the same
observation and action conventions as the simulated tasks, so that ``record``, ``deploy``
and policies run on hardware unchanged.

Observations (dict): ``qpos``, ``qvel``, ``ee_pos``, ``ee_quat``, ``gripper_width`` and, per
camera, ``<name>_rgb`` (H, W, 3) uint8 and ``<name>_depth`` (H, W) float32 metres. Actions:

* ``joint_position`` — absolute joint targets (rad) followed by the gripper width (m) when
  the arm has a gripper; the space is the joint limits;
* ``ee_delta`` — (dx, dy, dz, gripper) in [-1, 1]: a position step of up to ``max_ee_step_m``
  and the gripper from closed (-1) to open (+1), for drivers with EE_DELTA control.

There is no reward and no success test on hardware (``is_success`` is False; evaluation on a
real arm asks the operator). ``reset`` leaves the arm where it is unless ``home_q`` is given,
in which case it moves there at ``home_speed_rad_s`` before the episode starts.

The action spaces, validation and clipping, end-effector scaling, gripper mapping and
observation keys come from :mod:`robolearn.envs.conventions`, as for the simulated tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robolearn.core.types import Command, ConfigError, ControlMode, FloatArray, RobotState
from robolearn.drivers.base import Driver
from robolearn.envs import conventions as cv

Obs = dict[str, np.ndarray]
ROBOT_CONTROL_MODES: tuple[str, ...] = ("joint_position", "ee_delta")
"""The control modes an env over a driver offers (a subset of the tasks' modes)."""
ACTION_WORDING = cv.ActionWording(
    bad_shape="action must be finite with shape {expected} for {mode}, got shape {got}",
    not_finite="action must be finite with shape {expected} for {mode}, got shape {got}",
)
"""The robot env's message for refused actions (one for every problem)."""


@dataclass(frozen=True)
class RobotTask:
    """What the runner and recorder need from a task on hardware."""

    name: str = "teleop"
    max_episode_steps: int = 400


class RobotEnv(gym.Env[Obs, np.ndarray]):
    """A driver (and cameras) as a Gymnasium env; see the module docstring."""

    metadata = {"render_modes": []}  # noqa: RUF012 (gym API)

    def __init__(
        self,
        driver: Driver,
        cameras: Sequence[Any] = (),
        control_mode: str = "joint_position",
        control_hz: float | None = None,
        episode_seconds: float = 20.0,
        max_ee_step_m: float = 0.01,
        home_q: Sequence[float] | None = None,
        home_speed_rad_s: float = 0.3,
        camera_max_age_s: float = 0.2,
    ) -> None:
        if control_mode not in ROBOT_CONTROL_MODES:
            raise ConfigError(
                f"control_mode must be joint_position or ee_delta, got {control_mode!r}"
            )
        self.driver, self.cameras = driver, list(cameras)
        driver.connect()
        for camera in self.cameras:
            camera.connect()
        spec = driver.spec
        needed = cv.DRIVER_MODES[control_mode]
        if needed not in spec.control_modes:
            modes = sorted(m.value for m in spec.control_modes)
            raise ConfigError(f"{spec.name} cannot take {control_mode} actions; it offers {modes}")
        self.control_mode, self.max_ee_step_m = control_mode, max_ee_step_m
        self.max_ee_rot_rad = 0.2  # unused (no rotation actions); teleop scales read it
        self.max_gripper_width_m = spec.gripper.max_width if spec.gripper else 0.08
        self.gripper = cv.GripperRange.of(spec.gripper)
        self.control_hz = float(control_hz or spec.control_hz)
        self.episode_seconds = float(episode_seconds)
        self.task = RobotTask(max_episode_steps=round(episode_seconds * self.control_hz))
        self.home_q = None if home_q is None else np.asarray(home_q, np.float64)
        self.home_speed_rad_s, self.camera_max_age_s = home_speed_rad_s, camera_max_age_s
        self.action_space: spaces.Box = self._make_action_space()
        self.observation_space = self._make_observation_space()  # type: ignore[assignment]
        self._steps = 0

    # -- the pieces the runner and recorder call ------------------------------------------

    def observe(self) -> Obs:
        """The current observation: proprioception plus the latest camera frames."""
        return self.observe_with_state()[0]

    def observe_with_state(self) -> tuple[Obs, RobotState]:
        """The current observation and the robot state it was built from."""
        state = self.driver.read()
        obs = self.state_observation(state)
        for camera in self.cameras:
            frame = camera.async_read(self.camera_max_age_s)
            obs[cv.rgb_key(camera.name)] = frame.rgb
            if frame.depth_m is not None:
                obs[cv.depth_key(camera.name)] = frame.depth_m
        return obs, state

    def state_observation(self, state: RobotState | None = None) -> Obs:
        """Proprioception (``gripper_width`` is (0,) for a robot without a gripper entry,
        e.g. ALOHA, whose grippers are joints); from ``state`` when given."""
        state = self.driver.read() if state is None else state
        return cv.proprio_observation(state, has_gripper=self.gripper is not None)

    def is_success(self) -> bool:
        """Always False: there is no success test on hardware."""
        return False

    def validate_action(self, action: np.ndarray) -> FloatArray:
        """``action`` as it will be applied (float64, clipped to the space); ActionError (a
        CommandError) on a bad shape, NaN or inf."""
        return cv.validate_action(action, self.action_space, self.control_mode, ACTION_WORDING)

    def hold_action(self) -> np.ndarray:
        """The action that keeps the arm where it is (zero motion in ``ee_delta``)."""
        state = self.driver.read()
        width = state.gripper_width if self.gripper is not None else None
        return self.command_to_action(cv.hold_command(state.q, width))

    def action_to_command(self, action: np.ndarray) -> Command:
        """Validate ``action`` (see :meth:`validate_action`) and map it to a driver command."""
        arr = self.validate_action(action)
        if self.control_mode == "joint_position":
            q, width = cv.split_joint_action(arr, self.driver.spec.dof, self.gripper is not None)
            return Command(ControlMode.JOINT_POSITION, joint_position=q, gripper_width=width)
        width = None if self.gripper is None else self.gripper.width_m(arr[3])
        return Command(
            ControlMode.EE_DELTA,
            ee_delta_pos=cv.ee_step_m(arr, self.max_ee_step_m),
            ee_delta_rot=np.zeros(3),
            gripper_width=width,
        )

    def command_to_action(self, cmd: Command) -> np.ndarray:
        """The action a driver command stands for: the inverse of :meth:`action_to_command`."""
        if self.control_mode == "joint_position":
            return self._joint_action_of(cmd)
        parts = [cv.unit_from_step(cmd.ee_delta_pos, self.max_ee_step_m)]
        if self.gripper is not None:
            width = cmd.gripper_width if cmd.gripper_width is not None else self.gripper.max_width_m
            parts.append(np.array([self.gripper.unit(width)]))
        return np.concatenate(parts).astype(np.float32)

    def _joint_action_of(self, cmd: Command) -> np.ndarray:
        q = self.driver.read().q if cmd.joint_position is None else cmd.joint_position
        width = None
        if self.gripper is not None:
            given = cmd.gripper_width
            width = given if given is not None else self.driver.read().gripper_width
        return cv.joint_action(q, width).astype(np.float32)

    # -- gymnasium -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        super().reset(seed=seed)
        if self.home_q is not None:
            self._go_home()
        self._steps = 0
        return self.observe(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        applied = self.driver.command(self.action_to_command(action))
        self.driver.wait(1.0 / self.control_hz)
        self._steps += 1
        truncated = self._steps >= self.task.max_episode_steps
        info = {"is_success": False, "applied_command": applied.to_dict()}
        return self.observe(), 0.0, False, truncated, info

    def close(self) -> None:
        for camera in self.cameras:
            camera.disconnect()
        self.driver.disconnect()

    # -- helpers ---------------------------------------------------------------------------

    def _go_home(self) -> None:
        assert self.home_q is not None
        start = self.driver.read().q
        step = self.home_speed_rad_s / self.control_hz
        ticks = int(np.ceil(np.abs(self.home_q - start).max() / max(step, 1e-9)))
        for i in range(1, ticks + 1):
            target = start + (self.home_q - start) * i / ticks
            self.driver.command(Command(ControlMode.JOINT_POSITION, joint_position=target))
            self.driver.wait(1.0 / self.control_hz)

    def _make_action_space(self) -> spaces.Box:
        spec = self.driver.spec
        if self.control_mode == "joint_position":
            return cv.joint_action_space(spec.limits("lower"), spec.limits("upper"), self.gripper)
        return cv.ee_action_space(self.control_mode, has_gripper=self.gripper is not None)

    def _make_observation_space(self) -> spaces.Dict:
        return cv.observation_space_of(self.observe())
