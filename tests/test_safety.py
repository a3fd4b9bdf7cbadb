"""The safety layer: nothing a policy sends escapes the limits; watchdog, e-stop, bad specs.

The property tests feed arbitrary command sequences (every mode, NaN/inf/huge values, random
jumps, missing and misshapen fields, stalls) through the layer against the MuJoCo Panda's spec
and a synthetic one, and check every command that comes out against limits computed here from
the spec and the config. Timing is driven by a FakeClock.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robolearn.control.clock import FakeClock
from robolearn.control.safety import (
    EStop,
    SafeCommand,
    SafetyConfig,
    SafetyLayer,
)
from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    FloatArray,
    GripperSpec,
    JointSpec,
    RobotSpec,
    RobotState,
)
from robolearn.drivers.mujoco_panda import HOME_Q, MujocoPandaDriver

JP, JI, JT, EE = (
    ControlMode.JOINT_POSITION,
    ControlMode.JOINT_IMPEDANCE,
    ControlMode.JOINT_TORQUE,
    ControlMode.EE_DELTA,
)
TOL = 1e-9
PANDA_SPEC = MujocoPandaDriver().spec
SYNTHETIC_SPEC = RobotSpec(
    name="synthetic",
    joints=(
        JointSpec("a", -1.0, 2.0, max_velocity=1.5, max_effort=10.0),
        JointSpec("b", 0.0, 0.5, max_velocity=0.5, max_effort=3.0),
        JointSpec("c", -3.0, -1.0, max_velocity=4.0, max_effort=50.0),
    ),
    control_modes=frozenset(ControlMode),
    control_hz=100.0,
    max_control_hz=1000.0,
    gripper=GripperSpec(min_width=0.01, max_width=0.1, max_force=20.0),
)
SPECS = [pytest.param(PANDA_SPEC, id="panda"), pytest.param(SYNTHETIC_SPEC, id="synthetic")]
BOX_CENTER_M = np.array([0.5, 0.0, 0.4])


def make_state(q: FloatArray, ee_pos: FloatArray = BOX_CENTER_M, t: float = 0.0) -> RobotState:
    """A reading at rest with joint positions ``q`` and the end effector at ``ee_pos``."""
    q = np.asarray(q, dtype=np.float64)
    return RobotState(
        timestamp=t,
        q=q.copy(),
        dq=np.zeros_like(q),
        tau=np.zeros_like(q),
        ee_pos=np.asarray(ee_pos, dtype=np.float64).copy(),
        ee_quat=np.array([1.0, 0.0, 0.0, 0.0]),
    )


def mid_q(spec: RobotSpec) -> FloatArray:
    return (spec.limits("lower") + spec.limits("upper")) / 2


def jp(q: FloatArray, width: float | None = None) -> Command:
    return Command(JP, joint_position=np.asarray(q, dtype=np.float64), gripper_width=width)


def assert_close(actual: FloatArray | None, expected: object) -> None:
    """``actual`` is set and equal to ``expected`` to float precision."""
    assert actual is not None
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64))


def assert_equal(actual: FloatArray | None, expected: object) -> None:
    """``actual`` is set and exactly ``expected``."""
    assert actual is not None
    np.testing.assert_array_equal(actual, np.asarray(expected, dtype=np.float64))


# ----------------------------------------------------------------- independent checks


@dataclasses.dataclass
class Reference:
    """What the limits of the next command are relative to, tracked by the test itself."""

    joint_target: FloatArray | None = None
    torque: FloatArray | None = None


def check_joint_target(
    spec: RobotSpec, cfg: SafetyConfig, dt_s: float, q: FloatArray, ref: FloatArray
) -> None:
    """``q`` within the limits (a joint inside the margin may stay, not go further) and one
    step of ``ref``."""
    lower, upper = spec.limits("lower"), spec.limits("upper")
    low = np.maximum(lower, np.minimum(lower + cfg.joint_margin_rad, ref))
    high = np.minimum(upper, np.maximum(upper - cfg.joint_margin_rad, ref))
    assert (q >= low - TOL).all() and (q <= high + TOL).all(), (q, low, high)
    vel_step = spec.limits("max_velocity") * dt_s
    step = (
        vel_step * cfg.velocity_scale
        if cfg.max_joint_step_rad is None
        else np.minimum(cfg.max_joint_step_rad, vel_step)
    )
    assert (np.abs(q - ref) <= step + TOL).all(), (q, ref, step)


def check_torque(
    spec: RobotSpec, cfg: SafetyConfig, tau: FloatArray, ref: FloatArray | None, state: RobotState
) -> None:
    limit = spec.limits("max_effort") * cfg.torque_scale
    assert (np.abs(tau) <= limit + TOL).all(), (tau, limit)
    if cfg.max_torque_step_nm is not None:
        ref = np.zeros_like(tau) if ref is None else ref
        # The step limit yields only to the immediate cut at a limit (tau == 0).
        ok = (np.abs(tau - ref) <= cfg.max_torque_step_nm + TOL) | (tau == 0)
        assert ok.all(), (tau, ref)
    lower = spec.limits("lower") + cfg.joint_margin_rad
    upper = spec.limits("upper") - cfg.joint_margin_rad
    assert not ((state.q >= upper) & (tau > 0)).any(), "torque pushes past the upper limit"
    assert not ((state.q <= lower) & (tau < 0)).any(), "torque pushes past the lower limit"
    fast = np.abs(state.dq) > spec.limits("max_velocity") * cfg.velocity_scale
    assert not (fast & (tau * state.dq > 0)).any(), "torque accelerates an over-speed joint"


def check_ee_delta(cfg: SafetyConfig, cmd: Command, state: RobotState) -> None:
    assert cmd.ee_delta_pos is not None and cmd.ee_delta_rot is not None
    assert np.linalg.norm(cmd.ee_delta_pos) <= cfg.max_ee_step_m + TOL
    assert np.linalg.norm(cmd.ee_delta_rot) <= cfg.max_ee_rot_step_rad + TOL
    target = state.ee_pos + cmd.ee_delta_pos
    low = np.minimum(cfg.workspace_low_m, state.ee_pos)
    high = np.maximum(cfg.workspace_high_m, state.ee_pos)
    assert (target >= low - TOL).all() and (target <= high + TOL).all(), target


def check_sent(
    spec: RobotSpec, layer: SafetyLayer, cmd: Command, state: RobotState, ref: Reference
) -> None:
    """Every field of ``cmd`` finite and inside the limits; then update ``ref``."""
    cfg = layer.config
    assert cmd.mode in spec.control_modes
    for value in cmd.to_dict().values():
        if not isinstance(value, str):
            assert np.isfinite(np.asarray(value, dtype=np.float64)).all(), cmd
    if cmd.mode in (JP, JI):
        assert cmd.joint_position is not None
        measured = np.clip(state.q, spec.limits("lower"), spec.limits("upper"))
        base = ref.joint_target if ref.joint_target is not None else measured
        check_joint_target(spec, cfg, layer.dt_s, cmd.joint_position, base)
    if cmd.mode is JI:
        assert cmd.stiffness is not None and cmd.damping is not None
        assert ((cmd.stiffness >= 0) & (cmd.stiffness <= cfg.max_stiffness_nm_per_rad)).all()
        assert ((cmd.damping >= 0) & (cmd.damping <= cfg.max_damping_nms_per_rad)).all()
        if cmd.joint_torque is not None:
            limit = spec.limits("max_effort") * cfg.torque_scale
            assert (np.abs(cmd.joint_torque) <= limit + TOL).all()
    if cmd.mode is JT:
        assert cmd.joint_torque is not None
        check_torque(spec, cfg, cmd.joint_torque, ref.torque, state)
    if cmd.mode is EE:
        check_ee_delta(cfg, cmd, state)
    if cmd.gripper_width is not None:
        assert spec.gripper is not None
        assert spec.gripper.min_width <= cmd.gripper_width <= spec.gripper.max_width
    ref.joint_target = cmd.joint_position.copy() if cmd.mode in (JP, JI) else None  # type: ignore[union-attr]
    ref.torque = cmd.joint_torque.copy() if cmd.mode is JT else None  # type: ignore[union-attr]


# -------------------------------------------------------------------------- strategies

VALUES = st.one_of(
    st.floats(-4.0, 4.0),  # random jumps across (and beyond) the joint ranges
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, float("nan"), float("inf"), -float("inf"), 0.0]),
)
"""Mostly plausible, often absurd numbers."""
SANE = st.floats(-4.0, 4.0)


def vectors(n: int) -> st.SearchStrategy[FloatArray]:
    """Arrays of ``n`` values: some all plausible, some with NaN/inf/huge entries."""
    return st.one_of(
        hnp.arrays(np.float64, n, elements=SANE), hnp.arrays(np.float64, n, elements=VALUES)
    )


def maybe_vectors(n: int) -> st.SearchStrategy[FloatArray | None]:
    """Mostly well-formed arrays, sometimes missing or of the wrong length."""
    return st.one_of(vectors(n), vectors(n), vectors(n), st.none(), vectors(n + 1))


@st.composite
def commands(draw: st.DrawFn, dof: int) -> Command | None:
    """A command of any mode with any fields, or ``None`` (no command this tick)."""
    if draw(st.integers(0, 9)) == 0:
        return None
    return Command(
        mode=draw(st.sampled_from(list(ControlMode))),
        joint_position=draw(maybe_vectors(dof)),
        joint_torque=draw(maybe_vectors(dof)),
        stiffness=draw(st.one_of(maybe_vectors(dof), hnp.arrays(np.float64, dof, elements=VALUES))),
        damping=draw(maybe_vectors(dof)),
        ee_delta_pos=draw(maybe_vectors(3)),
        ee_delta_rot=draw(st.one_of(st.none(), maybe_vectors(3))),
        gripper_width=draw(st.one_of(st.none(), SANE, VALUES)),
    )


configs = st.builds(
    SafetyConfig,
    max_joint_step_rad=st.one_of(st.none(), st.floats(1e-3, 1.0)),
    velocity_scale=st.floats(0.05, 1.0),
    joint_margin_rad=st.sampled_from([0.0, 0.02, 0.1]),
    max_ee_step_m=st.floats(1e-3, 0.1),
    max_ee_rot_step_rad=st.floats(1e-3, 0.5),
    torque_scale=st.floats(0.1, 1.0),
    max_torque_step_nm=st.one_of(st.none(), st.floats(0.1, 20.0)),
    watchdog_timeout_s=st.floats(0.02, 0.5),
)


def simulate(state: RobotState, sent: Command, spec: RobotSpec, rng_dq: FloatArray) -> RobotState:
    """A crude arm: joint targets are reached, EE deltas applied, torques nudge the joints."""
    q, ee = state.q.copy(), state.ee_pos.copy()
    if sent.mode in (JP, JI):
        assert sent.joint_position is not None
        q = sent.joint_position.copy()
    elif sent.mode is JT:
        assert sent.joint_torque is not None
        q = np.clip(
            q + 0.05 * np.sign(sent.joint_torque), spec.limits("lower"), spec.limits("upper")
        )
    elif sent.mode is EE:
        assert sent.ee_delta_pos is not None
        ee = ee + sent.ee_delta_pos
    new = make_state(q, ee, state.timestamp)
    new.dq = rng_dq
    return new


# ---------------------------------------------------------------------- property tests


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cfg=configs)
def test_no_command_sequence_escapes_the_limits(
    spec: RobotSpec, data: st.DataObject, cfg: SafetyConfig
) -> None:
    dof = spec.dof
    layer = SafetyLayer(spec, cfg)
    lower = spec.limits("lower") + cfg.joint_margin_rad
    upper = spec.limits("upper") - cfg.joint_margin_rad
    frac = data.draw(hnp.arrays(np.float64, dof, elements=st.floats(0.0, 1.0)))
    box_low, box_high = np.array(cfg.workspace_low_m), np.array(cfg.workspace_high_m)
    box_frac = data.draw(hnp.arrays(np.float64, 3, elements=st.floats(0.0, 1.0)))
    state = make_state(lower + frac * (upper - lower), box_low + box_frac * (box_high - box_low))
    clock, ref = FakeClock(), Reference()
    layer.reset(state)
    ref.joint_target = state.q.copy()
    estop_events = st.sampled_from([None] * 8 + ["trigger", "reset"])
    steps = st.tuples(commands(dof), st.floats(0.0, 0.3), estop_events)
    for cmd, elapsed_s, estop_event in data.draw(st.lists(steps, max_size=25)):
        if estop_event == "trigger":
            layer.estop.trigger("test")
        elif estop_event == "reset":
            layer.estop.reset()
        held_target = ref.joint_target
        safe = layer.filter(cmd, state, clock.now())
        check_sent(spec, layer, safe.command, state, ref)
        if layer.estop.is_set():
            assert safe.held and "estop_hold" in safe.interventions
            if held_target is not None:
                assert_equal(safe.command.joint_position, held_target)
        dq = data.draw(hnp.arrays(np.float64, dof, elements=st.floats(-10.0, 10.0)))
        state = simulate(state, safe.command, spec, dq)
        clock.advance(elapsed_s)


def valid_command(mode: ControlMode, q: FloatArray) -> Command:
    """A finite command of ``mode`` that holds ``q``, with a gripper width."""
    dof = q.shape[0]
    return Command(
        mode,
        joint_position=q.copy() if mode in (JP, JI) else None,
        stiffness=np.full(dof, 100.0) if mode is JI else None,
        damping=np.full(dof, 10.0) if mode is JI else None,
        joint_torque=np.zeros(dof) if mode in (JI, JT) else None,
        ee_delta_pos=np.zeros(3) if mode is EE else None,
        ee_delta_rot=np.zeros(3) if mode is EE else None,
        gripper_width=0.02,
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize(
    ("mode", "name"),
    [
        (JP, "joint_position"),
        (JI, "joint_position"),
        (JI, "stiffness"),
        (JI, "damping"),
        (JI, "joint_torque"),
        (JT, "joint_torque"),
        (EE, "ee_delta_pos"),
        (EE, "ee_delta_rot"),
        (EE, "gripper_width"),
    ],
)
def test_a_non_finite_value_anywhere_drops_the_whole_command(
    mode: ControlMode, name: str, bad: float
) -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec)
    q0 = mid_q(spec)
    state = make_state(q0)
    layer.filter(jp(q0, 0.05), state, 0.0)
    good = valid_command(mode, q0)
    assert not layer.filter(good, state, 0.01).held
    layer.filter(jp(q0, 0.05), state, 0.02)
    if name == "gripper_width":
        broken = good.with_(gripper_width=bad)
    else:
        value = np.array(getattr(good, name))
        value[-1] = bad
        broken = good.with_(**{name: value})
    safe = layer.filter(broken, state, 0.03)
    assert safe.interventions == ("nan_rejected",) and safe.held
    assert safe.command.mode is JP
    assert_equal(safe.command.joint_position, q0)
    assert safe.command.gripper_width == 0.05, "nothing of a rejected command is applied"


# ------------------------------------------------------------------------ each limit


def test_joint_step_starts_from_the_measured_position_and_then_the_last_target() -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec, SafetyConfig(velocity_scale=0.5))
    step = spec.limits("max_velocity") * 0.01 * 0.5
    assert np.allclose(layer.limits.max_step_rad, step)
    q0 = mid_q(spec)
    state = make_state(q0)
    first = layer.filter(jp(q0 + 0.2), state, 0.0)
    assert first.interventions == ("joint_step",)
    assert_close(first.command.joint_position, q0 + step)
    # The measured position has not moved (the arm lags): the step is from the last target.
    second = layer.filter(jp(q0 + 0.2), state, 0.01)
    assert_close(second.command.joint_position, q0 + 2 * step)


def test_joint_targets_are_clipped_to_the_margin() -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec, SafetyConfig(joint_margin_rad=0.1), dt_s=100.0)  # no step limit
    state = make_state(mid_q(spec))
    safe = layer.filter(jp(spec.limits("upper") + 5.0), state, 0.0)
    assert "joint_limit" in safe.interventions
    assert_close(safe.command.joint_position, spec.limits("upper") - 0.1)


def test_a_joint_inside_the_margin_may_stay_but_not_go_further_out() -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec, SafetyConfig(joint_margin_rad=0.1), dt_s=100.0)
    q = spec.limits("upper") - 0.05  # inside the margin, e.g. after a reset there
    state = make_state(q)
    stay = layer.filter(jp(q), state, 0.0)
    assert_close(stay.command.joint_position, q)
    out = layer.filter(jp(q + 0.04), state, 0.01)
    assert_close(out.command.joint_position, q)
    assert out.interventions == ("joint_limit",)


def test_impedance_gains_and_feed_forward_are_clipped() -> None:
    spec = SYNTHETIC_SPEC
    cfg = SafetyConfig(max_stiffness_nm_per_rad=500.0, max_damping_nms_per_rad=50.0)
    layer = SafetyLayer(spec, cfg)
    q0 = mid_q(spec)
    cmd = Command(
        JI,
        joint_position=q0,
        stiffness=np.array([-1.0, 100.0, 1e9]),
        damping=np.array([10.0, -5.0, 1e9]),
        joint_torque=np.array([1e6, -1e6, 0.0]),
    )
    safe = layer.filter(cmd, make_state(q0), 0.0)
    assert set(safe.interventions) == {"gain_limit", "torque_limit"}
    assert_equal(safe.command.stiffness, [0.0, 100.0, 500.0])
    assert_equal(safe.command.damping, [10.0, 0.0, 50.0])
    assert_equal(safe.command.joint_torque, [10.0, -3.0, 0.0])


def test_ee_delta_is_kept_in_the_box_and_shortened() -> None:
    cfg = SafetyConfig(max_ee_step_m=0.05, max_ee_rot_step_rad=0.1)
    layer = SafetyLayer(PANDA_SPEC, cfg)
    near_floor = np.array([0.5, 0.0, 0.01])
    state = make_state(HOME_Q, near_floor)
    down = Command(EE, ee_delta_pos=np.array([0.0, 0.0, -0.04]), ee_delta_rot=np.array([1.0, 0, 0]))
    safe = layer.filter(down, state, 0.0)
    assert set(safe.interventions) == {"ee_workspace", "ee_rot_step"}
    assert_close(near_floor + safe.command.ee_delta_pos, [0.5, 0.0, 0.0])
    assert_close(safe.command.ee_delta_rot, [0.1, 0.0, 0.0])
    far = layer.filter(Command(EE, ee_delta_pos=np.array([1e300, 0.0, 0.0])), state, 0.01)
    assert set(far.interventions) == {"ee_workspace", "ee_step"}
    assert_close(far.command.ee_delta_pos, [0.05, 0.0, 0.0])


def test_torque_is_scaled_rate_limited_and_cut_at_limits() -> None:
    spec = SYNTHETIC_SPEC
    cfg = SafetyConfig(torque_scale=0.5, max_torque_step_nm=1.0, joint_margin_rad=0.01)
    layer = SafetyLayer(spec, cfg)
    state = make_state(mid_q(spec))
    big = Command(JT, joint_torque=np.array([100.0, -100.0, 100.0]))
    first = layer.filter(big, state, 0.0)
    assert set(first.interventions) == {"torque_limit", "torque_step"}
    assert_close(first.command.joint_torque, [1.0, -1.0, 1.0])
    q = mid_q(spec)
    q[0] = spec.limits("upper")[0] - 0.005  # joint a inside the margin of its upper limit
    near = make_state(q)
    near.dq = np.array([0.0, -3.0, 0.0])  # joint b over-speeding downwards
    cut = layer.filter(Command(JT, joint_torque=np.array([1.0, -1.0, 0.5])), near, 0.01)
    assert set(cut.interventions) == {"joint_limit", "joint_velocity"}
    assert_close(cut.command.joint_torque, [0.0, 0.0, 0.5])


def test_gripper_width_is_clipped_and_dropped_without_a_gripper() -> None:
    layer = SafetyLayer(SYNTHETIC_SPEC)
    state = make_state(mid_q(SYNTHETIC_SPEC))
    wide = layer.filter(jp(state.q, 5.0), state, 0.0)
    assert wide.command.gripper_width == 0.1 and wide.interventions == ("gripper_limit",)
    bare = SafetyLayer(dataclasses.replace(SYNTHETIC_SPEC, gripper=None))
    safe = bare.filter(jp(state.q, 0.05), state, 0.0)
    assert safe.command.gripper_width is None and safe.interventions == ("gripper_unsupported",)


def test_malformed_and_unsupported_commands_hold() -> None:
    spec = dataclasses.replace(SYNTHETIC_SPEC, control_modes=frozenset({JP, EE}))
    layer = SafetyLayer(spec)
    q0 = mid_q(spec)
    state = make_state(q0)
    layer.filter(jp(q0), state, 0.0)
    cases = {
        "mode_unsupported": Command(JT, joint_torque=np.zeros(3)),
        "malformed": Command(JP, joint_position=np.zeros(4)),
    }
    for kind, cmd in cases.items():
        safe = layer.filter(cmd, state, 0.01)
        assert safe.interventions == (kind,) and safe.held
        assert_equal(safe.command.joint_position, q0)
    missing = layer.filter(Command(EE), state, 0.02)
    assert missing.interventions == ("malformed",)


def test_workspace_box_bounds_joint_targets_through_forward_kinematics() -> None:
    drv = MujocoPandaDriver()
    fk = lambda q: drv.ik().forward(q)[0]  # noqa: E731
    cfg = SafetyConfig(max_joint_step_rad=0.5, workspace_low_m=(0.15, -0.6, 0.4))
    layer = SafetyLayer(drv.spec, cfg, dt_s=1.0, ee_position_fn=fk)
    state = make_state(HOME_Q, fk(HOME_Q))
    down = HOME_Q + np.array([0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])  # shoulder forward: EE drops
    assert fk(down)[2] < 0.4
    safe = layer.filter(jp(down), state, 0.0)
    assert "ee_workspace" in safe.interventions
    q = safe.command.joint_position
    assert q is not None and fk(q)[2] >= 0.4 - TOL
    assert 0.0 < q[1] - HOME_Q[1] < 0.5, "moves as far as the box allows, not nowhere"


# --------------------------------------------------------------------------- watchdog


@pytest.fixture
def safety_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="robolearn.safety")
    yield caplog


def warnings_about(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and word in r.getMessage()
    ]


def test_watchdog_holds_a_stalled_policy_then_recovers(
    safety_log: pytest.LogCaptureFixture,
) -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec, SafetyConfig(watchdog_timeout_s=0.1), dt_s=0.01)
    clock = FakeClock()
    q0 = mid_q(spec)
    state = make_state(q0)
    layer.reset(state)
    target = q0 + 0.001
    assert not layer.filter(jp(target, 0.05), state, clock.now()).intervened
    sagging = make_state(q0 - 0.2)  # the arm moves; a hold must not follow it
    results: list[tuple[float, SafeCommand]] = []
    for _ in range(30):  # the policy stalls for 0.3 s
        clock.advance(0.01)
        results.append((clock.now(), layer.filter(None, sagging, clock.now())))
    late = [r for t, r in results if t > 0.1]
    assert all(not r.intervened for t, r in results if t <= 0.1), "repeat within the deadline"
    assert all(r.interventions == ("watchdog_hold",) and r.held for r in late)
    for _, r in results:
        assert_close(r.command.joint_position, target)
        assert r.command.gripper_width == 0.05
    assert layer.counts["watchdog_hold"] == len(late) >= 19
    assert layer.onsets["watchdog_hold"] == 1
    assert len(warnings_about(safety_log, "watchdog")) == 1, "logged once per stall"
    clock.advance(0.01)
    back = layer.filter(jp(target + 0.001), sagging, clock.now())
    assert not back.intervened and not back.held
    for _ in range(15):  # a second stall counts as a second onset
        clock.advance(0.01)
        layer.filter(None, sagging, clock.now())
    assert layer.onsets["watchdog_hold"] == 2


def test_watchdog_fires_when_the_policy_never_answers() -> None:
    layer = SafetyLayer(SYNTHETIC_SPEC, SafetyConfig(watchdog_timeout_s=0.05))
    state = make_state(mid_q(SYNTHETIC_SPEC))
    clock = FakeClock(10.0)
    first = layer.filter(None, state, clock.now())
    assert first.held and not first.intervened
    clock.advance(0.06)
    late = layer.filter(None, state, clock.now())
    assert late.interventions == ("watchdog_hold",)
    assert_equal(late.command.joint_position, state.q)


def test_an_ee_delta_is_not_repeated_while_waiting() -> None:
    layer = SafetyLayer(PANDA_SPEC)
    state = make_state(HOME_Q)
    layer.filter(Command(EE, ee_delta_pos=np.array([0.01, 0.0, 0.0])), state, 0.0)
    again = layer.filter(None, state, 0.05)
    assert again.command.mode is EE and not again.intervened
    assert_equal(again.command.ee_delta_pos, np.zeros(3))


def test_a_stale_command_is_dropped_and_does_not_feed_the_watchdog() -> None:
    layer = SafetyLayer(SYNTHETIC_SPEC, SafetyConfig(watchdog_timeout_s=0.1))
    q0 = mid_q(SYNTHETIC_SPEC)
    state = make_state(q0)
    layer.filter(jp(q0), state, 0.0)
    old = layer.filter(jp(q0 + 0.001), state, 0.5, cmd_time_s=0.3)
    assert set(old.interventions) == {"stale_command", "watchdog_hold"}
    assert_equal(old.command.joint_position, q0)
    ok = layer.filter(jp(q0 + 0.001), state, 0.6, cmd_time_s=0.55)
    assert not ok.intervened


# ----------------------------------------------------------------------------- e-stop


def test_estop_latches_holds_where_it_latched_and_needs_an_explicit_reset(
    safety_log: pytest.LogCaptureFixture,
) -> None:
    spec = SYNTHETIC_SPEC
    layer = SafetyLayer(spec)
    q0 = mid_q(spec)
    state = make_state(q0)
    layer.reset(state)
    latched_at = layer.filter(jp(q0 + 0.002, 0.03), state, 0.0).command.joint_position
    layer.estop.trigger("operator")
    assert layer.estop.is_set() and layer.estop.reason == "operator"
    for i in range(1, 20):  # the policy keeps going; nothing of it gets through
        safe = layer.filter(jp(q0 + 0.5, 0.09), make_state(q0 + 0.01 * i), i * 0.01)
        assert safe.interventions == ("estop_hold",) and safe.held
        assert_equal(safe.command.joint_position, latched_at)
        assert safe.command.gripper_width == 0.03
    assert layer.counts["estop_hold"] == 19 and layer.onsets["estop_hold"] == 1
    assert len(warnings_about(safety_log, "e-stop")) == 2  # latched (EStop) + holding (layer)
    layer.reset(state)  # a new episode does not release the e-stop
    assert layer.filter(jp(q0), state, 1.0).interventions == ("estop_hold",)
    layer.estop.reset()
    resumed = layer.filter(jp(q0 + 0.1), state, 1.01)
    assert resumed.interventions == ("joint_step",), "resumes step-limited from the hold"


def test_estop_after_ee_commands_holds_the_position_measured_when_it_latched() -> None:
    layer = SafetyLayer(PANDA_SPEC)
    q1 = HOME_Q + 0.01
    layer.filter(Command(EE, ee_delta_pos=np.array([0.0, 0.01, 0.0])), make_state(HOME_Q), 0.0)
    layer.estop.trigger()
    first = layer.filter(Command(EE, ee_delta_pos=np.ones(3)), make_state(q1), 0.01)
    later = layer.filter(Command(EE, ee_delta_pos=np.ones(3)), make_state(q1 + 0.1), 0.02)
    for safe in (first, later):
        assert safe.command.mode is JP
        assert_close(safe.command.joint_position, q1)


def test_estop_can_be_triggered_from_another_thread_and_is_shared() -> None:
    estop = EStop()
    layers = [SafetyLayer(SYNTHETIC_SPEC, estop=estop) for _ in range(2)]
    threading.Thread(target=estop.trigger, args=("monitor",)).start()
    assert estop.wait(timeout_s=5.0)
    estop.trigger("second")
    assert estop.reason == "monitor" and estop.trigger_count == 1
    state = make_state(mid_q(SYNTHETIC_SPEC))
    assert all(
        layer.filter(jp(state.q), state, 0.0).interventions == ("estop_hold",) for layer in layers
    )
    estop.reset()
    assert not estop.is_set() and estop.reason is None


# ---------------------------------------------------------------------- hold per mode


@pytest.mark.parametrize(
    ("modes", "hold_mode"),
    [
        ({JI, JT}, JI),
        ({EE, JT}, EE),
        ({JT}, JT),
    ],
)
def test_hold_uses_the_best_mode_the_robot_has(
    modes: set[ControlMode], hold_mode: ControlMode
) -> None:
    spec = dataclasses.replace(SYNTHETIC_SPEC, control_modes=frozenset(modes))
    layer = SafetyLayer(spec)
    state = make_state(mid_q(spec))
    layer.estop.trigger()
    safe = layer.filter(None, state, 0.0)
    assert safe.command.mode is hold_mode and safe.held
    if hold_mode is JI:
        assert_equal(safe.command.joint_position, state.q)
        assert_equal(safe.command.stiffness, np.full(3, 3000.0))
    if hold_mode is EE:
        assert_equal(safe.command.ee_delta_pos, np.zeros(3))
    if hold_mode is JT:
        assert_equal(safe.command.joint_torque, np.zeros(3))


def test_an_invalid_state_holds_the_last_target() -> None:
    layer = SafetyLayer(SYNTHETIC_SPEC)
    q0 = mid_q(SYNTHETIC_SPEC)
    layer.filter(jp(q0), make_state(q0), 0.0)
    broken = make_state(np.array([np.nan, 0.0, 0.0]))
    safe = layer.filter(jp(q0 + 0.001), broken, 0.01)
    assert safe.interventions == ("state_invalid",)
    assert_equal(safe.command.joint_position, q0)


def test_reset_keeps_counts_unless_asked() -> None:
    layer = SafetyLayer(SYNTHETIC_SPEC)
    state = make_state(mid_q(SYNTHETIC_SPEC))
    layer.filter(jp(state.q + 1.0), state, 0.0)
    assert layer.counts["joint_step"] == 1
    layer.reset(state)
    assert layer.counts["joint_step"] == 1
    layer.reset(state, clear_counts=True)
    assert sum(layer.counts.values()) == 0 and sum(layer.onsets.values()) == 0


# ---------------------------------------------------------------------------- bad input


def with_joint(index: int, **changes: float) -> RobotSpec:
    joints = list(SYNTHETIC_SPEC.joints)
    joints[index] = dataclasses.replace(joints[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(SYNTHETIC_SPEC, joints=tuple(joints))


@pytest.mark.parametrize(
    ("spec", "cfg", "message"),
    [
        (with_joint(1, lower=float("nan")), SafetyConfig(), "'b': position limits"),
        (with_joint(2, upper=float("inf")), SafetyConfig(), "'c': position limits"),
        (with_joint(0, lower=2.0), SafetyConfig(), "'a': lower limit 2.0 must be below"),
        (with_joint(1, max_velocity=0.0), SafetyConfig(), "'b': velocity limit"),
        (with_joint(2, max_effort=float("nan")), SafetyConfig(), "'c': effort limit"),
        (SYNTHETIC_SPEC, SafetyConfig(joint_margin_rad=0.3), "'b': joint_margin_rad=0.3"),
        (
            dataclasses.replace(SYNTHETIC_SPEC, gripper=None),
            SafetyConfig(require_gripper=True),
            "no gripper",
        ),
        (
            dataclasses.replace(SYNTHETIC_SPEC, gripper=GripperSpec(0.1, 0.1, 1.0)),
            SafetyConfig(),
            "min_width < max_width",
        ),
        (dataclasses.replace(SYNTHETIC_SPEC, joints=()), SafetyConfig(), "no joints"),
        (
            dataclasses.replace(SYNTHETIC_SPEC, control_modes=frozenset()),
            SafetyConfig(),
            "no control modes",
        ),
    ],
)
def test_bad_specs_are_refused_at_start(spec: RobotSpec, cfg: SafetyConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        SafetyLayer(spec, cfg)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"velocity_scale": 0.0}, "velocity_scale"),
        ({"velocity_scale": 1.5}, "velocity_scale"),
        ({"torque_scale": float("nan")}, "torque_scale"),
        ({"joint_margin_rad": -0.1}, "joint_margin_rad"),
        ({"max_ee_step_m": 0.0}, "max_ee_step_m"),
        ({"watchdog_timeout_s": float("inf")}, "watchdog_timeout_s"),
        ({"max_joint_step_rad": -1.0}, "max_joint_step_rad"),
        ({"workspace_low_m": (0.9, -0.6, 0.0)}, "low < high"),
        ({"workspace_high_m": (0.9, 0.6)}, "3 values"),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SafetyConfig(**changes)  # type: ignore[arg-type]


def test_bad_control_period_is_refused() -> None:
    with pytest.raises(ConfigError, match="dt_s"):
        SafetyLayer(SYNTHETIC_SPEC, dt_s=0.0)


# -------------------------------------------------------------------------- integration


def garbage_command(rng: np.random.Generator, dof: int) -> Command | None:
    """A seeded random command of any mode, often with absurd values."""
    if rng.random() < 0.1:
        return None

    def vec(n: int, scale: float) -> FloatArray:
        v = rng.normal(scale=scale, size=n)
        if rng.random() < 0.15:
            v[rng.integers(n)] = rng.choice([np.nan, np.inf, -np.inf, 1e12, -1e12])
        return v

    mode = ControlMode(rng.choice([m.value for m in ControlMode]))
    return Command(
        mode,
        joint_position=HOME_Q + vec(dof, 1.5),
        joint_torque=vec(dof, 40.0),
        stiffness=np.abs(vec(dof, 800.0)),
        damping=np.abs(vec(dof, 40.0)),
        ee_delta_pos=vec(3, 0.1),
        ee_delta_rot=vec(3, 0.5),
        gripper_width=float(rng.normal(0.04, 0.1)),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mujoco_panda_behind_the_layer_never_gets_anything_out_of_limits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    with MujocoPandaDriver() as drv:
        assert isinstance(drv, MujocoPandaDriver)
        spec = drv.spec
        cfg = SafetyConfig(joint_margin_rad=0.05, torque_scale=0.3, max_torque_step_nm=5.0)
        fk = lambda q: drv.ik().forward(q)[0]  # noqa: E731
        layer = SafetyLayer(spec, cfg, ee_position_fn=fk)
        state = drv.read()
        layer.reset(state)
        ref = Reference(joint_target=state.q.copy())
        lower, upper = spec.limits("lower"), spec.limits("upper")
        for _ in range(150):
            state = drv.read()
            safe = layer.filter(garbage_command(rng, spec.dof), state, drv.now())
            sent = safe.command
            ee_ref = fk(ref.joint_target if ref.joint_target is not None else state.q)
            check_sent(spec, layer, sent, state, ref)
            applied = drv.command(sent)
            if sent.mode in (JP, JI):
                assert sent.joint_position is not None
                # The driver had nothing left to clip: what it applied is what was sent.
                assert_equal(applied.joint_position, sent.joint_position)
                ee = fk(sent.joint_position)
                assert (ee >= np.minimum(cfg.workspace_low_m, ee_ref) - TOL).all()
                assert (ee <= np.maximum(cfg.workspace_high_m, ee_ref) + TOL).all()
            if sent.mode is EE:
                assert_equal(applied.ee_delta_pos, sent.ee_delta_pos)
            drv.wait(layer.dt_s)
            q = drv.joint_positions()
            assert (q >= lower - 0.02).all() and (q <= upper + 0.02).all(), q
        assert sum(layer.counts.values()) > 0
