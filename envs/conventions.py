"""The action and observation rules that every robolearn env follows, in one place.

The simulated tasks (:class:`robolearn.envs.base.FrankaTaskEnv`) and the env over a real arm
(:class:`robolearn.envs.robot_env.RobotEnv`) both take their rules from here, so that a
policy, a recorder or a wrapper sees the same conventions on either:

* control modes — the env-level names and the driver :class:`ControlMode` each one sends;
* action spaces — ``[-1, 1]^n`` for end-effector deltas, joint bounds (plus the gripper's
  width range) for joint modes, always float32;
* action validation — a wrong shape, NaN or inf raises :class:`ActionError` (a
  :class:`CommandError`); finite values outside the space are clipped to it;
* end-effector deltas — a unit action times ``max_ee_step_m`` (position) or
  ``max_ee_rot_rad`` (rotation);
* the gripper — a unit action maps linearly from closed (-1) to open (+1) over the
  gripper's width range, and back;
* observations — the proprioception keys, the camera keys, and a space built from a sample
  (uint8 images in [0, 255], everything else unbounded in its own dtype);
* holding still — a joint-position command at the current joints and gripper width, which
  is what wrappers such as :class:`robolearn.envs.wrappers.ActionLatency` queue.

:func:`conventions_of` finds these public pieces on any env (wrapped or not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robolearn.core.types import (
    Command,
    CommandError,
    ConfigError,
    ControlMode,
    FloatArray,
    GripperSpec,
    RobotState,
)

EnvControlMode = Literal["ee_delta", "ee_delta_pose", "joint_position", "joint_torque"]
CONTROL_MODES: tuple[str, ...] = ("ee_delta", "ee_delta_pose", "joint_position", "joint_torque")
EE_DELTA_MODES: tuple[str, ...] = ("ee_delta", "ee_delta_pose")
"""Modes whose actions are unit end-effector deltas followed by a unit gripper entry."""
EE_MOTION_SIZE: dict[str, int] = {"ee_delta": 3, "ee_delta_pose": 6}
"""Motion entries (before the gripper entry) of each end-effector mode."""
DRIVER_MODES: dict[str, ControlMode] = {
    "ee_delta": ControlMode.EE_DELTA,
    "ee_delta_pose": ControlMode.EE_DELTA,
    "joint_position": ControlMode.JOINT_POSITION,
    "joint_torque": ControlMode.JOINT_TORQUE,
}
"""The driver control mode each env control mode commands."""
PROPRIO_KEYS: tuple[str, ...] = ("qpos", "qvel", "ee_pos", "ee_quat", "gripper_width")
"""The proprioception entries of every observation dict, in this order."""


class ActionError(CommandError):
    """An action is malformed: wrong shape, NaN or inf."""


# ---------------------------------------------------------------------------- the gripper
@dataclass(frozen=True)
class GripperRange:
    """The opening range a gripper action spans, in metres."""

    min_width_m: float
    max_width_m: float

    @classmethod
    def of(cls, gripper: GripperSpec | None) -> GripperRange | None:
        """The range of a driver's gripper; None for an arm without a gripper entry."""
        return None if gripper is None else cls(gripper.min_width, gripper.max_width)

    def width_m(self, unit: float) -> float:
        """The width a unit action stands for: -1 closed, +1 open, linear in between."""
        span_m = self.max_width_m - self.min_width_m
        return float(self.min_width_m + (unit + 1.0) / 2.0 * span_m)

    def unit(self, width_m: float) -> float:
        """The unit action for ``width_m``: the inverse of :meth:`width_m`."""
        span_m = max(self.max_width_m - self.min_width_m, 1e-9)
        return float(2.0 * (width_m - self.min_width_m) / span_m - 1.0)


# ---------------------------------------------------------------------------- spaces
def check_control_mode(control_mode: str, allowed: tuple[str, ...] = CONTROL_MODES) -> None:
    """ConfigError unless ``control_mode`` is one of ``allowed`` (all known modes)."""
    if control_mode not in allowed:
        raise ConfigError(f"control_mode must be one of {', '.join(allowed)}; got {control_mode!r}")


def ee_action_space(control_mode: str, has_gripper: bool = True) -> spaces.Box:
    """``[-1, 1]^n``: the mode's motion entries, then the gripper entry when there is one."""
    size = EE_MOTION_SIZE[control_mode] + int(has_gripper)
    return spaces.Box(-1.0, 1.0, (size,), np.float32)


def joint_action_space(
    low: FloatArray, high: FloatArray, gripper: GripperRange | None
) -> spaces.Box:
    """Per-joint bounds (rad, or N·m) followed by the gripper width range (m) if any."""
    if gripper is not None:
        low, high = np.append(low, gripper.min_width_m), np.append(high, gripper.max_width_m)
    return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)


# ---------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class ActionWording:
    """How an env words a refused action; ``{expected}``, ``{got}``, ``{mode}`` and
    ``{values}`` are filled in (each env keeps the messages it was released with)."""

    bad_shape: str
    not_finite: str


def validate_action(
    action: Any, space: spaces.Box, control_mode: str, wording: ActionWording
) -> FloatArray:
    """``action`` as float64 clipped to ``space``; ActionError for a wrong shape, NaN or inf."""
    arr = np.asarray(action, dtype=np.float64)
    fields = {"expected": space.shape, "got": arr.shape, "mode": control_mode}
    if arr.shape != space.shape:
        raise ActionError(wording.bad_shape.format(**fields, values=None))
    if not np.isfinite(arr).all():
        raise ActionError(wording.not_finite.format(**fields, values=arr.tolist()))
    return arr.clip(space.low.astype(np.float64), space.high.astype(np.float64))


# ---------------------------------------------------------------------------- mapping
def ee_step_m(action: FloatArray, max_ee_step_m: float) -> FloatArray:
    """The position step (m) of an end-effector action: its first three entries scaled."""
    return action[:3] * max_ee_step_m


def ee_rotation_rad(action: FloatArray, max_ee_rot_rad: float) -> FloatArray:
    """The axis-angle step (rad) of an ``ee_delta_pose`` action: entries 3-5 scaled."""
    return action[3:6] * max_ee_rot_rad


def unit_from_step(step: Any | None, max_step: float) -> FloatArray:
    """The unit action entries for a position or rotation step (zero when None)."""
    return np.asarray(np.zeros(3) if step is None else step) / max_step


def split_joint_action(action: FloatArray, dof: int, has_gripper: bool) -> tuple[FloatArray, Any]:
    """(per-joint values, gripper width in m or None) of a joint-mode action."""
    width_m = float(action[dof]) if has_gripper else None
    return action[:dof], width_m


def joint_action(values: Any, width_m: float | None) -> FloatArray:
    """A joint-mode action: the per-joint values followed by the gripper width, if any."""
    parts = [np.asarray(values, np.float64).ravel()]
    if width_m is not None:
        parts.append(np.array([width_m], np.float64))
    return np.concatenate(parts)


def hold_command(q: FloatArray, gripper_width_m: float | None) -> Command:
    """The command that keeps the arm where it is: its joints and gripper as they are."""
    return Command(ControlMode.JOINT_POSITION, joint_position=q, gripper_width=gripper_width_m)


# ---------------------------------------------------------------------------- observations
def proprio_observation(state: RobotState, has_gripper: bool = True) -> dict[str, np.ndarray]:
    """The :data:`PROPRIO_KEYS` of ``state`` as float32; ``gripper_width`` is (1,), or (0,)
    for a robot without a gripper entry."""
    width = [state.gripper_width] if has_gripper else []
    return {
        "qpos": state.q.astype(np.float32),
        "qvel": state.dq.astype(np.float32),
        "ee_pos": state.ee_pos.astype(np.float32),
        "ee_quat": state.ee_quat.astype(np.float32),
        "gripper_width": np.array(width, np.float32),
    }


def rgb_key(camera: str) -> str:
    """The observation key of a camera's colour image, (H, W, 3) uint8."""
    return f"{camera}_rgb"


def depth_key(camera: str) -> str:
    """The observation key of a camera's depth image, float32 metres."""
    return f"{camera}_depth"


def observation_space_of(sample: Mapping[str, np.ndarray]) -> spaces.Dict:
    """The space of observations like ``sample``: uint8 images in [0, 255], every other
    entry unbounded in its own dtype."""
    return spaces.Dict({key: _box_like(value) for key, value in sample.items()})


def _box_like(value: np.ndarray) -> spaces.Box:
    if value.dtype == np.uint8:
        return spaces.Box(0, 255, value.shape, np.uint8)
    return spaces.Box(-np.inf, np.inf, value.shape, value.dtype)


# ---------------------------------------------------------------------------- for wrappers
@runtime_checkable
class ActionConventions(Protocol):
    """The public action pieces every robolearn env offers (wrappers build on them)."""

    def validate_action(self, action: Any) -> FloatArray:
        """The action as it will be applied (clipped); ActionError when malformed."""
        ...

    def hold_action(self) -> np.ndarray:
        """The action that keeps the robot where it is now."""
        ...


def conventions_of(env: gym.Env[Any, Any]) -> ActionConventions:
    """The robolearn env under ``env``'s wrappers; ConfigError for any other env."""
    base = env.unwrapped
    if not isinstance(base, ActionConventions):
        raise ConfigError(
            f"{type(base).__name__} is not a robolearn env (it lacks validate_action and "
            "hold_action)"
        )
    return base
