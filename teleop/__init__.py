"""Teleoperation devices producing end-effector deltas or joint targets plus gripper.

* :mod:`teleop.base` — the contract: :class:`TeleopDevice` (``connect``/``disconnect``, a
  context manager, non-blocking ``read(obs) -> TeleopCommand``, ``reset``),
  :class:`TeleopCommand` and the session :class:`TeleopEvents` (save, re-record, stop,
  intervention);
* :mod:`teleop.actions` — commands ⇄ task actions (:func:`to_action`), and
  :class:`TeleopActionSource`, a device as the recorder's action source;
* :mod:`teleop.keyboard` — a plain terminal (no display), sharing the terminal with the
  keyboard e-stop;
* :mod:`teleop.spacemouse` — 3Dconnexion SpaceMouse over raw HID reports;
* :mod:`teleop.gamepad` — Linux evdev gamepads, read with the standard library;
* :mod:`teleop.scripted` — the scripted experts of :mod:`envs.experts` as devices;
* :mod:`teleop.registry` — :func:`make_device` by name.

* :mod:`teleop.leader_follower` — a Dynamixel leader arm mirrored onto a follower (it fills
  ``joint_targets``; ALOHA's bimanual pair too).
Importing this package imports neither MuJoCo nor any device library.
"""

from teleop.actions import ActionScale, TeleopActionSource, from_action, to_action
from teleop.base import TeleopCommand, TeleopDevice, TeleopEvents
from teleop.gamepad import GamepadTeleop
from teleop.keyboard import KeyboardTeleop
from teleop.registry import device_names, make_device
from teleop.scripted import ScriptedTeleop
from teleop.spacemouse import SpaceMouseTeleop

__all__ = [
    "ActionScale",
    "GamepadTeleop",
    "KeyboardTeleop",
    "ScriptedTeleop",
    "SpaceMouseTeleop",
    "TeleopActionSource",
    "TeleopCommand",
    "TeleopDevice",
    "TeleopEvents",
    "device_names",
    "from_action",
    "make_device",
    "to_action",
]
