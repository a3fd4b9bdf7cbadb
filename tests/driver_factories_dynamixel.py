"""Driver-contract registry entries for Dynamixel arms on the virtual servo bus (``conftest.py``).

Each factory starts a :class:`~robolearn.drivers.dynamixel.virtual_bus.VirtualDynamixelBus` serving
the
servos of a ready-made arm on a pseudo-terminal and yields a :class:`DynamixelArm` that reaches
it through pyserial and ``dynamixel_sdk``, exactly as it would reach a USB adapter. The arms are
paced by wall time, so no entry is ``sim_clock``.
"""

from __future__ import annotations

from collections.abc import Iterator

from driver_contract import DriverEntry

from robolearn.core.types import ControlMode
from robolearn.drivers.base import Driver
from robolearn.drivers.dynamixel import (
    ALOHA,
    KOCH_LEADER,
    VIPERX_300S,
    ArmConfig,
    BimanualArm,
    DynamixelArm,
)
from robolearn.drivers.dynamixel.calibration import symmetric_calibration
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm

TOLERANT_LATENCY_MS = 40.0
"""Status-packet timeout of ~80 ms instead of the SDK's ~34 ms: no fault is injected here, so
a timeout could only come from a CI machine starving the emulator thread."""


def arm_on_virtual_bus(config: ArmConfig) -> Iterator[DynamixelArm]:
    """A :class:`DynamixelArm` of ``config`` on a fresh virtual bus of its servos."""
    bus = VirtualDynamixelBus(servos_for_arm(config.name))
    with bus as port:
        calibration = symmetric_calibration(config)
        yield DynamixelArm(config, port, calibration, latency_timer_ms=TOLERANT_LATENCY_MS)


def viperx_follower() -> Iterator[Driver]:
    """ALOHA's follower: XM540/XM430 servos, shadow motors, a current-based gripper."""
    yield from arm_on_virtual_bus(VIPERX_300S)


def koch_leader() -> Iterator[Driver]:
    """Koch's leader: XL330 servos, no gripper width (the handle is a sprung trigger)."""
    yield from arm_on_virtual_bus(KOCH_LEADER)


def aloha_bimanual() -> Iterator[Driver]:
    """ALOHA's two followers as one 14-DoF robot, each arm on its own virtual bus."""
    arms = []
    buses = [VirtualDynamixelBus(servos_for_arm("viperx-300s")) for _ in range(2)]
    with buses[0] as left_port, buses[1] as right_port:
        for config, port in ((ALOHA.left_follower, left_port), (ALOHA.right_follower, right_port)):
            calibration = symmetric_calibration(config)
            arms.append(
                DynamixelArm(config, port, calibration, latency_timer_ms=TOLERANT_LATENCY_MS)
            )
        yield BimanualArm(arms[0], arms[1])


POSITION_ONLY = frozenset({ControlMode.JOINT_POSITION})

ENTRIES: list[DriverEntry] = [
    DriverEntry("dynamixel-viperx-300s", viperx_follower, POSITION_ONLY, gripper=True),
    DriverEntry("dynamixel-koch-leader", koch_leader, POSITION_ONLY, gripper=False),
    # The bimanual robot reports its two grippers as joints 7 and 14, not as one gripper width.
    DriverEntry("dynamixel-aloha-bimanual", aloha_bimanual, POSITION_ONLY, gripper=False),
]
"""The entries appended to ``conftest.DRIVER_REGISTRY``."""
