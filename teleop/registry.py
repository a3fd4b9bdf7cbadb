"""Teleop devices by name: ``make_device("keyboard")``, ``make_device("scripted", env=env)``,
``make_device("aloha_leaders", left_port=..., right_port=...)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robolearn.core.types import ConfigError, RobotSpec
from robolearn.teleop.base import TeleopDevice
from robolearn.teleop.gamepad import GamepadTeleop
from robolearn.teleop.keyboard import KeyboardTeleop
from robolearn.teleop.scripted import ScriptedTeleop
from robolearn.teleop.spacemouse import SpaceMouseTeleop


def _scripted(env: Any = None, **kwargs: Any) -> ScriptedTeleop:
    if env is None or kwargs:
        raise ConfigError("make_device('scripted') takes exactly one argument: env=<task env>")
    return ScriptedTeleop.from_env(env)


def _leader_arm(**kwargs: Any) -> TeleopDevice:
    from robolearn.teleop.leader_follower import (
        LeaderFollowerTeleop,  # loads dynamixel_sdk only here
    )

    if kwargs.get("calibration_dir") is not None:
        kwargs["calibration_dir"] = Path(kwargs["calibration_dir"])
    return LeaderFollowerTeleop.from_config(**kwargs)


def _aloha_leaders(
    left_port: str | None = None,
    right_port: str | None = None,
    calibration_dir: str | Path | None = None,
    follower_spec: RobotSpec | None = None,
) -> TeleopDevice:
    from robolearn.drivers.dynamixel.configs import ALOHA
    from robolearn.teleop.leader_follower import (
        BimanualLeaderFollower,  # loads dynamixel_sdk only here
    )

    directory = Path(calibration_dir) if calibration_dir is not None else None
    return BimanualLeaderFollower.from_config(
        ALOHA, left_port, right_port, calibration_dir=directory, follower_spec=follower_spec
    )


DEVICES: dict[str, Callable[..., TeleopDevice]] = {
    "keyboard": KeyboardTeleop,
    "spacemouse": SpaceMouseTeleop,
    "gamepad": GamepadTeleop,
    "scripted": _scripted,
    "leader_arm": _leader_arm,
    "aloha_leaders": _aloha_leaders,
}
"""Device name → factory. ``leader_arm`` takes ``leader=<arm config name>, port=<serial port>``
(see :meth:`robolearn.teleop.leader_follower.LeaderFollowerTeleop.from_config`); ``aloha_leaders``
(ALOHA's two WidowX leaders, 14 targets for the ``aloha`` robot) takes ``left_port``,
``right_port`` (default: ALOHA's udev names), ``calibration_dir`` and ``follower_spec``
(see :meth:`robolearn.teleop.leader_follower.BimanualLeaderFollower.from_config`)."""


def device_names() -> list[str]:
    """Every registered device name, sorted."""
    return sorted(DEVICES)


def make_device(name: str, **kwargs: Any) -> TeleopDevice:
    """A new, unconnected device; ``kwargs`` go to its constructor (see each class).

    :class:`ConfigError` for an unknown name or arguments the device does not take.
    """
    factory = DEVICES.get(name)
    if factory is None:
        raise ConfigError(f"unknown teleop device {name!r}; known: {', '.join(device_names())}")
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for teleop device {name!r}: {exc}") from exc
