"""Teleop devices by name: ``make_device("keyboard")``, ``make_device("scripted", env=env)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robolearn.types import ConfigError
from teleop.base import TeleopDevice
from teleop.gamepad import GamepadTeleop
from teleop.keyboard import KeyboardTeleop
from teleop.scripted import ScriptedTeleop
from teleop.spacemouse import SpaceMouseTeleop


def _scripted(env: Any = None, **kwargs: Any) -> ScriptedTeleop:
    if env is None or kwargs:
        raise ConfigError("make_device('scripted') takes exactly one argument: env=<task env>")
    return ScriptedTeleop.from_env(env)


def _leader_arm(**kwargs: Any) -> TeleopDevice:
    from pathlib import Path

    from teleop.leader_follower import LeaderFollowerTeleop  # loads dynamixel_sdk only here

    if kwargs.get("calibration_dir") is not None:
        kwargs["calibration_dir"] = Path(kwargs["calibration_dir"])
    return LeaderFollowerTeleop.from_config(**kwargs)


DEVICES: dict[str, Callable[..., TeleopDevice]] = {
    "keyboard": KeyboardTeleop,
    "spacemouse": SpaceMouseTeleop,
    "gamepad": GamepadTeleop,
    "scripted": _scripted,
    "leader_arm": _leader_arm,
}
"""Device name → factory. ``leader_arm`` takes ``leader=<arm config name>, port=<serial port>``
(see :meth:`teleop.leader_follower.LeaderFollowerTeleop.from_config`)."""


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
