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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robolearn.core.types import Command, CommandError, ConfigError, ControlMode, RobotState
from robolearn.drivers.base import Driver

Obs = dict[str, np.ndarray]


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
        if control_mode not in ("joint_position", "ee_delta"):
            raise ConfigError(
                f"control_mode must be joint_position or ee_delta, got {control_mode!r}"
            )
        self.driver, self.cameras = driver, list(cameras)
        driver.connect()
        for camera in self.cameras:
            camera.connect()
        spec = driver.spec
        needed = (
            ControlMode.JOINT_POSITION if control_mode == "joint_position" else ControlMode.EE_DELTA
        )
        if needed not in spec.control_modes:
            modes = sorted(m.value for m in spec.control_modes)
            raise ConfigError(f"{spec.name} cannot take {control_mode} actions; it offers {modes}")
        self.control_mode, self.max_ee_step_m = control_mode, max_ee_step_m
        self.max_ee_rot_rad = 0.2  # unused (no rotation actions); teleop scales read it
        self.max_gripper_width_m = spec.gripper.max_width if spec.gripper else 0.08
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
        return self.observe_with_state()[0]

    def observe_with_state(self) -> tuple[Obs, RobotState]:
        state = self.driver.read()
        obs = self.state_observation(state)
        for camera in self.cameras:
            frame = camera.async_read(self.camera_max_age_s)
            obs[f"{camera.name}_rgb"] = frame.rgb
            if frame.depth_m is not None:
                obs[f"{camera.name}_depth"] = frame.depth_m
        return obs, state

    def state_observation(self, state: RobotState | None = None) -> Obs:
        state = self.driver.read() if state is None else state
        return {
            "qpos": state.q.astype(np.float32),
            "qvel": state.dq.astype(np.float32),
            "ee_pos": state.ee_pos.astype(np.float32),
            "ee_quat": state.ee_quat.astype(np.float32),
            "gripper_width": np.array(
                [state.gripper_width] if self.driver.spec.gripper is not None else [], np.float32
            ),  # (1,), or (0,) for a robot without a gripper entry (ALOHA's are joints)
        }

    def is_success(self) -> bool:
        return False

    def action_to_command(self, action: np.ndarray) -> Command:
        arr = np.asarray(action, np.float64)
        if arr.shape != self.action_space.shape or not np.isfinite(arr).all():
            raise CommandError(
                f"action must be finite with shape {self.action_space.shape} for "
                f"{self.control_mode}, got shape {arr.shape}"
            )
        arr = arr.clip(self.action_space.low, self.action_space.high)
        dof, gripper = self.driver.spec.dof, self.driver.spec.gripper
        if self.control_mode == "joint_position":
            width = float(arr[dof]) if gripper is not None else None
            return Command(
                ControlMode.JOINT_POSITION, joint_position=arr[:dof], gripper_width=width
            )
        width = None
        if gripper is not None:
            width = gripper.min_width + (arr[3] + 1.0) / 2.0 * (
                gripper.max_width - gripper.min_width
            )
        return Command(
            ControlMode.EE_DELTA,
            ee_delta_pos=arr[:3] * self.max_ee_step_m,
            ee_delta_rot=np.zeros(3),
            gripper_width=width,
        )

    def command_to_action(self, cmd: Command) -> np.ndarray:
        gripper = self.driver.spec.gripper
        if self.control_mode == "joint_position":
            q = self.driver.read().q if cmd.joint_position is None else cmd.joint_position
            parts = [np.asarray(q)]
            if gripper is not None:
                width = (
                    cmd.gripper_width
                    if cmd.gripper_width is not None
                    else self.driver.read().gripper_width
                )
                parts.append(np.array([width]))
            return np.concatenate(parts).astype(np.float32)
        dpos = np.zeros(3) if cmd.ee_delta_pos is None else np.asarray(cmd.ee_delta_pos)
        parts = [dpos / self.max_ee_step_m]
        if gripper is not None:
            width = cmd.gripper_width if cmd.gripper_width is not None else gripper.max_width
            span = max(gripper.max_width - gripper.min_width, 1e-9)
            parts.append(np.array([2.0 * (width - gripper.min_width) / span - 1.0]))
        return np.concatenate(parts).astype(np.float32)

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
            low, high = spec.limits("lower"), spec.limits("upper")
            if spec.gripper is not None:
                low = np.append(low, spec.gripper.min_width)
                high = np.append(high, spec.gripper.max_width)
            return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        width = 4 if spec.gripper is not None else 3
        return spaces.Box(-1.0, 1.0, (width,), np.float32)

    def _make_observation_space(self) -> spaces.Dict:
        obs = self.observe()
        return spaces.Dict(
            {
                k: spaces.Box(-np.inf, np.inf, v.shape, v.dtype)
                if v.dtype != np.uint8
                else spaces.Box(0, 255, v.shape, np.uint8)
                for k, v in obs.items()
            }
        )
