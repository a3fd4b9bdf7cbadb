"""The safety layer between any policy or teleop device and any driver.

Every command bound for a driver goes through :meth:`SafetyLayer.filter` once per control tick;
what comes out is always inside the limits, and it is what must be sent and recorded::

    layer = SafetyLayer(driver.spec, SafetyConfig(joint_margin_rad=0.05))
    layer.reset(driver.read())
    for tick in range(n):
        state = driver.read()
        safe = layer.filter(policy_command_or_none, state, now_s=driver.now())
        applied = driver.command(safe.command)  # record ``applied``: what was really sent

What it enforces, per control mode:

* ``JOINT_POSITION`` / ``JOINT_IMPEDANCE``: joint targets inside the position limits (shrunk by
  ``joint_margin_rad``), moving at most ``max_joint_step_rad`` per tick from the last target sent
  (from the measured position on the first tick, after a reset or after a torque or
  end-effector command); stiffness and damping inside ``[0, max]``; feed-forward torque inside
  the scaled effort limits; with an ``ee_position_fn`` (forward kinematics) the end effector of
  the target inside the workspace box.
* ``EE_DELTA``: the delta keeps the measured end effector inside the workspace box and its
  translation and rotation norms are at most ``max_ee_step_m`` / ``max_ee_rot_step_rad``.
  Joint speed then rests on the driver's inverse kinematics, which caps its own step.
* ``JOINT_TORQUE``: torques inside ``torque_scale`` × the effort limits, changing at most
  ``max_torque_step_nm`` per tick; a joint at its (margin-shrunk) position limit, or faster than
  its scaled velocity limit, gets no torque pushing it further that way (this immediate cut takes
  precedence over the step limit). Torque control cannot stop momentum: give it a margin.
* The gripper width inside the spec's ``[min_width, max_width]``.

A command with NaN or inf anywhere, a missing or misshapen field, or a control mode the robot
lacks is dropped whole and the arm *holds*. Holding means, by the first control mode the robot
supports in this order: ``JOINT_POSITION`` at the last safe joint target (or, if the last
command sent was not a joint target, the measured position at the moment the hold began);
``JOINT_IMPEDANCE`` at that target with the last gains sent (the maximum gains if none were);
``EE_DELTA`` with zero deltas (the driver's IK keeps the current pose); ``JOINT_TORQUE`` with
zero torque (the robot's gravity compensation alone). The gripper keeps its last width.

Two more reasons to hold: the :class:`EStop` is latched (until its explicit ``reset()``, however
many commands arrive), and the watchdog: ``filter(None, ...)`` means "no fresh command this
tick". Within ``watchdog_timeout_s`` of the last fresh command the last safe command is repeated
(an ``EE_DELTA`` one with zero deltas: deltas must not be integrated twice); past the deadline
the arm holds until a fresh command arrives. A command may carry the time it was made
(``cmd_time_s``, e.g. the timestamp of the observation the policy acted on); one older than the
deadline is stale, dropped, and treated as no command.

Every intervention is counted (:attr:`SafetyLayer.counts`: ticks affected, by kind;
:attr:`SafetyLayer.onsets`: how many times each kind began after a tick without it) and logged
on ``logging.getLogger("robolearn.safety")`` once when it begins, not on every tick.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from robolearn.core.estop import EStop
from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    DriverError,
    FloatArray,
    GripperSpec,
    JointSpec,
    RobotSpec,
    RobotState,
)

_log = logging.getLogger("robolearn.safety")

EePositionFn = Callable[[FloatArray], FloatArray]
"""Forward kinematics: joint positions (dof,) → end-effector position (3,) in the base frame."""


class Intervention(str, enum.Enum):
    """What the safety layer did to a command. Compares equal to its string value."""

    NAN_REJECTED = "nan_rejected"
    """A field was NaN or inf: the whole command was dropped and the arm held."""
    MALFORMED = "malformed"
    """A required field was missing or had the wrong shape: dropped, arm held."""
    MODE_UNSUPPORTED = "mode_unsupported"
    """The robot lacks the command's control mode: dropped, arm held."""
    STATE_INVALID = "state_invalid"
    """The measured state had NaN/inf or the wrong shape: the arm held."""
    JOINT_LIMIT = "joint_limit"
    """A joint target beyond the (margin-shrunk) limits, or torque pushing a joint past them."""
    JOINT_STEP = "joint_step"
    """A joint target further than ``max_joint_step_rad`` from the last target."""
    JOINT_VELOCITY = "joint_velocity"
    """Torque accelerating a joint already faster than its scaled velocity limit."""
    GAIN_LIMIT = "gain_limit"
    """Stiffness or damping outside ``[0, max]``."""
    EE_WORKSPACE = "ee_workspace"
    """An end-effector target outside the workspace box."""
    EE_STEP = "ee_step"
    """An end-effector translation longer than ``max_ee_step_m``."""
    EE_ROT_STEP = "ee_rot_step"
    """An end-effector rotation larger than ``max_ee_rot_step_rad``."""
    TORQUE_LIMIT = "torque_limit"
    """A torque beyond ``torque_scale`` × the effort limit."""
    TORQUE_STEP = "torque_step"
    """A torque change larger than ``max_torque_step_nm``."""
    GRIPPER_LIMIT = "gripper_limit"
    """A gripper width outside the spec's range."""
    GRIPPER_UNSUPPORTED = "gripper_unsupported"
    """A gripper width for a robot without a gripper: the width was dropped."""
    STALE_COMMAND = "stale_command"
    """A command made more than ``watchdog_timeout_s`` ago: dropped as if none came."""
    WATCHDOG_HOLD = "watchdog_hold"
    """No fresh command within ``watchdog_timeout_s``: the arm held."""
    ESTOP_HOLD = "estop_hold"
    """The e-stop is latched: the arm held."""


_HOLDS = frozenset(
    {
        Intervention.NAN_REJECTED,
        Intervention.MALFORMED,
        Intervention.MODE_UNSUPPORTED,
        Intervention.STATE_INVALID,
        Intervention.WATCHDOG_HOLD,
        Intervention.ESTOP_HOLD,
    }
)
"""Interventions that replace the command by a hold (logged as warnings; clips log as info)."""

_HOLD_PREFERENCE = (
    ControlMode.JOINT_POSITION,
    ControlMode.JOINT_IMPEDANCE,
    ControlMode.EE_DELTA,
    ControlMode.JOINT_TORQUE,
)

_REQUIRED_FIELDS: dict[ControlMode, tuple[str, ...]] = {
    ControlMode.JOINT_POSITION: ("joint_position",),
    ControlMode.JOINT_IMPEDANCE: ("joint_position", "stiffness", "damping"),
    ControlMode.JOINT_TORQUE: ("joint_torque",),
    ControlMode.EE_DELTA: ("ee_delta_pos",),
}
_OPTIONAL_FIELDS: dict[ControlMode, tuple[str, ...]] = {
    ControlMode.JOINT_POSITION: (),
    ControlMode.JOINT_IMPEDANCE: ("joint_torque",),
    ControlMode.JOINT_TORQUE: (),
    ControlMode.EE_DELTA: ("ee_delta_rot",),
}
_EE_FIELDS = frozenset({"ee_delta_pos", "ee_delta_rot"})


# ------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety layer, on top of the robot's own spec (SI units)."""

    max_joint_step_rad: float | None = None
    """Largest change of a joint target per tick (rad); never more than velocity limit × dt.
    ``None``: each joint's velocity limit × dt × ``velocity_scale``."""
    velocity_scale: float = 0.5
    """Fraction (0, 1] of the spec's joint velocity limits allowed."""
    joint_margin_rad: float = 0.0
    """Joint targets stay this far inside the spec's position limits (rad)."""
    workspace_low_m: tuple[float, float, float] = (0.15, -0.6, 0.0)
    """Lower corner (x, y, z) of the end-effector box in the base frame (m)."""
    workspace_high_m: tuple[float, float, float] = (0.85, 0.6, 0.8)
    """Upper corner (x, y, z) of the end-effector box in the base frame (m)."""
    max_ee_step_m: float = 0.05
    """Largest end-effector translation per tick (m), for EE_DELTA commands."""
    max_ee_rot_step_rad: float = 0.25
    """Largest end-effector rotation per tick (rad, axis-angle norm), for EE_DELTA commands."""
    torque_scale: float = 1.0
    """Fraction (0, 1] of the spec's effort limits allowed as commanded torque."""
    max_torque_step_nm: float | None = None
    """Largest change of a commanded torque per tick (N·m); ``None``: no limit."""
    max_stiffness_nm_per_rad: float = 3000.0
    """Largest JOINT_IMPEDANCE stiffness (N·m/rad)."""
    max_damping_nms_per_rad: float = 200.0
    """Largest JOINT_IMPEDANCE damping (N·m·s/rad)."""
    watchdog_timeout_s: float = 0.2
    """Hold the arm when no fresh command arrived for this long (s)."""
    require_gripper: bool = False
    """Gripper widths will be commanded: refuse, at start, a robot without a gripper."""

    def __post_init__(self) -> None:
        _require_fraction("velocity_scale", self.velocity_scale)
        _require_fraction("torque_scale", self.torque_scale)
        _require_non_negative("joint_margin_rad", self.joint_margin_rad)
        for name in ("max_ee_step_m", "max_ee_rot_step_rad", "watchdog_timeout_s"):
            _require_positive(name, getattr(self, name))
        for name in ("max_stiffness_nm_per_rad", "max_damping_nms_per_rad"):
            _require_positive(name, getattr(self, name))
        for name in ("max_joint_step_rad", "max_torque_step_nm"):
            value = getattr(self, name)
            if value is not None:
                _require_positive(name, value)
        _require_box(self.workspace_low_m, self.workspace_high_m)


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value}")


def _require_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value}")


def _require_fraction(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(f"{name} must lie in (0, 1], got {value}")


def _require_box(low: Iterable[float], high: Iterable[float]) -> None:
    lo, hi = np.asarray(tuple(low), dtype=np.float64), np.asarray(tuple(high), dtype=np.float64)
    if lo.shape != (3,) or hi.shape != (3,):
        raise ConfigError(f"workspace corners must have 3 values (x, y, z), got {lo} and {hi}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ConfigError(
            f"workspace box needs finite corners with low < high on every axis, "
            f"got low={lo.tolist()} high={hi.tolist()}"
        )


# -------------------------------------------------------------------------- spec checks


def validate_spec(spec: RobotSpec, config: SafetyConfig) -> None:
    """Refuse a spec the safety layer cannot bound (ConfigError naming the joint and problem)."""
    if spec.dof == 0:
        raise ConfigError(f"{spec.name}: the spec has no joints")
    if not spec.control_modes:
        raise ConfigError(f"{spec.name}: the spec lists no control modes")
    for joint in spec.joints:
        _validate_joint(spec.name, joint, config.joint_margin_rad)
    _validate_gripper(spec, config.require_gripper)


def _validate_joint(robot: str, joint: JointSpec, margin_rad: float) -> None:
    where = f"{robot} joint {joint.name!r}"
    lo, hi = joint.lower, joint.upper
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(
            f"{where}: position limits [{lo}, {hi}] are missing or infinite; "
            "the safety layer needs finite limits for every joint"
        )
    if lo >= hi:
        raise ConfigError(f"{where}: lower limit {lo} must be below upper limit {hi}")
    if hi - lo <= 2 * margin_rad:
        raise ConfigError(
            f"{where}: joint_margin_rad={margin_rad} leaves no room in [{lo}, {hi}]; "
            "use a smaller margin"
        )
    for label, value in (("velocity", joint.max_velocity), ("effort", joint.max_effort)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{where}: {label} limit must be finite and > 0, got {value}")


def _validate_gripper(spec: RobotSpec, required: bool) -> None:
    grip = spec.gripper
    if grip is None:
        if required:
            raise ConfigError(
                f"{spec.name} has no gripper in its spec, but gripper commands will be sent "
                "(SafetyConfig.require_gripper); add a GripperSpec or stop commanding widths"
            )
        return
    if not (math.isfinite(grip.min_width) and math.isfinite(grip.max_width)):
        raise ConfigError(f"{spec.name} gripper: width limits must be finite, got {grip}")
    if not 0 <= grip.min_width < grip.max_width:
        raise ConfigError(
            f"{spec.name} gripper: need 0 <= min_width < max_width, "
            f"got [{grip.min_width}, {grip.max_width}]"
        )


# ---------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits as the safety layer applies them, each (dof,)."""

    lower_rad: FloatArray
    """The spec's lower position limits."""
    upper_rad: FloatArray
    """The spec's upper position limits."""
    safe_lower_rad: FloatArray
    """Lower limits moved inwards by the margin: targets stay above them."""
    safe_upper_rad: FloatArray
    """Upper limits moved inwards by the margin: targets stay below them."""
    max_step_rad: FloatArray
    """Largest target change per tick."""
    max_velocity_rad_s: FloatArray
    """Velocity limits × ``velocity_scale``."""
    max_torque_nm: FloatArray
    """Effort limits × ``torque_scale``."""

    @staticmethod
    def from_spec(spec: RobotSpec, config: SafetyConfig, dt_s: float) -> JointLimits:
        """The limits of ``spec`` under ``config`` at a control period of ``dt_s``."""
        lower, upper = spec.limits("lower"), spec.limits("upper")
        velocity = spec.limits("max_velocity")
        step = velocity * dt_s * config.velocity_scale
        if config.max_joint_step_rad is not None:
            step = np.minimum(config.max_joint_step_rad, velocity * dt_s)
        margin = config.joint_margin_rad
        return JointLimits(
            lower_rad=lower,
            upper_rad=upper,
            safe_lower_rad=lower + margin,
            safe_upper_rad=upper - margin,
            max_step_rad=step,
            max_velocity_rad_s=velocity * config.velocity_scale,
            max_torque_nm=spec.limits("max_effort") * config.torque_scale,
        )

    def allowed_range(self, ref_q: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The safe range widened to include ``ref_q`` but never past the spec's limits: a
        joint that stands inside the margin may stay there, not move further out."""
        low = np.maximum(self.lower_rad, np.minimum(self.safe_lower_rad, ref_q))
        high = np.minimum(self.upper_rad, np.maximum(self.safe_upper_rad, ref_q))
        return low, high


def _control_period(spec: RobotSpec, dt_s: float | None) -> float:
    if dt_s is None:
        _require_positive(f"{spec.name} control_hz", spec.control_hz)
        return 1.0 / spec.control_hz
    _require_positive("dt_s", dt_s)
    return float(dt_s)


def _hold_mode(modes: frozenset[ControlMode]) -> ControlMode:
    return next(m for m in _HOLD_PREFERENCE if m in modes)


# ------------------------------------------------------------------------ the layer


@dataclass(frozen=True)
class SafeCommand:
    """The outcome of one :meth:`SafetyLayer.filter` call."""

    command: Command
    """The command to send: always inside the limits. Record what the driver returns for it."""
    interventions: tuple[Intervention, ...]
    """What the layer changed this tick, each kind once, in the order it happened."""
    held: bool
    """Whether ``command`` is a hold (e-stop, watchdog, rejected command or state, or nothing
    sent yet this episode)."""
    proposed: Command | None
    """The command as the policy or device proposed it (``None``: none this tick)."""

    @property
    def intervened(self) -> bool:
        """Whether the layer changed or replaced anything this tick."""
        return bool(self.interventions)


@dataclass
class _Memory:
    """What the layer remembers between ticks of one episode."""

    ref_q: FloatArray | None = None
    """Last joint target sent; ``None``: use the measured position."""
    last_tau: FloatArray | None = None
    """Last torque sent in JOINT_TORQUE mode."""
    gains: tuple[FloatArray, FloatArray] | None = None
    """Last stiffness and damping sent."""
    gripper_m: float | None = None
    """Last gripper width sent."""
    last_sent: Command | None = None
    last_fresh_s: float | None = None
    """When the last fresh command was made; ``None`` until the first tick."""


class _Tick:
    """The interventions of one tick, each kind once."""

    def __init__(self) -> None:
        self.kinds: list[Intervention] = []

    def add(self, kind: Intervention) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)


class SafetyLayer:
    """Limits, e-stop and watchdog between a policy (or teleop device) and a driver.

    ``spec`` is refused at construction (ConfigError) if any limit is missing or absurd.
    ``dt_s`` is the control period (default ``1 / spec.control_hz``); per-tick steps derive from
    it. ``estop`` may be shared between layers (one per arm); a new one is made by default.
    ``ee_position_fn`` (forward kinematics) lets joint-space targets be kept inside the
    workspace box too; without it the box bounds ``EE_DELTA`` commands only.

    Call :meth:`filter` from the control loop's thread only; the e-stop may be triggered
    from any thread.
    """

    def __init__(
        self,
        spec: RobotSpec,
        config: SafetyConfig | None = None,
        dt_s: float | None = None,
        *,
        estop: EStop | None = None,
        ee_position_fn: EePositionFn | None = None,
    ) -> None:
        self.config = config if config is not None else SafetyConfig()
        validate_spec(spec, self.config)
        self.spec = spec
        self.dt_s = _control_period(spec, dt_s)
        self.estop = estop if estop is not None else EStop()
        self.limits = JointLimits.from_spec(spec, self.config, self.dt_s)
        self.hold_mode = _hold_mode(spec.control_modes)
        """The control mode of hold commands (see the module doc)."""
        self._fk = ee_position_fn
        self._box_low = np.asarray(self.config.workspace_low_m, dtype=np.float64)
        self._box_high = np.asarray(self.config.workspace_high_m, dtype=np.float64)
        self._counts = {k.value: 0 for k in Intervention}
        self._onsets = {k.value: 0 for k in Intervention}
        self._active: frozenset[Intervention] = frozenset()
        self._mem = _Memory()

    # ------------------------------------------------------------------ public API
    @property
    def counts(self) -> dict[str, int]:
        """Ticks on which each kind of intervention happened (a copy)."""
        return dict(self._counts)

    @property
    def onsets(self) -> dict[str, int]:
        """How many times each kind began, after a tick without it (watchdog: stalls)."""
        return dict(self._onsets)

    @property
    def last_sent(self) -> Command | None:
        """The last command :meth:`filter` returned this episode."""
        return self._mem.last_sent

    def reset(self, state: RobotState | None = None, *, clear_counts: bool = False) -> None:
        """Start an episode: forget the last target, torque, gripper width and watchdog time.

        With ``state``, its joint positions become the reference of the first step limit;
        without, the measured position of the first tick is. The e-stop is *not* released:
        that takes ``estop.reset()``.
        """
        self._mem = _Memory()
        self._active = frozenset()
        if state is not None:
            self._mem.ref_q = self._measured_q(state)
        if clear_counts:
            self._counts = dict.fromkeys(self._counts, 0)
            self._onsets = dict.fromkeys(self._onsets, 0)

    def filter(
        self,
        cmd: Command | None,
        state: RobotState,
        now_s: float,
        cmd_time_s: float | None = None,
    ) -> SafeCommand:
        """The safe command for this tick.

        ``cmd``: the proposed command, or ``None`` when no fresh one came this tick.
        ``state``: the latest reading. ``now_s``: the current time on the loop's clock.
        ``cmd_time_s``: when ``cmd`` was made, on the same clock (default ``now_s``).
        """
        if not math.isfinite(now_s):
            raise ConfigError(f"now_s must be finite, got {now_s}")
        tick = _Tick()
        fresh = self._fresh(cmd, now_s, cmd_time_s, tick)
        out, held = self._decide(fresh, state, now_s, tick)
        self._remember(out)
        self._account(tick.kinds, now_s)
        return SafeCommand(out, tuple(tick.kinds), held, cmd)

    # ------------------------------------------------------------- watchdog and holds
    def _fresh(
        self, cmd: Command | None, now_s: float, cmd_time_s: float | None, tick: _Tick
    ) -> Command | None:
        """``cmd`` if it is fresh (and note its time), else ``None``."""
        if self._mem.last_fresh_s is None:
            self._mem.last_fresh_s = now_s  # the watch starts at the first tick
        if cmd is None:
            return None
        made_s = now_s if cmd_time_s is None else cmd_time_s
        if not (math.isfinite(made_s) and now_s - made_s <= self.config.watchdog_timeout_s):
            tick.add(Intervention.STALE_COMMAND)
            return None
        self._mem.last_fresh_s = max(self._mem.last_fresh_s, made_s)
        return cmd

    def _decide(
        self, fresh: Command | None, state: RobotState, now_s: float, tick: _Tick
    ) -> tuple[Command, bool]:
        reason = self._hold_reason(fresh, state, now_s)
        if reason is not None:
            tick.add(reason)
            return self._hold(state), True
        cmd = fresh if fresh is not None else self._repeat()
        if cmd is None:  # nothing sent yet and still within the deadline: hold quietly
            return self._hold(state), True
        return self._limit(cmd, state, tick)

    def _hold_reason(
        self, fresh: Command | None, state: RobotState, now_s: float
    ) -> Intervention | None:
        if self.estop.is_set():
            return Intervention.ESTOP_HOLD
        if not self._state_ok(state):
            return Intervention.STATE_INVALID
        last_fresh_s = self._mem.last_fresh_s
        assert last_fresh_s is not None  # set by _fresh
        if fresh is None and now_s - last_fresh_s > self.config.watchdog_timeout_s:
            return Intervention.WATCHDOG_HOLD
        return None

    def _state_ok(self, state: RobotState) -> bool:
        dof = self.spec.dof
        return (
            _finite_of_shape(state.q, (dof,))
            and _finite_of_shape(state.dq, (dof,))
            and _finite_of_shape(state.ee_pos, (3,))
        )

    def _repeat(self) -> Command | None:
        """The last command again (with zero deltas for EE_DELTA), or ``None``."""
        last = self._mem.last_sent
        if last is None or last.mode is not ControlMode.EE_DELTA:
            return last
        return last.with_(ee_delta_pos=np.zeros(3), ee_delta_rot=np.zeros(3))

    def _hold(self, state: RobotState) -> Command:
        """Keep the arm where it is meant to be (see the module doc for each mode)."""
        mode, width = self.hold_mode, self._mem.gripper_m
        if mode is ControlMode.JOINT_POSITION:
            return Command(mode, joint_position=self._reference_q(state), gripper_width=width)
        if mode is ControlMode.JOINT_IMPEDANCE:
            kp, kd = self._mem.gains or self._max_gains()
            q = self._reference_q(state)
            return Command(mode, joint_position=q, stiffness=kp, damping=kd, gripper_width=width)
        if mode is ControlMode.EE_DELTA:
            zero = np.zeros(3)
            return Command(mode, ee_delta_pos=zero, ee_delta_rot=zero.copy(), gripper_width=width)
        return Command(mode, joint_torque=np.zeros(self.spec.dof), gripper_width=width)

    def _max_gains(self) -> tuple[FloatArray, FloatArray]:
        dof = self.spec.dof
        return (
            np.full(dof, self.config.max_stiffness_nm_per_rad),
            np.full(dof, self.config.max_damping_nms_per_rad),
        )

    def _reference_q(self, state: RobotState) -> FloatArray:
        """The last joint target sent, else the measured position (inside the spec limits)."""
        if self._mem.ref_q is not None:
            return self._mem.ref_q.copy()
        return self._measured_q(state)

    def _measured_q(self, state: RobotState) -> FloatArray:
        if not _finite_of_shape(state.q, (self.spec.dof,)):
            raise DriverError(
                f"{self.spec.name}: the measured joint positions are invalid ({state.q!r}) and "
                "no earlier target exists to hold; cannot make a safe command"
            )
        q = np.asarray(state.q, dtype=np.float64)
        return np.clip(q, self.limits.lower_rad, self.limits.upper_rad)

    # ------------------------------------------------------------------ limiting
    def _limit(self, cmd: Command, state: RobotState, tick: _Tick) -> tuple[Command, bool]:
        problem = self._problem(cmd)
        if problem is not None:
            tick.add(problem)
            return self._hold(state), True
        cmd = cmd.with_(mode=ControlMode(cmd.mode))  # a plain "joint_position" string too
        if cmd.mode is ControlMode.JOINT_POSITION:
            arm = Command(cmd.mode, joint_position=self._joint_target(cmd, state, tick))
        elif cmd.mode is ControlMode.JOINT_IMPEDANCE:
            arm = self._limit_impedance(cmd, state, tick)
        elif cmd.mode is ControlMode.JOINT_TORQUE:
            arm = self._limit_torque(cmd, state, tick)
        else:
            arm = self._limit_ee_delta(cmd, state, tick)
        return arm.with_(gripper_width=self._gripper(cmd.gripper_width, tick)), False

    def _problem(self, cmd: Command) -> Intervention | None:
        """Why ``cmd`` must be dropped whole, or ``None``."""
        try:
            mode = ControlMode(cmd.mode)
        except ValueError:
            return Intervention.MODE_UNSUPPORTED
        if mode not in self.spec.control_modes:
            return Intervention.MODE_UNSUPPORTED
        for name in _REQUIRED_FIELDS[mode]:
            if getattr(cmd, name) is None:
                return Intervention.MALFORMED
        for name in _REQUIRED_FIELDS[mode] + _OPTIONAL_FIELDS[mode]:
            problem = self._field_problem(name, getattr(cmd, name))
            if problem is not None:
                return problem
        return _width_problem(cmd.gripper_width)

    def _field_problem(self, name: str, value: object) -> Intervention | None:
        if value is None:
            return None
        shape = (3,) if name in _EE_FIELDS else (self.spec.dof,)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return Intervention.MALFORMED
        if arr.shape != shape:
            return Intervention.MALFORMED
        return None if np.isfinite(arr).all() else Intervention.NAN_REJECTED

    def _joint_target(self, cmd: Command, state: RobotState, tick: _Tick) -> FloatArray:
        """``cmd.joint_position`` inside the limits, the step limit and the workspace."""
        target = _array(cmd.joint_position)
        ref = self._reference_q(state)
        low, high = self.limits.allowed_range(ref)
        step = self.limits.max_step_rad
        if ((target < low) | (target > high)).any():
            tick.add(Intervention.JOINT_LIMIT)
        if (np.abs(np.clip(target, low, high) - ref) > step).any():
            tick.add(Intervention.JOINT_STEP)
        # Both ranges contain ref, so clipping to one then the other lands in both.
        q = np.clip(np.clip(target, ref - step, ref + step), low, high)
        return self._keep_in_workspace(ref, q, tick)

    def _keep_in_workspace(self, ref: FloatArray, q: FloatArray, tick: _Tick) -> FloatArray:
        """The furthest point from ``ref`` towards ``q`` whose end effector is in the box."""
        fk = self._fk
        if fk is None:
            return q
        low, high = _widened_box(self._box_low, self._box_high, fk(ref))
        if _inside(fk(q), low, high):
            return q
        tick.add(Intervention.EE_WORKSPACE)
        alpha = _largest_feasible_fraction(lambda a: _inside(fk(ref + a * (q - ref)), low, high))
        return ref + alpha * (q - ref)

    def _limit_impedance(self, cmd: Command, state: RobotState, tick: _Tick) -> Command:
        q = self._joint_target(cmd, state, tick)
        gain = Intervention.GAIN_LIMIT
        kp = _clip(_array(cmd.stiffness), 0.0, self.config.max_stiffness_nm_per_rad, tick, gain)
        kd = _clip(_array(cmd.damping), 0.0, self.config.max_damping_nms_per_rad, tick, gain)
        tau = None
        if cmd.joint_torque is not None:
            limit = self.limits.max_torque_nm
            tau = _clip(_array(cmd.joint_torque), -limit, limit, tick, Intervention.TORQUE_LIMIT)
        return Command(cmd.mode, joint_position=q, stiffness=kp, damping=kd, joint_torque=tau)

    def _limit_torque(self, cmd: Command, state: RobotState, tick: _Tick) -> Command:
        limit = self.limits.max_torque_nm
        tau = _clip(_array(cmd.joint_torque), -limit, limit, tick, Intervention.TORQUE_LIMIT)
        step = self.config.max_torque_step_nm
        if step is not None:
            ref = self._mem.last_tau if self._mem.last_tau is not None else np.zeros_like(tau)
            tau = _clip(tau, ref - step, ref + step, tick, Intervention.TORQUE_STEP)
        tau = self._stop_pushing_out(tau, state, tick)
        return Command(cmd.mode, joint_torque=tau)

    def _stop_pushing_out(self, tau: FloatArray, state: RobotState, tick: _Tick) -> FloatArray:
        """Zero torque that drives a joint past its safe limit or beyond its speed limit."""
        q, dq = _array(state.q), _array(state.dq)
        past = ((q >= self.limits.safe_upper_rad) & (tau > 0)) | (
            (q <= self.limits.safe_lower_rad) & (tau < 0)
        )
        fast = (np.abs(dq) > self.limits.max_velocity_rad_s) & (tau * dq > 0)
        if past.any():
            tick.add(Intervention.JOINT_LIMIT)
        if fast.any():
            tick.add(Intervention.JOINT_VELOCITY)
        return np.where(past | fast, 0.0, tau)

    def _limit_ee_delta(self, cmd: Command, state: RobotState, tick: _Tick) -> Command:
        dpos = _array(cmd.ee_delta_pos)
        drot = np.zeros(3) if cmd.ee_delta_rot is None else _array(cmd.ee_delta_rot)
        ee = _array(state.ee_pos)
        low, high = _widened_box(self._box_low, self._box_high, ee)
        target = ee + dpos
        if not _inside(target, low, high):
            tick.add(Intervention.EE_WORKSPACE)
        # The box is convex and holds ee, so shortening the clipped delta keeps it inside.
        dpos = np.clip(target, low, high) - ee
        dpos = _clip_norm(dpos, self.config.max_ee_step_m, tick, Intervention.EE_STEP)
        drot = _clip_norm(drot, self.config.max_ee_rot_step_rad, tick, Intervention.EE_ROT_STEP)
        return Command(cmd.mode, ee_delta_pos=dpos, ee_delta_rot=drot)

    def _gripper(self, width: float | None, tick: _Tick) -> float | None:
        """The width inside the gripper's range (``None`` keeps the last one)."""
        if width is None:
            return None
        grip: GripperSpec | None = self.spec.gripper
        if grip is None:
            tick.add(Intervention.GRIPPER_UNSUPPORTED)
            return None
        value = float(width)
        clipped = min(max(value, grip.min_width), grip.max_width)
        if clipped != value:
            tick.add(Intervention.GRIPPER_LIMIT)
        return clipped

    # -------------------------------------------------------------- bookkeeping
    def _remember(self, out: Command) -> None:
        mem = self._mem
        joint_target = out.mode in (ControlMode.JOINT_POSITION, ControlMode.JOINT_IMPEDANCE)
        mem.ref_q = _array(out.joint_position).copy() if joint_target else None
        torque = out.mode is ControlMode.JOINT_TORQUE
        mem.last_tau = _array(out.joint_torque).copy() if torque else None
        if out.mode is ControlMode.JOINT_IMPEDANCE:
            mem.gains = (_array(out.stiffness).copy(), _array(out.damping).copy())
        if out.gripper_width is not None:
            mem.gripper_m = out.gripper_width
        mem.last_sent = out

    def _account(self, kinds: list[Intervention], now_s: float) -> None:
        for kind in kinds:
            self._counts[kind.value] += 1
            if kind not in self._active:
                self._onsets[kind.value] += 1
                self._log_onset(kind, now_s)
        for kind in self._active - set(kinds):
            if kind in _HOLDS:
                _log.info("safety: %s ended at t=%.3f s", kind.value, now_s)
        self._active = frozenset(kinds)

    def _log_onset(self, kind: Intervention, now_s: float) -> None:
        if kind is Intervention.ESTOP_HOLD:
            _log.warning("safety: holding, e-stop latched (%s)", self.estop.reason)
        elif kind is Intervention.WATCHDOG_HOLD:
            _log.warning(
                "safety: watchdog fired at t=%.3f s: no fresh command for more than %.3f s; "
                "holding the last safe target",
                now_s,
                self.config.watchdog_timeout_s,
            )
        elif kind in _HOLDS:
            _log.warning("safety: %s at t=%.3f s; holding the last safe target", kind.value, now_s)
        else:
            _log.info("safety: %s at t=%.3f s", kind.value, now_s)


# ---------------------------------------------------------------------------- helpers


def _array(value: object) -> FloatArray:
    return np.asarray(value, dtype=np.float64)


def _finite_of_shape(value: object, shape: tuple[int, ...]) -> bool:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.shape == shape and bool(np.isfinite(arr).all())


def _width_problem(width: object) -> Intervention | None:
    if width is None:
        return None
    try:
        value = float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Intervention.MALFORMED
    return None if math.isfinite(value) else Intervention.NAN_REJECTED


def _clip(
    value: FloatArray,
    low: FloatArray | float,
    high: FloatArray | float,
    tick: _Tick,
    kind: Intervention,
) -> FloatArray:
    """``value`` clipped to ``[low, high]``; ``kind`` noted if anything changed."""
    clipped = np.clip(value, low, high)
    if not np.array_equal(clipped, value):
        tick.add(kind)
    return clipped


def _clip_norm(vec: FloatArray, max_norm: float, tick: _Tick, kind: Intervention) -> FloatArray:
    """``vec`` shortened to at most ``max_norm``; ``kind`` noted if it was."""
    biggest = float(np.abs(vec).max())
    if biggest == 0.0:
        return vec
    norm = biggest * float(np.linalg.norm(vec / biggest))  # no overflow for huge entries
    if norm <= max_norm:
        return vec
    tick.add(kind)
    return vec * (max_norm / norm)


def _widened_box(
    low: FloatArray, high: FloatArray, point: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The box grown just enough to hold ``point``: a point outside may stay, not go further."""
    return np.minimum(low, point), np.maximum(high, point)


def _inside(point: FloatArray, low: FloatArray, high: FloatArray) -> bool:
    return bool(((point >= low) & (point <= high)).all())


def _largest_feasible_fraction(feasible: Callable[[float], bool], iterations: int = 12) -> float:
    """Bisection for the largest ``a`` in [0, 1] found feasible, given ``feasible(0)``."""
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if feasible(mid):
            lo = mid
        else:
            hi = mid
    return lo
