"""The Franka driver through franky against franky-sim (libfranka's protocol on loopback).

Nothing of franky is mocked: every test talks to a franky-sim child process over the network,
as the driver talks to a real arm. The driver-contract suite covers this driver too (through
``tests/driver_factories_franka.py``); the tests here cover what is Franka-specific: streaming
at the policy rate, Cartesian targets, the hand, errors, and a deploy-style episode.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from driver_contract import running_in_ci

from robolearn.control.inference import AsyncInference, obs_spec_of
from robolearn.control.runner import EpisodeRunner, RunConfig
from robolearn.control.safety import SafetyConfig, SafetyLayer
from robolearn.core.geometry import quat_angle_between
from robolearn.core.types import (
    Command,
    CommandError,
    ConfigError,
    ControlMode,
    DriverError,
    RobotState,
)
from robolearn.drivers.franka import (
    FR3_JOINTS,
    FR3_READY_Q,
    PANDA_JOINTS,
    FrankaConfig,
    FrankaConnectionError,
    FrankaControlError,
    FrankaDriver,
    FrankaError,
    FrankaGripperError,
    FrankaReflexError,
    FrankySim,
    franka_error,
    franka_spec,
)
from robolearn.drivers.franka.config import FCI_PORT
from tests.driver_factories_franka import (
    FRANKY_HINT,
    FRANKY_INSTALLED,
    SIM_DYNAMICS_FACTOR,
    pooled_sim,
)

# franky-control and franky-sim are in the dev extra, so CI runs these tests; the skips only
# spare a bare install (franky-control is also the optional `franka` extra). Under CI=true a
# missing franky is an error, not a skip.
if running_in_ci() and not FRANKY_INSTALLED:
    raise ImportError(FRANKY_HINT)
franky = pytest.importorskip("franky", reason="the Franka tests need franky-control")
pytest.importorskip("franky_sim", reason="the Franka tests need franky-sim")

HZ = 50.0
PERIOD_S = 1.0 / HZ
JP = ControlMode.JOINT_POSITION


@pytest.fixture
def sim() -> Iterator[FrankySim]:
    """A running franky-sim in its initial state (pooled: reset, not restarted)."""
    with pooled_sim() as s:
        yield s


@pytest.fixture
def arm(sim: FrankySim) -> Iterator[FrankaDriver]:
    """A connected driver on ``sim``."""
    driver = FrankaDriver(sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR))
    driver.connect()
    yield driver
    driver.disconnect()


def stream(
    driver: FrankaDriver, seconds: float, make: Callable[[int], Command]
) -> list[RobotState]:
    """Send ``make(k)`` every control period for ``seconds``; the state read after each."""
    states = []
    for k in range(round(seconds * HZ)):
        driver.command(make(k))
        driver.wait(PERIOD_S)
        states.append(driver.read())
    return states


def hold(driver: FrankaDriver, seconds: float, cmd: Command) -> RobotState:
    """Re-send ``cmd`` for ``seconds``; the state at the end."""
    stream(driver, seconds, lambda _: cmd)
    return driver.read()


def settle(
    driver: FrankaDriver,
    cmd: Command,
    done: Callable[[RobotState], bool],
    timeout_s: float = 10.0,
) -> RobotState:
    """Re-send ``cmd`` until ``done(state)``; the last state. The timeout only bounds a test
    that would otherwise hang (franky-sim may run slower than real time on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    state = driver.read()
    while not done(state) and time.monotonic() < deadline:
        driver.command(cmd)
        driver.wait(PERIOD_S)
        state = driver.read()
    return state


def reach(driver: FrankaDriver, cmd: Command, atol: float = 0.01) -> RobotState:
    """Re-send the joint-target command ``cmd`` until the arm is within ``atol`` of it."""
    assert cmd.joint_position is not None
    target = cmd.joint_position
    return settle(driver, cmd, lambda s: bool(np.abs(s.q - target).max() < atol / 2))


def smoothstep(a: float) -> float:
    """0 → 1 with zero slope at both ends."""
    return 0.5 - 0.5 * math.cos(math.pi * min(max(a, 0.0), 1.0))


def free_loopback_address() -> str:
    """A loopback address on which nothing listens on libfranka's port."""
    for last in range(2, 250):
        host = f"127.0.77.{last}"
        with socket.socket() as probe:
            try:
                probe.bind((host, FCI_PORT))
            except OSError:
                continue
            return host
    raise RuntimeError("no free loopback address")


# --------------------------------------------------------------------------- spec, config


def test_spec_is_the_fr3_with_its_hand() -> None:
    spec = franka_spec(FrankaConfig())
    assert spec.name == "franka_fr3" and spec.dof == 7
    assert spec.control_modes == {
        ControlMode.JOINT_POSITION,
        ControlMode.JOINT_IMPEDANCE,
        ControlMode.EE_DELTA,
    }
    assert spec.control_hz == 50.0 and spec.max_control_hz == 1000.0
    assert spec.gripper is not None
    assert (spec.gripper.min_width, spec.gripper.max_width) == (0.0, 0.08)
    panda = franka_spec(FrankaConfig(model="panda", gripper=False))
    assert panda.joints == PANDA_JOINTS and panda.gripper is None


def test_fr3_limits_match_franky_sims_model() -> None:
    """The spec's position and torque limits are those of the FR3 model franky-sim simulates."""
    import franky_sim

    mjcf = Path(franky_sim.__file__).parent / "assets" / "fr3.xml"
    joints = {j.get("name"): j for j in ET.parse(mjcf).getroot().iter("joint")}
    for spec in FR3_JOINTS:
        joint = joints[spec.name]
        lower, upper = (float(v) for v in joint.get("range", "").split())
        effort = float(joint.get("actuatorfrcrange", "").split()[1])
        assert (spec.lower, spec.upper, spec.max_effort) == (lower, upper, effort), spec.name


@pytest.mark.parametrize(
    "changes",
    [
        {"dynamics_factor": 0.0},
        {"dynamics_factor": 1.5},
        {"control_hz": 2000.0},
        {"connect_timeout_s": 0.0},
        {"gripper_force_n": 500.0},
        {"max_recoveries": -1},
        {"host": ""},
    ],
)
def test_config_refuses_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FrankaConfig(**changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- read


def test_read_reports_franky_state_on_the_monotonic_clock(arm: FrankaDriver) -> None:
    before = time.perf_counter()
    state = arm.read()
    after = arm.read()
    assert before <= state.timestamp < after.timestamp <= time.perf_counter()
    np.testing.assert_allclose(state.q, FR3_READY_Q, atol=2e-3)  # franky-sim starts there
    np.testing.assert_allclose(state.q, arm.robot.current_joint_positions, atol=1e-3)
    T_base_ee = np.asarray(arm.robot.state.O_T_EE.matrix)
    np.testing.assert_allclose(state.ee_pos, T_base_ee[:3, 3], atol=1e-4)
    # The hand points down: a half turn about x, which is (w, x, y, z) = (0, ±1, 0, 0).
    assert abs(state.ee_quat[1]) == pytest.approx(1.0, abs=1e-3)
    assert state.gripper_width == pytest.approx(0.08, abs=1e-3)
    assert state.tau.shape == (7,) and np.all(np.isfinite(state.tau))


# ------------------------------------------------------------------------------ streaming


def test_joint_targets_streamed_at_50_hz_move_the_arm_to_them(arm: FrankaDriver) -> None:
    start = arm.read().q
    goal = start + np.array([0.3, -0.2, 0.2, 0.3, -0.3, 0.3, 0.4])
    ticks = 100

    def target(k: int) -> np.ndarray:
        return start + (goal - start) * smoothstep((k + 1) / ticks)

    states = stream(arm, ticks * PERIOD_S, lambda k: Command(JP, joint_position=target(k)))
    errors = [np.abs(s.q - target(k)).max() for k, s in enumerate(states)]
    assert np.mean(errors) < 0.05, "the arm must follow the streamed targets, not only the last"
    halfway = states[ticks // 2].q - start
    assert np.all(
        np.sign(halfway[np.abs(goal - start) > 0.1])
        == np.sign((goal - start)[np.abs(goal - start) > 0.1])
    )
    final = reach(arm, Command(JP, joint_position=goal))
    np.testing.assert_allclose(final.q, goal, atol=0.01)


def test_a_new_target_replaces_the_running_motion_at_once(arm: FrankaDriver) -> None:
    start = arm.read().q
    far, back = start.copy(), start.copy()
    far[0] += 2.0  # seconds away: the arm is still on its way when the next target comes
    back[0] -= 0.1
    moving = settle(arm, Command(JP, joint_position=far), lambda s: s.q[0] > start[0] + 0.02)
    assert moving.q[0] > start[0] + 0.02, "the arm set off towards the far target"
    states = stream(arm, 1.0, lambda _: Command(JP, joint_position=back))
    assert max(s.q[0] for s in states) < far[0] - 1.0, "the far target was abandoned at once"
    final = reach(arm, Command(JP, joint_position=back))
    np.testing.assert_allclose(final.q, back, atol=0.01)


def test_command_returns_the_clipped_target(arm: FrankaDriver) -> None:
    q = arm.read().q
    beyond = q.copy()
    beyond[3] = 1.0  # joint 4 must stay below -0.1518 rad
    applied = arm.command(Command(JP, joint_position=beyond, gripper_width=0.5))
    assert applied.joint_position is not None
    assert applied.joint_position[3] == FR3_JOINTS[3].upper
    assert applied.gripper_width == 0.08
    arm.command(Command(JP, joint_position=q))


# ----------------------------------------------------------------------------- Cartesian


def test_ee_delta_targets_move_the_end_effector(arm: FrankaDriver) -> None:
    start = arm.read()
    step_m = np.array([0.005, 0.0, -0.0025])  # 10 steps: 56 mm, inside the target's lead limit
    cmd = Command(ControlMode.EE_DELTA, ee_delta_pos=step_m, ee_delta_rot=np.zeros(3))
    first = arm.command(cmd)
    check_joint_estimate(arm, start, first)
    stream(arm, 9 * PERIOD_S, lambda _: cmd)
    zero = cmd.with_(ee_delta_pos=np.zeros(3))
    goal = start.ee_pos + 10 * step_m
    settled = settle(arm, zero, lambda s: bool(np.linalg.norm(s.ee_pos - goal) < 0.002))
    np.testing.assert_allclose(settled.ee_pos, goal, atol=0.005)
    assert quat_angle_between(settled.ee_quat, start.ee_quat) < math.radians(2)
    steady = hold(arm, 0.5, zero)  # a zero delta holds the pose: no drift
    later = hold(arm, 0.5, zero)
    np.testing.assert_allclose(later.ee_pos, steady.ee_pos, atol=5e-4)


def check_joint_estimate(arm: FrankaDriver, start: RobotState, applied: Command) -> None:
    """The applied EE_DELTA's joint_position reaches its Cartesian target to first order."""
    assert applied.joint_position is not None and applied.ee_delta_pos is not None
    state = arm.robot.state
    pose = arm.robot.model.pose(
        franky.Frame.EndEffector, applied.joint_position, state.F_T_EE, state.EE_T_K
    )
    target = start.ee_pos + applied.ee_delta_pos
    error_m = float(np.linalg.norm(np.asarray(pose.translation) - target))
    assert error_m < 0.2 * float(np.linalg.norm(applied.ee_delta_pos)), error_m


def test_ee_delta_rotates_about_a_base_axis(arm: FrankaDriver) -> None:
    start = arm.read()
    turn = Command(
        ControlMode.EE_DELTA, ee_delta_pos=np.zeros(3), ee_delta_rot=np.array([0, 0, 0.05])
    )
    stream(arm, 6 * PERIOD_S, lambda _: turn)
    end = settle(
        arm,
        turn.with_(ee_delta_rot=np.zeros(3)),
        lambda s: abs(quat_angle_between(s.ee_quat, start.ee_quat) - 0.3) < 0.01,
    )
    assert quat_angle_between(end.ee_quat, start.ee_quat) == pytest.approx(0.3, abs=0.03)
    np.testing.assert_allclose(end.ee_pos, start.ee_pos, atol=0.005)


def test_switching_control_modes(arm: FrankaDriver) -> None:
    start = arm.read()
    q1 = start.q.copy()
    q1[0] += 0.15
    np.testing.assert_allclose(reach(arm, Command(JP, joint_position=q1)).q, q1, atol=0.01)
    up = Command(
        ControlMode.EE_DELTA, ee_delta_pos=np.array([0, 0, 0.01]), ee_delta_rot=np.zeros(3)
    )
    before = arm.read()
    stream(arm, 3 * PERIOD_S, lambda _: up)
    lifted = settle(
        arm, up.with_(ee_delta_pos=np.zeros(3)), lambda s: s.ee_pos[2] - before.ee_pos[2] > 0.028
    )
    assert lifted.ee_pos[2] - before.ee_pos[2] == pytest.approx(0.03, abs=0.005)
    q2 = lifted.q.copy()
    q2[5] += 0.1
    kp = np.full(7, 300.0)
    impedance = Command(
        ControlMode.JOINT_IMPEDANCE, joint_position=q2, stiffness=kp, damping=0.1 * kp
    )
    np.testing.assert_allclose(reach(arm, impedance, atol=0.02).q, q2, atol=0.02)
    home = Command(JP, joint_position=start.q)
    np.testing.assert_allclose(reach(arm, home).q, start.q, atol=0.01)


# ------------------------------------------------------------------------------- gripper


def test_gripper_closes_and_opens_without_blocking_the_loop(arm: FrankaDriver) -> None:
    still = Command(JP, joint_position=arm.read().q)
    applied = arm.command(still.with_(gripper_width=0.0))
    assert applied.gripper_width == 0.0
    assert arm.read().gripper_width > 0.03, "command() returned long before the hand closed"
    ticks = wait_for_hand(arm, still)
    assert ticks > 10, "the control loop kept running while the hand moved"
    assert arm.read().gripper_width < 0.003
    arm.command(still.with_(gripper_width=0.08))
    wait_for_hand(arm, still)
    assert arm.read().gripper_width > 0.077


def wait_for_hand(arm: FrankaDriver, cmd: Command, timeout_s: float = 10.0) -> int:
    """Stream ``cmd`` until the hand is idle; the number of control ticks that took."""
    deadline = time.monotonic() + timeout_s  # a bound against hanging, not a timing check
    ticks = 0
    while arm.gripper_busy and time.monotonic() < deadline:
        arm.command(cmd)
        arm.wait(PERIOD_S)
        ticks += 1
    assert not arm.gripper_busy
    return ticks


def test_a_driver_without_hand_refuses_widths(sim: FrankySim) -> None:
    with FrankaDriver(sim.driver_config(gripper=False)) as driver:
        state = driver.read()
        assert driver.spec.gripper is None and state.gripper_width == 0.0
        with pytest.raises(CommandError, match="without a gripper"):
            driver.command(Command(JP, joint_position=state.q, gripper_width=0.04))
        assert driver.command(Command(JP, joint_position=state.q)).gripper_width is None


# ---------------------------------------------------------------------- deploy episode


class SweepPolicy:
    """Marches a joint reference from the first observed ``q`` to ``goal_q`` by ``step_rad`` per
    tick (faster than the safety layer allows); chunks of the next references, hand at
    ``width_m``. One call per tick (the sync backend with the "latest" executor)."""

    def __init__(self, goal_q: np.ndarray, step_rad: float, width_m: float, horizon: int) -> None:
        self.goal_q, self.step_rad, self.width_m, self.horizon = goal_q, step_rad, width_m, horizon
        self._ref: np.ndarray | None = None

    def reset(self) -> None:
        self._ref = None

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        ref = obs["q"].astype(np.float64) if self._ref is None else self._ref
        rows = []
        for _ in range(self.horizon):
            ref = ref + np.clip(self.goal_q - ref, -self.step_rad, self.step_rad)
            rows.append(np.append(ref, self.width_m))
        self._ref = rows[0][:7]  # the next call is one tick later
        return np.asarray(rows, dtype=np.float32)  # (horizon, 8)


class JointTargetIO:
    """The arm with joint-target actions (7 targets + gripper width) and a q observation."""

    def __init__(self, driver: FrankaDriver) -> None:
        self._driver = driver

    @property
    def driver(self) -> FrankaDriver:
        return self._driver

    def observe_with_state(self) -> tuple[dict[str, np.ndarray], RobotState]:
        state = self._driver.read()
        return {"q": state.q.astype(np.float32)}, state

    def action_to_command(self, action: np.ndarray) -> Command:
        action = np.asarray(action, dtype=np.float64)
        return Command(JP, joint_position=action[:7], gripper_width=float(action[7]))

    def is_success(self) -> bool:
        return False


def test_deploy_episode_through_rate_loop_and_safety_layer(arm: FrankaDriver) -> None:
    spec, start = arm.spec, arm.read()
    goal = start.q + np.array([0.2, -0.2, 0.15, 0.0, 0.0, 0.2, 0.3])
    goal[3] = -3.5  # joint 4 is asked past its lower limit (-3.0421 rad)
    io = JointTargetIO(arm)
    obs, _ = io.observe_with_state()
    horizon = 4
    inference = AsyncInference(
        lambda: SweepPolicy(goal, 0.05, 0.04, horizon),
        obs_spec_of(obs),
        (horizon, 8),
        backend="sync",
    )
    inference.start()
    safety = SafetyLayer(spec, SafetyConfig(joint_margin_rad=0.1, velocity_scale=0.1), PERIOD_S)
    runner = EpisodeRunner(io, inference, safety, RunConfig(hz=HZ, max_ticks=150))
    try:
        episode = runner.run_episode()
    finally:
        inference.close()
    assert episode.error is None and len(episode.ticks) == 150
    sent = np.array([s["joint_position"] for s in episode.sent])  # (150, 7)
    lower, upper = spec.limits("lower") + 0.1, spec.limits("upper") - 0.1
    assert np.all(sent >= lower - 1e-12) and np.all(sent <= upper + 1e-12)
    steps = np.abs(np.diff(sent, axis=0))  # (149, 7)
    assert np.all(steps <= safety.limits.max_step_rad + 1e-9), "no target moved faster than allowed"
    assert safety.counts["joint_step"] > 0 and safety.counts["joint_limit"] > 0
    assert sent[-1, 3] == pytest.approx(lower[3]), "joint 4 stopped at its safe lower limit"
    assert all(s["gripper_width"] == pytest.approx(0.04) for s in episode.sent)
    measured = np.array(episode.q)  # (150, 7)
    assert np.all(measured >= spec.limits("lower")), measured.min(axis=0) - spec.limits("lower")
    assert np.all(measured <= spec.limits("upper")), spec.limits("upper") - measured.max(axis=0)
    # What was logged is what the robot was told: the safety layer's last command unchanged,
    # and the robot's own desired joint positions settle on it.
    last = runner.safety.last_sent
    assert last is not None and last.joint_position is not None
    np.testing.assert_array_equal(sent[-1], last.joint_position)
    final = reach(arm, last)
    np.testing.assert_allclose(np.asarray(arm.robot.state.q_d), sent[-1], atol=1e-3)
    np.testing.assert_allclose(final.q, sent[-1], atol=0.01)
    assert final.gripper_width == pytest.approx(0.04, abs=0.002)


# -------------------------------------------------------------------------------- errors


def test_franky_sim_stopped_mid_motion_raises_driver_error(sim: FrankySim) -> None:
    driver = FrankaDriver(sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR))
    driver.connect()
    try:
        target = driver.read().q
        target[0] += 0.5
        driver.command(Command(JP, joint_position=target))
        driver.wait(0.1)
        sim.kill()
        deadline = time.monotonic() + 10.0  # a bound against hanging, not a timing check
        with pytest.raises(FrankaConnectionError, match=sim_host(driver)) as info:
            while time.monotonic() < deadline:
                driver.read()
                driver.command(Command(JP, joint_position=target))
                driver.wait(PERIOD_S)
        assert "\n" not in str(info.value)
        with pytest.raises(FrankaConnectionError):
            driver.read()  # and every later call, at once
        with pytest.raises(FrankaConnectionError):
            driver.command(Command(JP, joint_position=target))
    finally:
        driver.disconnect()
    assert not driver.connected


def sim_host(driver: FrankaDriver) -> str:
    return driver.config.host.replace(".", r"\.")


def test_an_address_where_nothing_listens_gives_one_clear_error() -> None:
    host = free_loopback_address()
    driver = FrankaDriver(FrankaConfig(host=host, realtime="ignore", connect_timeout_s=1.0))
    with pytest.raises(FrankaConnectionError) as info:
        driver.connect()
    message = str(info.value)
    assert host in message and "\n" not in message
    for hint in ("network", "FCI", "franky-sim"):
        assert hint in message
    assert not driver.connected


@contextlib.contextmanager
def listener(host: str, backlog: int) -> Iterator[socket.socket]:
    """A socket listening on ``host``:1337 that never accepts nor answers."""
    server = socket.socket()
    try:
        server.bind((host, FCI_PORT))
        server.listen(backlog)
        yield server
    finally:
        server.close()


def test_a_host_that_does_not_answer_times_out_with_a_clear_error() -> None:
    host = free_loopback_address()
    with listener(host, backlog=0), contextlib.ExitStack() as stack:
        for _ in range(3):  # fill the accept queue: further connection attempts go unanswered
            client = stack.enter_context(socket.socket())
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.connect((host, FCI_PORT))
        time.sleep(0.1)
        driver = FrankaDriver(FrankaConfig(host=host, realtime="ignore", connect_timeout_s=1.0))
        with pytest.raises(FrankaConnectionError, match="does not answer") as info:
            driver.connect()
    assert host in str(info.value) and "FCI" in str(info.value)


def test_a_robot_that_accepts_but_never_replies_times_out() -> None:
    host = free_loopback_address()
    with listener(host, backlog=8):
        driver = FrankaDriver(FrankaConfig(host=host, realtime="ignore", connect_timeout_s=1.0))
        with pytest.raises(FrankaConnectionError, match="did not answer within 1 s") as info:
            driver.connect()
    assert host in str(info.value) and "franky-sim" in str(info.value)


def test_realtime_enforce_needs_a_realtime_kernel(sim: FrankySim) -> None:
    realtime = Path("/sys/kernel/realtime")
    if realtime.exists() and realtime.read_text().strip() == "1":
        pytest.skip("this kernel has realtime scheduling; enforce would connect")
    driver = FrankaDriver(sim.driver_config(realtime="enforce"))
    with pytest.raises(FrankaError, match="realtime='ignore'"):
        driver.connect()
    assert not driver.connected


@pytest.mark.parametrize("auto_recover", [False, True], ids=["raise", "auto_recover"])
def test_an_aborted_motion_is_reported_or_recovered(sim: FrankySim, auto_recover: bool) -> None:
    config = sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR, auto_recover=auto_recover)
    with FrankaDriver(config) as driver:
        target = driver.read().q
        target[0] += 0.3
        go = Command(JP, joint_position=target)
        driver.command(go)
        driver.wait(0.1)
        driver.robot.stop()  # someone else stops the arm: libfranka aborts our motion
        if auto_recover:
            final = reach(driver, go)
            assert driver.recoveries == 1
        else:
            with pytest.raises(FrankaControlError, match="preempted") as info:
                hold(driver, 1.0, go)
            assert not isinstance(info.value, FrankaReflexError)
            assert driver.recover()
            final = reach(driver, go)
            assert driver.recoveries == 0
        np.testing.assert_allclose(final.q, target, atol=0.01)


SLOW_ROBOT = [0.2] * 7
"""Joint speed limits (rad/s) that a 0.5 rad move at the test dynamics breaks."""


def test_a_reflex_stops_the_arm_and_is_reported(sim: FrankySim) -> None:
    sim.reset(joint_speed_limits_rad_s=SLOW_ROBOT)  # franky-sim aborts too fast a motion
    with FrankaDriver(sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR)) as driver:
        start = driver.read().q
        far = start.copy()
        far[0] += 0.5
        with pytest.raises(FrankaReflexError, match="velocity_limits_violation") as info:
            settle(driver, Command(JP, joint_position=far), lambda _: False, timeout_s=5.0)
        assert "\n" not in str(info.value) and "recover()" in str(info.value)
        held = driver.read()
        assert abs(held.q[0] - start[0]) < 0.25, "the reflex stopped the arm short of the target"
        assert driver.recover()
        still = hold(driver, 0.3, Command(JP, joint_position=held.q))  # usable again
        np.testing.assert_allclose(still.q, held.q, atol=0.01)


def test_auto_recover_goes_on_after_reflexes_then_gives_up(sim: FrankySim) -> None:
    sim.reset(joint_speed_limits_rad_s=SLOW_ROBOT)
    config = sim.driver_config(
        dynamics_factor=SIM_DYNAMICS_FACTOR, auto_recover=True, max_recoveries=2
    )
    with FrankaDriver(config) as driver:
        far = driver.read().q
        far[0] += 0.5
        with pytest.raises(FrankaReflexError):  # each attempt trips the reflex again
            settle(driver, Command(JP, joint_position=far), lambda _: False, timeout_s=10.0)
        assert driver.recoveries == 2


def test_franky_exceptions_become_one_line_driver_errors() -> None:
    host = "172.16.0.2"
    reflex = franky.ControlException(
        'libfranka: Move command aborted: motion aborted by reflex! ["cartesian_reflex"]'
    )
    cases = [
        (reflex, FrankaReflexError, "recover"),
        (
            franky.ControlException("libfranka: Move command preempted!"),
            FrankaControlError,
            "recover",
        ),
        (
            franky.NetworkException("libfranka: UDP receive: Timeout"),
            FrankaConnectionError,
            "network",
        ),
        (RuntimeError("Net Exception"), FrankaConnectionError, "network"),
        (franky.GripperException("libfranka gripper: command failed"), FrankaGripperError, "Hand"),
    ]
    for exc, kind, hint in cases:
        error = franka_error(exc, host, '["cartesian_reflex"]')
        assert type(error) is kind, exc
        assert isinstance(error, DriverError)
        message = str(error)
        assert host in message and hint in message and "\n" not in message
    assert "cartesian_reflex" in str(franka_error(reflex, host, '["cartesian_reflex"]'))


# ------------------------------------------------------------------------ the simulator


def test_sim_reset_restores_the_initial_state(sim: FrankySim) -> None:
    with FrankaDriver(sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR)) as driver:
        q = driver.read().q
        q[0] += 0.3
        reach(driver, Command(JP, joint_position=q, gripper_width=0.03))
    address = sim.reset()
    with FrankaDriver(sim.driver_config()) as driver:
        state = driver.read()
    assert address == sim.address
    np.testing.assert_allclose(state.q, FR3_READY_Q, atol=2e-3)
    assert state.gripper_width == pytest.approx(0.08, abs=1e-3)


def test_sims_run_side_by_side_on_their_own_addresses(sim: FrankySim) -> None:
    with FrankySim(initial_q=np.add(FR3_READY_Q, 0.1), gripper_width_m=0.02) as other:
        assert other.address != sim.address
        with FrankaDriver(other.driver_config()) as driver:
            state = driver.read()
        np.testing.assert_allclose(state.q, np.add(FR3_READY_Q, 0.1), atol=2e-3)
        assert state.gripper_width == pytest.approx(0.02, abs=1e-3)
    assert not other.running
    with pytest.raises(DriverError, match="not running"):
        _ = other.address


def test_a_sim_that_cannot_start_says_why() -> None:
    with pytest.raises(DriverError, match=r"franky-sim ended \(start\).*10\.1\.2\.3") as info:
        FrankySim(hostnames=["10.1.2.3"]).start()  # not a local address: nothing can bind it
    assert "\n" not in str(info.value)
