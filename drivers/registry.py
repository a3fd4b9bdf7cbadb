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
``aloha``              ALOHA's two ViperX followers as one 14-DoF robot: ``left_port``,
                       ``right_port`` (default: ALOHA's udev names), ``calibration_dir``
=====================  =======================================================================

Cameras come from ``--camera NAME=KIND:SOURCE[@WxH]`` (:func:`open_cameras`):
``front=realsense:123456789012@480x640`` (a RealSense by serial; ``realsense`` alone takes
the only one connected) or ``wrist=opencv:/dev/video0`` (an index, device or video file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from robolearn.core.types import ConfigError
from robolearn.drivers.base import Driver


def robot_names() -> list[str]:
    """Every name ``open_robot`` accepts (``virtual:<arm>`` for each Dynamixel arm)."""
    from robolearn.drivers.dynamixel.configs import ARMS

    return ["franka", "franka-sim", "aloha", *ARMS, *(f"virtual:{a}" for a in ARMS)]


@contextlib.contextmanager
def open_robot(name: str, options: Mapping[str, str] | None = None) -> Iterator[Driver]:
    """The driver called ``name`` (see the module docstring); emulators stop on exit."""
    opts = dict(options or {})
    if name == "franka":
        yield _franka(opts)
    elif name == "franka-sim":
        from robolearn.drivers.franka import FrankaDriver, FrankySim

        with FrankySim() as sim:
            yield FrankaDriver(sim.driver_config())
    elif name == "aloha":
        yield _aloha(opts)
    elif name.startswith("virtual:"):
        with _virtual_arm(name.split(":", 1)[1]) as driver:
            yield driver
    else:
        yield _dynamixel(name, opts)


def _franka(opts: dict[str, str]) -> Driver:
    from robolearn.drivers.franka import FrankaConfig, FrankaDriver

    if "host" not in opts:
        raise ConfigError("--robot franka needs --robot-option host=<FCI address, e.g. 172.16.0.2>")
    return FrankaDriver(FrankaConfig(host=opts["host"], model=opts.get("model", "fr3")))  # type: ignore[arg-type]


def _dynamixel(name: str, opts: dict[str, str]) -> Driver:
    from robolearn.drivers.dynamixel.arm import DynamixelArm
    from robolearn.drivers.dynamixel.configs import ARMS, arm_config

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


def _aloha(opts: dict[str, str]) -> Driver:
    from robolearn.drivers.dynamixel.arm import DynamixelArm
    from robolearn.drivers.dynamixel.bimanual import BimanualArm
    from robolearn.drivers.dynamixel.configs import ALOHA

    directory = Path(opts["calibration_dir"]) if "calibration_dir" in opts else None
    arms = [
        DynamixelArm(
            config,
            opts.get(f"{side}_port", ALOHA.ports[config.name]),
            calibration_dir=directory,
        )
        for side, config in (("left", ALOHA.left_follower), ("right", ALOHA.right_follower))
    ]
    return BimanualArm(arms[0], arms[1])


def open_cameras(specs: Sequence[str]) -> list[Any]:
    """Unconnected cameras from ``NAME=KIND:SOURCE[@HxW]`` strings (see the module doc)."""
    return [_camera(spec) for spec in specs]


def _camera(spec: str) -> Any:
    name, sep, rest = spec.partition("=")
    kind, _, source = rest.partition(":")
    source, _, size = source.partition("@")
    if not sep or not name or kind not in ("realsense", "opencv"):
        raise ConfigError(
            f"--camera {spec!r}: write NAME=realsense[:SERIAL][@HxW] or NAME=opencv:SOURCE[@HxW] "
            "(robolearn find-cameras lists what is connected)"
        )
    height, width = _size(spec, size)
    if kind == "realsense":
        from robolearn.drivers.cameras.realsense import RealSenseCamera, RealSenseConfig

        config = RealSenseConfig(name=name, serial=source or None, width=width, height=height)
        return RealSenseCamera(config)
    from robolearn.drivers.cameras.opencv import OpenCVCamera, OpenCVCameraConfig

    if not source:
        raise ConfigError(f"--camera {spec!r}: opencv needs a source (index, device or file)")
    index_or_path: int | str = int(source) if source.isdigit() else source
    return OpenCVCamera(
        OpenCVCameraConfig(source=index_or_path, name=name, width=width, height=height)
    )


def _size(spec: str, size: str) -> tuple[int | None, int | None]:
    if not size:
        return None, None
    h, sep, w = size.partition("x")
    if not (sep and h.isdigit() and w.isdigit()):
        raise ConfigError(f"--camera {spec!r}: the size is HEIGHTxWIDTH, e.g. @480x640")
    return int(h), int(w)


@contextlib.contextmanager
def _virtual_arm(arm: str) -> Iterator[Driver]:
    from robolearn.drivers.dynamixel.arm import DynamixelArm
    from robolearn.drivers.dynamixel.calibration import symmetric_calibration
    from robolearn.drivers.dynamixel.configs import arm_config
    from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm

    config = arm_config(arm)
    with VirtualDynamixelBus(servos_for_arm(arm)) as port:
        yield DynamixelArm(config, port, calibration=symmetric_calibration(config))
