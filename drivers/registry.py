"""Robots by name, for the ``--robot`` flag of ``record`` and ``deploy``.

``open_robot(name, options)`` is a context manager yielding a connected-on-demand driver and
tearing down whatever it started (an emulator, a virtual bus). Options come from the CLI as
``--robot-option KEY=VALUE``:

=====================  =======================================================================
name                   what, and its options
=====================  =======================================================================
``franka``             a Franka arm through franky: ``host`` (FCI address), ``model`` fr3|panda
``franka-sim``         franky-sim started on loopback (no robot needed), then ``franka`` on it
``<arm>``              a Dynamixel arm (``robolearn calibrate`` names them: koch-follower,
                       viperx-300s, aloha-left-follower...): ``port`` (required),
                       ``calibration_dir``
``virtual:<arm>``      that arm's servos on a virtual Dynamixel bus (a pseudo-terminal), with
                       a symmetric calibration — to try a setup without hardware
=====================  =======================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from drivers.base import Driver
from robolearn.types import ConfigError


def robot_names() -> list[str]:
    """Every name ``open_robot`` accepts (``virtual:<arm>`` for each Dynamixel arm)."""
    from drivers.dynamixel.configs import ARMS

    return ["franka", "franka-sim", *ARMS, *(f"virtual:{a}" for a in ARMS)]


@contextlib.contextmanager
def open_robot(name: str, options: Mapping[str, str] | None = None) -> Iterator[Driver]:
    """The driver called ``name`` (see the module docstring); emulators stop on exit."""
    opts = dict(options or {})
    if name == "franka":
        yield _franka(opts)
    elif name == "franka-sim":
        from drivers.franka import FrankaDriver, FrankySim

        with FrankySim() as sim:
            yield FrankaDriver(sim.driver_config())
    elif name.startswith("virtual:"):
        with _virtual_arm(name.split(":", 1)[1]) as driver:
            yield driver
    else:
        yield _dynamixel(name, opts)


def _franka(opts: dict[str, str]) -> Driver:
    from drivers.franka import FrankaConfig, FrankaDriver

    if "host" not in opts:
        raise ConfigError("--robot franka needs --robot-option host=<FCI address, e.g. 172.16.0.2>")
    return FrankaDriver(FrankaConfig(host=opts["host"], model=opts.get("model", "fr3")))  # type: ignore[arg-type]


def _dynamixel(name: str, opts: dict[str, str]) -> Driver:
    from drivers.dynamixel.arm import DynamixelArm
    from drivers.dynamixel.configs import ARMS, arm_config

    if name not in ARMS:
        raise ConfigError(f"unknown robot {name!r}; robots: {', '.join(robot_names())}")
    if "port" not in opts:
        raise ConfigError(
            f"--robot {name} needs --robot-option port=<serial port> "
            "(robolearn find-ports lists them)"
        )
    directory = opts.get("calibration_dir")
    return DynamixelArm(
        arm_config(name), opts["port"], calibration_dir=Path(directory) if directory else None
    )


@contextlib.contextmanager
def _virtual_arm(arm: str) -> Iterator[Driver]:
    from drivers.dynamixel.arm import DynamixelArm
    from drivers.dynamixel.calibration import symmetric_calibration
    from drivers.dynamixel.configs import arm_config
    from drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm

    config = arm_config(arm)
    with VirtualDynamixelBus(servos_for_arm(arm)) as port:
        yield DynamixelArm(config, port, calibration=symmetric_calibration(config))
