"""Teleop commands ⇄ task actions, in one place.

The task environments (:mod:`robolearn.envs.base`) take actions in their ``control_mode``:

* ``"ee_delta"`` — ``[-1, 1]^4``: xyz delta / ``max_ee_step_m``, gripper (-1 closed, +1 open);
  the task holds the gripper pointing down, so a command's rotation is ignored;
* ``"ee_delta_pose"`` — ``[-1, 1]^7``: xyz delta / ``max_ee_step_m``, axis-angle delta /
  ``max_ee_rot_rad``, gripper;
* ``"joint_position"`` — joint targets in rad, then the gripper width in m.

:func:`to_action` maps a :class:`~robolearn.teleop.base.TeleopCommand` to such an action, clipping
each
entry to the action space (the env's own rule: per axis, not by norm); :func:`from_action`
is its inverse, used to wrap scripted experts as devices. :class:`TeleopActionSource` joins
a device to the recorder's action-source protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from robolearn.core.types import CommandError, ConfigError
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice, TeleopEvents

EE_MODES: tuple[str, ...] = ("ee_delta", "ee_delta_pose")
ACTION_MODES: tuple[str, ...] = (*EE_MODES, "joint_position")
DEFAULT_MAX_GRIPPER_WIDTH_M = 0.08
"""The Franka hand's opening, the tasks' ``MAX_GRIPPER_WIDTH``."""


@dataclass(frozen=True)
class ActionScale:
    """How a task scales its actions: the mode and the size of a full-scale (±1) step."""

    control_mode: str
    max_ee_step_m: float = 0.05
    """Position delta of a ±1 action entry, m (the tasks' default)."""
    max_ee_rot_rad: float = 0.2
    """Rotation delta of a ±1 action entry, rad (the tasks' default)."""
    max_gripper_width_m: float = DEFAULT_MAX_GRIPPER_WIDTH_M
    """Gripper width of a fully open gripper, m (joint modes)."""
    has_gripper: bool = True
    """Whether a ``joint_position`` action ends with a gripper width; ``False`` for a robot
    whose grippers are joints (ALOHA's 14 targets hold each gripper's opening fraction)."""

    def __post_init__(self) -> None:
        if self.control_mode not in ACTION_MODES:
            raise ConfigError(
                f"teleop drives control modes {', '.join(ACTION_MODES)}, not {self.control_mode!r}"
            )
        for name in ("max_ee_step_m", "max_ee_rot_rad", "max_gripper_width_m"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    @classmethod
    def of_env(cls, env: Any) -> ActionScale:
        """The scale of a robolearn task env (wrapped or not)."""
        u = env.unwrapped
        width = getattr(u, "max_gripper_width_m", DEFAULT_MAX_GRIPPER_WIDTH_M)  # a robot env's own
        driver = getattr(u, "driver", None)  # a robot env's driver: its spec says
        has_gripper = driver is None or driver.spec.gripper is not None
        return cls(u.control_mode, u.max_ee_step_m, u.max_ee_rot_rad, width, has_gripper)


def to_action(cmd: TeleopCommand, scale: ActionScale) -> NDArray[np.float32]:
    """The task action (float32) that ``cmd`` stands for, clipped to the action space.

    :class:`CommandError` when the command's kind does not fit the mode: joint targets for an
    end-effector mode, or an end-effector delta for ``joint_position`` (that needs IK, which
    is the driver's job: record such devices in an ``ee_delta`` task).
    """
    if scale.control_mode == "joint_position":
        if cmd.joint_targets is None:
            raise CommandError(
                "control_mode 'joint_position' needs joint targets, but the device gives "
                "end-effector deltas; use an 'ee_delta' or 'ee_delta_pose' task"
            )
        if not scale.has_gripper:
            return np.asarray(cmd.joint_targets, np.float32)
        width = cmd.gripper * scale.max_gripper_width_m
        return np.append(cmd.joint_targets, width).astype(np.float32)
    if cmd.joint_targets is not None:
        raise CommandError(
            f"control_mode {scale.control_mode!r} needs end-effector deltas, but the device "
            "gives joint targets; use a 'joint_position' task"
        )
    parts = [cmd.ee_delta_pos / scale.max_ee_step_m]
    if scale.control_mode == "ee_delta_pose":
        parts.append(cmd.ee_delta_rot / scale.max_ee_rot_rad)
    parts.append(np.array([2.0 * cmd.gripper - 1.0]))
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


def from_action(
    action: np.ndarray, scale: ActionScale, events: TeleopEvents | None = None
) -> TeleopCommand:
    """The command a task action stands for (the inverse of :func:`to_action` inside the
    action space); :class:`CommandError` for a wrong shape or non-finite entries."""
    arr = np.asarray(action, dtype=np.float64).reshape(-1)
    events = events or TeleopEvents()
    if scale.control_mode == "joint_position":
        _check_size(arr, None, scale.control_mode)
        if not scale.has_gripper:
            return TeleopCommand(joint_targets=arr, events=events)
        grip = float(np.clip(arr[-1] / scale.max_gripper_width_m, 0.0, 1.0))
        return TeleopCommand(joint_targets=arr[:-1], gripper=grip, events=events)
    pose = scale.control_mode == "ee_delta_pose"
    _check_size(arr, 7 if pose else 4, scale.control_mode)
    arr = np.clip(arr, -1.0, 1.0)
    rot = arr[3:6] * scale.max_ee_rot_rad if pose else np.zeros(3)
    return TeleopCommand(
        ee_delta_pos=arr[:3] * scale.max_ee_step_m,
        ee_delta_rot=rot,
        gripper=float((arr[-1] + 1.0) / 2.0),
        events=events,
    )


def _check_size(arr: np.ndarray, size: int | None, mode: str) -> None:
    if (size is not None and arr.size != size) or arr.size < 2:
        raise CommandError(f"an action of control_mode {mode!r} cannot have {arr.size} entries")
    if not np.isfinite(arr).all():
        raise CommandError(f"action contains NaN or inf: {arr.tolist()}")


class TeleopActionSource:
    """A device as the recorder's action source: ``reset(seed)`` and
    ``next_action(obs) -> (action, event names)``.

    ``last_command`` keeps the latest command (for displays and logs).
    """

    def __init__(self, device: TeleopDevice, scale: ActionScale) -> None:
        self.device, self.scale = device, scale
        self.last_command: TeleopCommand | None = None

    @classmethod
    def for_env(cls, device: TeleopDevice, env: Any) -> TeleopActionSource:
        """A source producing actions in ``env``'s control mode and scale."""
        return cls(device, ActionScale.of_env(env))

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: the device forgets latched events and opens the gripper."""
        self.device.reset(seed)

    def next_action(self, obs: Obs) -> tuple[NDArray[np.float32], frozenset[str]]:
        """The task action for the device's latest command, and the session events set."""
        cmd = self.device.read(obs)
        self.last_command = cmd
        return to_action(cmd, self.scale), cmd.events.names()
