"""Teleoperation devices producing end-effector deltas or joint targets plus gripper.

* :mod:`robolearn.teleop.base` — the contract: :class:`TeleopDevice` (``connect``/``disconnect``, a
  context manager, non-blocking ``read(obs) -> TeleopCommand``, ``reset``),
  :class:`TeleopCommand` and the session :class:`TeleopEvents` (save, re-record, stop,
  intervention);
* :mod:`robolearn.teleop.actions` — commands ⇄ task actions (:func:`to_action`), and
  :class:`TeleopActionSource`, a device as the recorder's action source;
* :mod:`robolearn.teleop.keyboard` — a plain terminal (no display), sharing the terminal with the
  keyboard e-stop;
* :mod:`robolearn.teleop.spacemouse` — 3Dconnexion SpaceMouse over raw HID reports;
* :mod:`robolearn.teleop.gamepad` — Linux evdev gamepads, read with the standard library;
* :mod:`robolearn.teleop.scripted` — the scripted experts of :mod:`robolearn.envs.experts` as
  devices;
* :mod:`robolearn.teleop.registry` — :func:`make_device` by name.

* :mod:`robolearn.teleop.leader_follower` — a Dynamixel leader arm mirrored onto a follower (it
  fills
  ``joint_targets``; ALOHA's bimanual pair too).
Importing this package imports neither MuJoCo nor any device library.
"""

from robolearn.teleop.actions import ActionScale, TeleopActionSource, from_action, to_action
from robolearn.teleop.base import TeleopCommand, TeleopDevice, TeleopEvents
from robolearn.teleop.gamepad import GamepadTeleop
from robolearn.teleop.keyboard import KeyboardTeleop
from robolearn.teleop.registry import device_names, make_device
from robolearn.teleop.scripted import ScriptedTeleop
from robolearn.teleop.spacemouse import SpaceMouseTeleop

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
