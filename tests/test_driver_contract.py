"""The driver contract, checked the same way on every driver in ``conftest.DRIVER_REGISTRY``.

Only ``driver.spec``, ``read()``, ``command()`` and the clock are used: no simulator
internals. Each test runs on the entries that have what it needs (``driver_needs``); checks
that only hold for a deterministic simulated clock run on ``sim_clock`` entries only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from driver_contract import (
    BAD_KINDS,
    GRIPPER_TOL_M,
    HOLD_TOL_RAD,
    MODE_FIELDS,
    TRACK_TOL_RAD,
    DriverEntry,
    assert_state_close,
    bad_commands,
    hold_command,
    impedance_gains,
    joint_target,
    period_s,
    preferred_mode,
    run_for,
    run_until_tracked,
)

from robolearn.core.geometry import quat_error
from robolearn.core.types import Command, CommandError, ConfigError, ControlMode, DriverError
from robolearn.drivers.base import Driver

needs = pytest.mark.driver_needs
"""Which registry entries a test applies to (see ``conftest.py``): the matrix holds only the
applicable (driver, mode) cases, so a mode a robot lacks (torque on a servo arm) is tested on
the drivers that have it, and refusing it is tested by ``test_unsupported_modes_...``."""


# ---------------------------------------------------------------------------------- spec


def test_registry_entry_declares_what_the_driver_has(
    driver_entry: DriverEntry, make_driver: Callable[[], Driver]
) -> None:
    driver = make_driver()
    spec = driver.spec
    assert set(spec.control_modes) == driver_entry.modes, "fix the entry's modes"
    assert (spec.gripper is not None) == driver_entry.gripper, "fix the entry's gripper"
    assert bool(spec.cameras) == driver_entry.cameras, "fix the entry's cameras"
    assert driver_entry.sim_clock != driver.realtime, "a sim_clock entry must not be realtime"


def test_spec_joints_are_named_and_limited(make_driver: Callable[[], Driver]) -> None:
    spec = make_driver().spec
    assert spec.dof > 0
    assert len(set(spec.joint_names)) == spec.dof, f"duplicate joint names {spec.joint_names}"
    lower, upper = spec.limits("lower"), spec.limits("upper")
    assert np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert np.all(lower < upper), f"lower {lower} must be below upper {upper}"
    assert np.all(spec.limits("max_velocity") > 0)
    assert np.all(spec.limits("max_effort") > 0)


def test_spec_rates_and_modes(make_driver: Callable[[], Driver]) -> None:
    spec = make_driver().spec
    assert 0 < spec.control_hz <= spec.max_control_hz
    assert spec.control_modes, "a driver must offer at least one control mode"
    assert all(isinstance(m, ControlMode) for m in spec.control_modes)


@needs(gripper=True)
def test_spec_gripper_range(make_driver: Callable[[], Driver]) -> None:
    gripper = make_driver().spec.gripper
    assert gripper is not None
    assert 0 <= gripper.min_width < gripper.max_width
    assert gripper.max_force > 0


def test_spec_cameras_have_consistent_intrinsics(make_driver: Callable[[], Driver]) -> None:
    spec = make_driver().spec
    names = [c.name for c in spec.cameras]
    assert len(set(names)) == len(names), f"duplicate camera names {names}"
    for cam in spec.cameras:
        k = cam.intrinsics
        assert k.width > 0 and k.height > 0 and cam.fps > 0
        assert k.fx > 0 and k.fy > 0
        assert 0 <= k.cx <= k.width and 0 <= k.cy <= k.height, f"{cam.name}: {k}"
        np.testing.assert_array_equal(k.matrix()[:2, 2], [k.cx, k.cy])
        assert spec.camera(cam.name) is cam
    with pytest.raises(ConfigError):
        spec.camera("no-such-camera")


# ---------------------------------------------------------------------------- lifecycle


def test_connect_and_disconnect_are_idempotent(make_driver: Callable[[], Driver]) -> None:
    driver = make_driver()
    assert not driver.connected
    driver.connect()
    driver.connect()
    assert driver.connected
    driver.read()
    driver.disconnect()
    driver.disconnect()
    assert not driver.connected


def test_context_manager_connects_and_disconnects(make_driver: Callable[[], Driver]) -> None:
    driver = make_driver()
    with driver as entered:
        assert entered is driver and driver.connected
        driver.read()
    assert not driver.connected
    with pytest.raises(KeyError), driver:
        raise KeyError("the body failed")
    assert not driver.connected, "an exception in the body must still disconnect"


def test_use_before_connect_raises_driver_error(make_driver: Callable[[], Driver]) -> None:
    driver = make_driver()
    with pytest.raises(DriverError):
        driver.read()
    mode = next(iter(driver.spec.control_modes))
    with pytest.raises(DriverError):
        driver.command(Command(mode))


def test_reconnect_after_disconnect(make_driver: Callable[[], Driver]) -> None:
    driver = make_driver()
    driver.connect()
    driver.disconnect()
    with pytest.raises(DriverError):
        driver.read()
    driver.connect()
    assert np.all(np.isfinite(driver.read().q))


# --------------------------------------------------------------------------------- read


def test_read_returns_well_formed_state(driver: Driver) -> None:
    spec, state = driver.spec, driver.read()
    assert np.isfinite(state.timestamp)
    for name in ("q", "dq", "tau"):
        value = getattr(state, name)
        assert value.shape == (spec.dof,), f"{name} has shape {value.shape}"
        assert np.all(np.isfinite(value)), f"{name} = {value}"
    assert np.all(state.q >= spec.limits("lower") - 1e-3)
    assert np.all(state.q <= spec.limits("upper") + 1e-3)
    assert state.ee_pos.shape == (3,) and np.all(np.isfinite(state.ee_pos))
    assert state.ee_quat.shape == (4,)
    assert np.linalg.norm(state.ee_quat) == pytest.approx(1.0, abs=1e-6)
    if spec.gripper is not None:
        assert spec.gripper.min_width - GRIPPER_TOL_M <= state.gripper_width
        assert state.gripper_width <= spec.gripper.max_width + GRIPPER_TOL_M


@needs(cameras=True)
def test_read_returns_camera_frames_matching_intrinsics(driver: Driver) -> None:
    cameras = driver.spec.cameras
    state = driver.read()
    assert set(state.images) == {c.name for c in cameras}
    assert set(state.depths) == {c.name for c in cameras if c.depth}
    for cam in cameras:
        shape = (cam.intrinsics.height, cam.intrinsics.width)
        image = state.images[cam.name]
        assert image.shape == (*shape, 3) and image.dtype == np.uint8, cam.name
        if cam.depth:
            depth = state.depths[cam.name]
            assert depth.shape == shape and depth.dtype == np.float32, cam.name
            assert np.all(np.isfinite(depth)) and np.all(depth > 0), cam.name


# -------------------------------------------------------------------------------- clock


def test_wait_advances_the_clock(driver: Driver, sim_clock: bool) -> None:
    for _ in range(3):
        stamp_before, before = driver.read().timestamp, driver.now()
        returned = driver.wait(period_s(driver))
        after = driver.now()
        stamp_after = driver.read().timestamp
        assert after >= before + 0.99 * period_s(driver)
        assert before + 0.99 * period_s(driver) <= returned <= after
        assert stamp_after > stamp_before, "timestamps must strictly increase across wait()"
        assert stamp_after <= driver.now() + 1e-6, "a state cannot come from the future"
        if sim_clock:
            assert stamp_after == pytest.approx(after, abs=1e-9)


@needs(sim_clock=True)
def test_simulated_wait_matches_the_duration(driver: Driver) -> None:
    # Exact durations hold only on a simulated clock; tests never assert on wall time.
    physics_step_bound = 1.0 / driver.spec.max_control_hz  # no physics step is longer
    for duration_s in (0.05, 0.0123, 0.0001):  # also durations no physics step divides
        before = driver.now()
        after = driver.wait(duration_s)
        assert after > before
        assert abs(after - before - duration_s) <= physics_step_bound + 1e-9, duration_s


@needs(sim_clock=True)
def test_reading_does_not_advance_a_simulated_clock(driver: Driver) -> None:
    before = driver.now()
    first, second = driver.read(), driver.read()
    assert first.timestamp == second.timestamp == before == driver.now()
    np.testing.assert_array_equal(first.q, second.q)


# ------------------------------------------------------------------------------ command


def test_command_returns_the_applied_command(driver: Driver, mode: ControlMode) -> None:
    spec = driver.spec
    state = driver.read()
    applied = driver.command(hold_command(spec, mode, state))
    assert isinstance(applied, Command) and applied.mode is mode
    for name in MODE_FIELDS[mode]:
        value = getattr(applied, name)
        assert value is not None and np.all(np.isfinite(value)), name
    if mode is ControlMode.EE_DELTA:
        assert applied.joint_position is not None, "EE_DELTA reports the IK joint targets"
    if applied.joint_position is not None:
        assert applied.joint_position.shape == (spec.dof,)
        assert np.all(applied.joint_position >= spec.limits("lower"))
        assert np.all(applied.joint_position <= spec.limits("upper"))
    if spec.gripper is not None:
        assert applied.gripper_width is not None
        assert spec.gripper.min_width <= applied.gripper_width <= spec.gripper.max_width


def test_hold_command_keeps_the_robot_still(driver: Driver, mode: ControlMode) -> None:
    start = driver.read()
    run_for(driver, 0.5, hold_command(driver.spec, mode, start))
    assert_state_close(driver.read(), start, HOLD_TOL_RAD)


@needs(modes=[m for m in MODE_FIELDS if "joint_position" in MODE_FIELDS[m]])
def test_joint_targets_are_clipped_to_the_limits(driver: Driver, mode: ControlMode) -> None:
    spec = driver.spec
    lower, upper = spec.limits("lower"), spec.limits("upper")
    hold = hold_command(spec, mode, driver.read())
    assert hold.joint_position is not None
    for i in range(spec.dof):
        for beyond, limit in ((upper[i] + 1.0, upper[i]), (lower[i] - 1.0, lower[i])):
            target = hold.joint_position.copy()
            target[i] = beyond
            applied = driver.command(hold.with_(joint_position=target))
            assert applied.joint_position is not None
            assert applied.joint_position[i] == pytest.approx(limit, abs=1e-12), spec.joint_names[i]
            others = np.arange(spec.dof) != i
            np.testing.assert_allclose(applied.joint_position[others], target[others], atol=1e-12)
    driver.command(hold)


@needs(modes=[ControlMode.JOINT_TORQUE])
def test_torques_are_clipped_to_the_effort_limits(driver: Driver) -> None:
    effort = driver.spec.limits("max_effort")
    hold = hold_command(driver.spec, ControlMode.JOINT_TORQUE, driver.read())
    for sign in (1.0, -1.0):
        applied = driver.command(hold.with_(joint_torque=sign * 10.0 * effort))
        assert applied.joint_torque is not None
        np.testing.assert_allclose(applied.joint_torque, sign * effort, rtol=1e-12)
    driver.command(hold)


@needs(gripper=True)
def test_gripper_width_is_clipped_to_its_range(driver: Driver) -> None:
    gripper = driver.spec.gripper
    assert gripper is not None
    hold = hold_command(driver.spec, preferred_mode(driver.spec), driver.read())
    applied = driver.command(hold.with_(gripper_width=gripper.max_width + 1.0))
    assert applied.gripper_width == pytest.approx(gripper.max_width)
    applied = driver.command(hold.with_(gripper_width=gripper.min_width - 1.0))
    assert applied.gripper_width == pytest.approx(gripper.min_width)


@needs(missing_mode=True)
def test_unsupported_modes_raise_driver_error(driver: Driver) -> None:
    # The MuJoCo arm offers every mode; tests/test_mujoco_panda.py covers the refusal with a
    # driver that declares fewer.
    unsupported = [m for m in ControlMode if m not in driver.spec.control_modes]
    assert unsupported
    hold = hold_command(driver.spec, preferred_mode(driver.spec), driver.read())
    for mode in unsupported:
        with pytest.raises(DriverError, match=mode.value):
            driver.command(hold.with_(mode=mode))


# ----------------------------------------------------------------------- each mode works


@needs(modes=[ControlMode.JOINT_POSITION])
def test_joint_position_tracks_a_small_target(driver: Driver) -> None:
    target = joint_target(driver.spec, driver.read().q)
    cmd = Command(ControlMode.JOINT_POSITION, joint_position=target)
    run_until_tracked(driver, cmd, target, TRACK_TOL_RAD)
    np.testing.assert_allclose(driver.read().q, target, atol=TRACK_TOL_RAD, rtol=0)


@needs(modes=[ControlMode.JOINT_IMPEDANCE])
def test_joint_impedance_tracks_with_the_given_gains(driver: Driver) -> None:
    kp, kd = impedance_gains(driver.spec)
    target = joint_target(driver.spec, driver.read().q)
    cmd = Command(ControlMode.JOINT_IMPEDANCE, joint_position=target, stiffness=kp, damping=kd)
    applied = driver.command(cmd)
    assert applied.stiffness is not None and applied.damping is not None
    np.testing.assert_allclose(applied.stiffness, kp)
    np.testing.assert_allclose(applied.damping, kd)
    run_until_tracked(driver, cmd, target, TRACK_TOL_RAD)
    np.testing.assert_allclose(driver.read().q, target, atol=TRACK_TOL_RAD, rtol=0)


@needs(modes=[ControlMode.JOINT_IMPEDANCE])
def test_joint_impedance_without_stiffness_does_not_pull(driver: Driver) -> None:
    _, kd = impedance_gains(driver.spec)
    start = driver.read()
    target = joint_target(driver.spec, start.q)
    cmd = Command(
        ControlMode.JOINT_IMPEDANCE,
        joint_position=target,
        stiffness=np.zeros(driver.spec.dof),
        damping=kd,
    )
    run_for(driver, 0.5, cmd)
    # The target is SMALL_STEP_RAD away; without stiffness the arm must not go there.
    assert_state_close(driver.read(), start, TRACK_TOL_RAD)


@needs(modes=[ControlMode.JOINT_TORQUE])
def test_zero_torque_leaves_the_compensated_arm_in_place(driver: Driver) -> None:
    start = driver.read()
    run_for(driver, 1.0, Command(ControlMode.JOINT_TORQUE, joint_torque=np.zeros(driver.spec.dof)))
    assert_state_close(driver.read(), start, TRACK_TOL_RAD)


@needs(modes=[ControlMode.JOINT_TORQUE])
def test_torque_turns_a_joint_in_its_direction(driver: Driver) -> None:
    spec, start = driver.spec, driver.read()
    last = spec.dof - 1  # the lightest joint to turn
    direction = np.sign(joint_target(spec, start.q)[last] - start.q[last])
    tau = np.zeros(spec.dof)
    tau[last] = 0.1 * direction * spec.joints[last].max_effort
    run_for(driver, 0.2, Command(ControlMode.JOINT_TORQUE, joint_torque=tau))
    assert direction * (driver.read().q[last] - start.q[last]) > 0.01


@needs(modes=[ControlMode.EE_DELTA])
def test_ee_delta_moves_in_the_commanded_direction(driver: Driver) -> None:
    step_m, steps = 0.01, 8
    for axis in ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0), (-1.0, 0.0, 0.0)):
        direction = np.array(axis)
        start = driver.read()
        cmd = Command(
            ControlMode.EE_DELTA, ee_delta_pos=step_m * direction, ee_delta_rot=np.zeros(3)
        )
        run_for(driver, steps * period_s(driver), cmd)
        run_for(driver, 0.5)  # let the last joint target settle
        end = driver.read()
        moved = end.ee_pos - start.ee_pos
        along = float(moved @ direction)
        assert along > 0.5 * steps * step_m, f"moved {moved} for {steps} steps along {axis}"
        assert np.linalg.norm(moved - along * direction) < 0.3 * along, f"moved {moved}"
        assert np.linalg.norm(quat_error(end.ee_quat, start.ee_quat)) < np.radians(5)


@needs(modes=[ControlMode.EE_DELTA])
def test_ee_delta_rotates_about_the_commanded_axis(driver: Driver) -> None:
    start = driver.read()
    step_rad, steps = 0.05, 6
    cmd = Command(
        ControlMode.EE_DELTA, ee_delta_pos=np.zeros(3), ee_delta_rot=np.array([0.0, 0.0, step_rad])
    )
    run_for(driver, steps * period_s(driver), cmd)
    run_for(driver, 0.5)
    end = driver.read()
    rotvec = quat_error(end.ee_quat, start.ee_quat)  # base frame
    assert rotvec[2] > 0.5 * steps * step_rad, f"rotated by {rotvec}"
    assert np.linalg.norm(rotvec[:2]) < 0.3 * rotvec[2], f"rotated by {rotvec}"
    assert np.linalg.norm(end.ee_pos - start.ee_pos) < 0.01


@needs(gripper=True)
def test_gripper_reaches_the_commanded_width(driver: Driver) -> None:
    gripper = driver.spec.gripper
    assert gripper is not None
    hold = hold_command(driver.spec, preferred_mode(driver.spec), driver.read())
    span = gripper.max_width - gripper.min_width
    for fraction in (0.25, 0.9):
        width = gripper.min_width + fraction * span
        applied = driver.command(hold.with_(gripper_width=width))
        assert applied.gripper_width == pytest.approx(width)
        run_for(driver, 1.0, hold.with_(gripper_width=width))
        for _ in range(round(4.0 * driver.spec.control_hz) if driver.realtime else 0):
            if abs(driver.read().gripper_width - width) <= GRIPPER_TOL_M:
                break  # a wall-clock driver on a loaded machine may need longer
            driver.wait(period_s(driver))
        assert driver.read().gripper_width == pytest.approx(width, abs=GRIPPER_TOL_M)


# ------------------------------------------------------------------------- bad commands


def test_bad_commands_raise_and_change_nothing(driver: Driver, mode: ControlMode) -> None:
    spec = driver.spec
    for kind in BAD_KINDS:
        start = driver.read()
        driver.command(hold_command(spec, mode, start))
        for label, cmd in bad_commands(spec, mode, start, kind):
            try:
                driver.command(cmd)
            except CommandError:
                continue
            pytest.fail(f"{mode.value} command with {label} was accepted")
        run_for(driver, 0.25)  # the last good command stays in effect
        assert_state_close(driver.read(), start, HOLD_TOL_RAD)


@needs(sim_clock=True)
def test_bad_commands_leave_no_trace_in_simulation(make_driver: Callable[[], Driver]) -> None:
    twins = make_driver(), make_driver()
    for drv in twins:
        drv.connect()
    spec = twins[0].spec
    for mode in sorted(spec.control_modes, key=lambda m: m.value):
        states = [drv.read() for drv in twins]
        for drv, state in zip(twins, states, strict=True):
            drv.command(hold_command(spec, mode, state))
        for kind in BAD_KINDS:
            for _, cmd in bad_commands(spec, mode, states[0], kind):
                with pytest.raises(CommandError):
                    twins[0].command(cmd)
        for drv in twins:
            run_for(drv, 3 * period_s(drv))
    with_bad, clean = (drv.read() for drv in twins)
    for name in ("timestamp", "q", "dq", "tau", "ee_pos", "ee_quat", "gripper_width"):
        np.testing.assert_array_equal(getattr(with_bad, name), getattr(clean, name), err_msg=name)
