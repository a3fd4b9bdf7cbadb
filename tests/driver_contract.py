"""Helpers of the driver-contract suite, built only from a driver's ``spec`` and ``read()``.

Nothing here knows which driver it talks to: commands are derived from the joint limits,
effort limits and gripper range that the driver declares, so the same helpers serve a
simulated arm and a real one behind its emulator.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from robolearn.core.types import Command, ControlMode, FloatArray, RobotSpec, RobotState
from robolearn.drivers.base import Driver

DriverFactory = Callable[[], Driver] | Callable[[], Iterator[Driver]]


@dataclass(frozen=True)
class DriverEntry:
    """One driver of the contract matrix and what it declares it has.

    The declaration decides which contract tests the entry gets (a servo arm without torque
    control gets no torque tests rather than skipped ones); the first contract test checks it
    against the driver's own ``spec``, so it cannot drift from the driver.

    ``sim_clock``: the driver's clock is a deterministic simulation: ``wait(dt)`` advances
    simulated time by ``dt`` to within one physics step, and two instances given the same
    commands evolve identically. Drivers paced by wall time (hardware and its emulators) leave it
    off and do not get the sim-only checks.
    """

    id: str
    factory: DriverFactory
    modes: frozenset[ControlMode]
    gripper: bool
    cameras: bool = False
    sim_clock: bool = False
    missing: str = field(default="", compare=False)
    """Why this entry cannot run here (an uninstalled emulator under ``CI=true``); its tests then
    fail with this message instead of vanishing from the run."""

    def satisfies(
        self,
        modes: Iterable[ControlMode] = (),
        gripper: bool = False,
        cameras: bool = False,
        sim_clock: bool = False,
        missing_mode: bool = False,
    ) -> bool:
        """Whether the entry has everything a test asks for in its ``driver_needs`` mark."""
        return (
            set(modes) <= self.modes
            and (self.gripper or not gripper)
            and (self.cameras or not cameras)
            and (self.sim_clock or not sim_clock)
            and (not missing_mode or self.modes != set(ControlMode))
        )


def optional_entry(entry: DriverEntry, available: bool, install_hint: str) -> list[DriverEntry]:
    """``[entry]`` when its emulator is installed. Otherwise nothing on a developer machine (the
    run header says what was left out), but under ``CI=true`` the entry stays and each of its
    tests fails with ``install_hint``: CI must not silently lose a driver's contract tests."""
    if available:
        return [entry]
    if running_in_ci():
        return [replace(entry, missing=install_hint)]
    OMITTED.append(f"{entry.id} ({install_hint})")
    return []


def running_in_ci() -> bool:
    """Whether ``CI`` is set to true (as GitHub Actions, GitLab and ``.ci/run`` do)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


OMITTED: list[str] = []
"""Registry entries left out of this run because their emulator is not installed."""

TRACK_TOL_RAD = 0.02
"""How close a joint must get to a small commanded target after about one second."""
HOLD_TOL_RAD = 0.01
"""How far a joint may drift while the robot is told to stay where it is."""
GRIPPER_TOL_M = 0.002
"""How close the gripper must get to a commanded opening."""
SMALL_STEP_RAD = 0.1
"""Size of the joint moves the tests command: small, but far above every tolerance."""
SATURATING_ERROR_RAD = 0.25
"""Joint error at which the test impedance gains reach the joint's effort limit."""

MODE_FIELDS: dict[ControlMode, tuple[str, ...]] = {
    ControlMode.JOINT_POSITION: ("joint_position",),
    ControlMode.JOINT_IMPEDANCE: ("joint_position", "stiffness", "damping"),
    ControlMode.JOINT_TORQUE: ("joint_torque",),
    ControlMode.EE_DELTA: ("ee_delta_pos", "ee_delta_rot"),
}
"""The array fields each mode reads; the first one is required."""
MODE_PREFERENCE = (
    ControlMode.JOINT_POSITION,
    ControlMode.JOINT_IMPEDANCE,
    ControlMode.EE_DELTA,
    ControlMode.JOINT_TORQUE,
)
BAD_KINDS = ("non_finite", "wrong_shape", "missing", "bad_gripper")


def period_s(driver: Driver) -> float:
    """One nominal control period in seconds."""
    return 1.0 / driver.spec.control_hz


def run_for(driver: Driver, duration_s: float, cmd: Command | None = None) -> None:
    """Let ``duration_s`` pass in control periods, re-sending ``cmd`` each period if given."""
    for _ in range(max(1, round(duration_s * driver.spec.control_hz))):
        if cmd is not None:
            driver.command(cmd)
        driver.wait(period_s(driver))


def run_until_tracked(
    driver: Driver, cmd: Command, target: FloatArray, tol_rad: float, duration_s: float = 1.0
) -> None:
    """Command ``cmd`` for ``duration_s``; a driver paced by the wall clock (hardware or its
    emulator) gets up to 4 s more to settle within ``tol_rad`` of ``target``, since a loaded
    machine can starve its control thread for a while."""
    run_for(driver, duration_s, cmd)
    if not driver.realtime:
        return
    for _ in range(round(4.0 * driver.spec.control_hz)):
        if np.abs(driver.read().q - target).max() <= tol_rad:
            return
        driver.command(cmd)
        driver.wait(period_s(driver))


def preferred_mode(spec: RobotSpec) -> ControlMode:
    """The first supported mode in :data:`MODE_PREFERENCE` (for tests about the gripper)."""
    return next(m for m in MODE_PREFERENCE if m in spec.control_modes)


def impedance_gains(spec: RobotSpec) -> tuple[FloatArray, FloatArray]:
    """Stiffness (dof,) in N·m/rad and damping (dof,) in N·m·s/rad scaled to the effort limits."""
    stiffness = spec.limits("max_effort") / SATURATING_ERROR_RAD
    return stiffness, 0.1 * stiffness


def joint_target(spec: RobotSpec, q: FloatArray, step_rad: float = SMALL_STEP_RAD) -> FloatArray:
    """``q`` moved by ``step_rad`` on every joint, each towards the middle of its range."""
    middle = 0.5 * (spec.limits("lower") + spec.limits("upper"))
    return q + np.where(q < middle, step_rad, -step_rad)


def far_gripper_width(spec: RobotSpec, width_m: float) -> float:
    """The end of the gripper range farther from ``width_m``."""
    assert spec.gripper is not None
    lo, hi = spec.gripper.min_width, spec.gripper.max_width
    return lo if width_m - lo > hi - width_m else hi


def hold_command(spec: RobotSpec, mode: ControlMode, state: RobotState) -> Command:
    """A ``mode`` command that keeps the robot where ``state`` says it is."""
    zeros3 = np.zeros(3)
    if mode is ControlMode.JOINT_TORQUE:
        return Command(mode, joint_torque=np.zeros(spec.dof))
    if mode is ControlMode.EE_DELTA:
        return Command(mode, ee_delta_pos=zeros3, ee_delta_rot=zeros3)
    if mode is ControlMode.JOINT_IMPEDANCE:
        kp, kd = impedance_gains(spec)
        return Command(mode, joint_position=state.q.copy(), stiffness=kp, damping=kd)
    return Command(mode, joint_position=state.q.copy())


def moving_command(spec: RobotSpec, mode: ControlMode, state: RobotState) -> Command:
    """A valid ``mode`` command that would visibly move the arm and the gripper if applied."""
    width = None if spec.gripper is None else far_gripper_width(spec, state.gripper_width)
    if mode is ControlMode.JOINT_TORQUE:
        toward_middle = np.sign(joint_target(spec, state.q) - state.q)
        tau = 0.2 * spec.limits("max_effort") * toward_middle
        return Command(mode, joint_torque=tau, gripper_width=width)
    if mode is ControlMode.EE_DELTA:
        return Command(
            mode,
            ee_delta_pos=np.array([0.0, 0.0, 0.03]),
            ee_delta_rot=np.array([0.0, 0.0, 0.1]),
            gripper_width=width,
        )
    target = joint_target(spec, state.q, 2 * SMALL_STEP_RAD)
    return hold_command(spec, mode, state).with_(joint_position=target, gripper_width=width)


def bad_commands(
    spec: RobotSpec, mode: ControlMode, state: RobotState, kind: str
) -> list[tuple[str, Command]]:
    """Malformed variants of :func:`moving_command`, each labelled; empty if none apply."""
    base = moving_command(spec, mode, state)
    fields = MODE_FIELDS[mode]
    if kind == "missing":
        return [(f"{fields[0]}=None", base.with_(**{fields[0]: None}))]
    if kind == "bad_gripper":
        if spec.gripper is None:
            return []
        return [(f"gripper_width={w}", base.with_(gripper_width=w)) for w in (np.nan, np.inf)]
    out = []
    for name in fields:
        value = np.asarray(getattr(base, name), dtype=np.float64)
        for label, bad in _corruptions(value, kind):
            out.append((f"{name} {label}", base.with_(**{name: bad})))
    return out


def _corruptions(value: FloatArray, kind: str) -> list[tuple[str, FloatArray]]:
    if kind == "non_finite":
        out = []
        for bad in (np.nan, np.inf, -np.inf):
            arr = value.copy()
            arr[-1] = bad
            out.append((f"with {bad}", arr))
        return out
    assert kind == "wrong_shape", kind
    return [
        ("one entry too many", np.append(value, value[:1])),
        ("one entry too few", value[:-1].copy()),
        ("as a column", value.reshape(-1, 1)),
    ]


def assert_state_close(actual: RobotState, expected: RobotState, atol_rad: float) -> None:
    """Joint positions within ``atol_rad`` and gripper within :data:`GRIPPER_TOL_M`."""
    np.testing.assert_allclose(actual.q, expected.q, atol=atol_rad, rtol=0)
    assert abs(actual.gripper_width - expected.gripper_width) <= GRIPPER_TOL_M
