"""A Franka Research 3 (or Panda) through franky, libfranka's Python bindings, behind the driver
contract.

Targets are streamed at the policy rate (typically ≤ 100 Hz) as franky *asynchronous* motions:
each ``command`` starts a new motion that replaces the running one at once, without waiting,
and franky's trajectory generator (Ruckig) turns the step into a smooth 1 kHz trajectory within
the velocity, acceleration and jerk limits scaled by ``FrankaConfig.dynamics_factor``.

Control modes and what they map to in franky:

* ``JOINT_POSITION`` → ``JointMotion`` to the absolute joint target (libfranka's joint position
  interface; the robot's own joint impedance controller tracks it).
* ``JOINT_IMPEDANCE`` → ``JointImpedanceTrackingMotion``: franky's client-side joint-space
  spring-damper at 1 kHz (``tau = K (q_d - q) - D dq + tau_ff`` plus Coriolis; the robot adds
  gravity), streamed with ``set_reference`` / ``set_gains``. ``joint_torque`` is its
  feed-forward. Gains change smoothly (franky filters them with a 0.1 s time constant).
* ``EE_DELTA`` → ``CartesianMotion`` to an absolute end-effector pose (libfranka's Cartesian
  pose interface; the robot resolves the joints). The target is the previous EE_DELTA target
  moved by the delta (the measured pose when the previous command was of another mode), kept
  within ``MAX_EE_LEAD_M`` / ``MAX_EE_LEAD_RAD`` of the measured pose, so a lagging arm still
  ends where the sum of the deltas says and a zero delta holds the pose without drift. The
  applied command reports the Cartesian target as deltas from the measured pose and, as
  ``joint_position``, the joint configuration that reaches it to first order (one damped
  least-squares step with libfranka's Jacobian from the measured joints). The arm tracks the
  Cartesian target itself, not these joints.
* ``JOINT_TORQUE`` is not offered: streaming raw torques from Python at policy rate is unsafe on
  this arm; use ``JOINT_IMPEDANCE`` with zero stiffness and a feed-forward instead.

Switching between modes of different control signals (joint positions, torques, Cartesian poses)
first brings the running motion to a stop (franky's stop motions, at most
``FrankaConfig.stop_timeout_s``), so a mode switch blocks for a moment; streaming within one
mode never blocks.

The Franka Hand is commanded by width. Its commands are blocking in libfranka, so a daemon
thread runs them while the control loop goes on (the latest width wins; closing uses ``grasp``
with ``gripper_force_n`` so an object is held, opening uses ``move``). Another daemon thread
keeps the latest measured width, so ``read()`` never waits for the hand.

Errors from franky surface on the next ``read()`` or ``command()`` as :class:`FrankaError`
subclasses with one clear message: :class:`FrankaReflexError` (a reflex stopped the arm:
collision, limit violation, ...), :class:`FrankaControlError` (other control failures),
:class:`FrankaConnectionError` (the robot, franky-sim or the network went away: also raised
when no new state arrives within ``state_timeout_s``), :class:`FrankaGripperError`. With
``auto_recover=True`` a control error or reflex calls libfranka's automatic error recovery and
the driver goes on (at most ``max_recoveries`` times per connection).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from robolearn.core.geometry import (
    mat_from_quat,
    quat_error,
    quat_from_mat,
    quat_from_rotvec,
    quat_multiply,
)
from robolearn.core.types import (
    Command,
    CommandError,
    ControlMode,
    DriverError,
    FloatArray,
    RobolearnError,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.base import Driver
from robolearn.drivers.franka.config import FCI_PORT, HAND, FrankaConfig, franka_spec
from robolearn.drivers.franka.errors import (
    FrankaConnectionError,
    FrankaControlError,
    FrankaError,
    FrankaGripperError,
    franka_error,
    franky_errors,
    import_franky,
)
from robolearn.drivers.franka.hand import HandWorker

log = logging.getLogger("robolearn.drivers.franka")

T = TypeVar("T")

MAX_STIFFNESS_NM_PER_RAD = 3000.0
"""Largest JOINT_IMPEDANCE stiffness accepted (larger values are clipped)."""
MAX_DAMPING_NMS_PER_RAD = 200.0
"""Largest JOINT_IMPEDANCE damping accepted (larger values are clipped)."""
MAX_EE_STEP_M = 0.1
"""Largest EE_DELTA translation per command (longer deltas are shortened)."""
MAX_EE_STEP_RAD = 0.5
"""Largest EE_DELTA rotation per command (larger ones are shortened)."""
MAX_EE_LEAD_M = 0.1
"""How far the Cartesian target may run ahead of the measured end effector."""
MAX_EE_LEAD_RAD = 0.5
"""How far the Cartesian target's orientation may run ahead of the measured one."""
_IK_DAMPING = 1e-3
_IK_MAX_STEP_RAD = 0.2

MotionKind = Literal["joint", "impedance", "cartesian"]


# ---------------------------------------------------------------------- connection


def _unreachable(host: str, problem: str) -> FrankaConnectionError:
    """The one error for a robot that cannot be reached, with what to check."""
    return FrankaConnectionError(
        f"the Franka at {host} {problem}. Check the network (cable, this PC's address in the "
        f"robot's subnet, `ping {host}`), the IP, and that the robot is on with its brakes open "
        "and FCI activated in Desk; without a robot, start franky-sim "
        "(robolearn.drivers.franka.FrankySim, or `python -m robolearn.drivers.franka`) and "
        "connect to its address"
    )


def _check_reachable(host: str, timeout_s: float) -> None:
    """FrankaConnectionError unless ``host`` accepts a TCP connection on the FCI port."""
    try:
        with socket.create_connection((host, FCI_PORT), timeout=timeout_s):
            pass
    except TimeoutError as exc:
        problem = f"does not answer (no reply on TCP port {FCI_PORT} within {timeout_s:g} s)"
        raise _unreachable(host, problem) from exc
    except OSError as exc:
        problem = f"cannot be reached on TCP port {FCI_PORT} ({exc.strerror or exc})"
        raise _unreachable(host, problem) from exc


def _call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """``fn()`` in a daemon thread; its exception re-raised; TimeoutError after ``timeout_s``.

    A call that times out is left to finish on its own (libfranka gives up by itself later).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"franka-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(what)
    if error:
        raise error[0]
    return result[0]


# ------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class _Request:
    """A validated command with every field clipped; nothing applied yet."""

    mode: ControlMode
    q: FloatArray | None = None
    kp: FloatArray | None = None
    kd: FloatArray | None = None
    tau_ff: FloatArray | None = None
    dpos: FloatArray | None = None
    drot: FloatArray | None = None
    width: float | None = None


class FrankaDriver(Driver):
    """A Franka arm (FR3 or Panda) and its hand through franky; see the module doc.

    ``robot`` gives the underlying ``franky.Robot`` while connected, for what the contract does
    not cover (its model, collision behaviour, ...). Timestamps are ``time.perf_counter()`` at
    reading (monotonic); the clock is the wall clock.
    """

    def __init__(self, config: FrankaConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else FrankaConfig()
        self._spec = franka_spec(self.config)
        self._lower = self._spec.limits("lower")
        self._upper = self._spec.limits("upper")
        self._effort = self._spec.limits("max_effort")
        self._robot: Any = None
        self._hand: HandWorker | None = None
        self._reset_session()
        self.recoveries = 0
        """Automatic error recoveries done on this connection."""

    def _reset_session(self) -> None:
        self._kind: MotionKind | None = None
        self._impedance: Any = None  # the running JointImpedanceTrackingMotion
        self._gains: tuple[FloatArray, FloatArray] | None = None
        self._last_q: FloatArray | None = None  # last JOINT_POSITION target sent
        self._ee_target: tuple[FloatArray, FloatArray] | None = None  # (pos, quat wxyz)
        self._fault: FrankaError | None = None
        self._gripper_target: float | None = None
        self._stamp = (-1.0, 0.0)  # (robot time s, perf_counter when first seen)

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def robot(self) -> Any:
        """The connected ``franky.Robot`` (``None`` while disconnected)."""
        return self._robot

    @property
    def gripper_busy(self) -> bool:
        """Whether a hand command is running or waiting to be sent."""
        return self._hand is not None and self._hand.busy

    # ------------------------------------------------------------- connection
    def _connect(self) -> None:
        cfg = self.config
        self._reset_session()
        self.recoveries = 0
        import_franky()  # a missing SDK is said before any network problem
        _check_reachable(cfg.host, cfg.connect_timeout_s)
        self._robot = self._open("robot", self._make_robot)
        try:
            if cfg.gripper:
                gripper = self._open("Franka Hand", lambda: import_franky().Gripper(cfg.host))
                self._hand = HandWorker(gripper, cfg.gripper_speed_mps, cfg.gripper_force_n)
                self._gripper_target = self._hand.width()[0]
        except BaseException:
            self._robot = None
            raise

    def _make_robot(self) -> Any:
        franky, cfg = import_franky(), self.config
        realtime = franky.RealtimeConfig.Enforce
        if cfg.realtime == "ignore":
            realtime = franky.RealtimeConfig.Ignore
        robot = franky.Robot(
            cfg.host,
            relative_dynamics_factor=cfg.dynamics_factor,
            default_torque_threshold=cfg.collision_torque_nm,
            default_force_threshold=cfg.collision_force_n,
            realtime_config=realtime,
        )
        return robot

    def _open(self, what: str, make: Callable[[], T]) -> T:
        """Run ``make`` under the connect timeout, turning failures into one clear error."""
        franky, host, timeout_s = import_franky(), self.config.host, self.config.connect_timeout_s
        hint = ""
        if what == "Franka Hand":
            hint = " (no hand mounted? set FrankaConfig.gripper=False)"
        try:
            return _call_with_timeout(make, timeout_s, what)
        except TimeoutError as exc:
            problem = f"accepts connections but its {what} did not answer within {timeout_s:g} s"
            raise _unreachable(host, problem + hint) from exc
        except franky.RealtimeException as exc:
            raise FrankaError(
                f"cannot control the Franka at {host}: {exc} Run on a realtime (PREEMPT_RT) "
                "kernel, or set FrankaConfig.realtime='ignore' (franky-sim, tests; not for "
                "real work on the robot)"
            ) from exc
        except franky.IncompatibleVersionException as exc:
            raise FrankaError(
                f"the Franka at {host} speaks another libfranka version: {exc}. Install the "
                "franky-control build whose libfranka matches the robot's system version"
            ) from exc
        except franky_errors() as exc:
            raise _unreachable(host, f"refused the {what} connection ({exc}){hint}") from exc

    def _disconnect(self) -> None:
        try:
            if self._fault is None and self._robot is not None:
                self._stop_motion_quietly()
        finally:
            self._close_hand()
            self._robot = None  # libfranka closes the connection
            self._reset_session()

    def _close_hand(self) -> None:
        hand, self._hand = self._hand, None
        if hand is not None and not hand.close(self.config.gripper_timeout_s):
            log.warning(
                "the Franka Hand at %s did not finish its command within %.1f s; its thread is "
                "left to end on its own",
                self.config.host,
                self.config.gripper_timeout_s,
            )

    def recover(self) -> bool:
        """libfranka's automatic error recovery (after a reflex); whether it succeeded."""
        self._require_connected()
        self._raise_if_lost()
        ok = self._guard(lambda: bool(self._robot.recover_from_errors()))
        self._forget_motion()
        return ok

    # ------------------------------------------------------------------- read
    def _read(self) -> RobotState:
        self._raise_if_lost()
        self._surface_errors()
        state = self._guard(lambda: self._robot.state)
        self._check_fresh(state)
        return self._to_robot_state(state)

    def _to_robot_state(self, state: Any) -> RobotState:
        T_base_ee = np.asarray(state.O_T_EE.matrix, dtype=np.float64)
        return RobotState(
            timestamp=time.perf_counter(),
            q=np.asarray(state.q, dtype=np.float64).copy(),
            dq=np.asarray(state.dq, dtype=np.float64).copy(),
            tau=np.asarray(state.tau_J, dtype=np.float64).copy(),
            ee_pos=T_base_ee[:3, 3].copy(),
            ee_quat=quat_from_mat(T_base_ee[:3, :3]),
            gripper_width=self._measured_width(),
        )

    def _measured_width(self) -> float:
        if self._hand is None:
            return 0.0
        width_m, stamp_s = self._hand.width()
        if time.perf_counter() - stamp_s > max(self.config.state_timeout_s, 0.2):
            self._lose(
                f"no new Franka Hand state from {self.config.host} for "
                f"{time.perf_counter() - stamp_s:.2f} s"
            )
        return width_m

    def _check_fresh(self, state: Any) -> None:
        """FrankaConnectionError when the robot's clock stopped for ``state_timeout_s``."""
        robot_time_s = float(state.time.to_sec())
        now = time.perf_counter()
        if robot_time_s != self._stamp[0]:
            self._stamp = (robot_time_s, now)
        elif now - self._stamp[1] > self.config.state_timeout_s:
            self._lose(
                f"no new state from the Franka at {self.config.host} for "
                f"{now - self._stamp[1]:.2f} s (the robot or franky-sim stopped, or the "
                "network dropped)"
            )

    # ---------------------------------------------------------------- command
    def _command(self, cmd: Command) -> Command:
        self._raise_if_lost()
        request = self._validate(cmd)  # the whole command, before anything is applied
        self._surface_errors()
        try:
            applied = self._apply_arm(request)
        except FrankaControlError:
            if not self._try_recover():
                raise
            applied = self._apply_arm(request)  # once more after the recovery
        self._apply_gripper(request.width)
        return applied.with_(gripper_width=self._gripper_target)

    def _validate(self, cmd: Command) -> _Request:
        width = self._clip_width(cmd.gripper_width)
        if cmd.mode is ControlMode.JOINT_POSITION:
            q = require_finite("joint_position", cmd.joint_position, (7,))
            return _Request(cmd.mode, q=np.clip(q, self._lower, self._upper), width=width)
        if cmd.mode is ControlMode.JOINT_IMPEDANCE:
            return self._validate_impedance(cmd, width)
        dpos = require_finite("ee_delta_pos", cmd.ee_delta_pos, (3,))
        drot = np.zeros(3)
        if cmd.ee_delta_rot is not None:
            drot = require_finite("ee_delta_rot", cmd.ee_delta_rot, (3,))
        return _Request(
            cmd.mode,
            dpos=_clip_norm(dpos, MAX_EE_STEP_M),
            drot=_clip_norm(drot, MAX_EE_STEP_RAD),
            width=width,
        )

    def _validate_impedance(self, cmd: Command, width: float | None) -> _Request:
        q = require_finite("joint_position", cmd.joint_position, (7,))
        kp = require_finite("stiffness", cmd.stiffness, (7,))
        kd = require_finite("damping", cmd.damping, (7,))
        tau = np.zeros(7)
        if cmd.joint_torque is not None:
            tau = require_finite("joint_torque", cmd.joint_torque, (7,))
        return _Request(
            cmd.mode,
            q=np.clip(q, self._lower, self._upper),
            kp=np.clip(kp, 0.0, MAX_STIFFNESS_NM_PER_RAD),
            kd=np.clip(kd, 0.0, MAX_DAMPING_NMS_PER_RAD),
            tau_ff=np.clip(tau, -self._effort, self._effort),
            width=width,
        )

    def _clip_width(self, width: float | None) -> float | None:
        if width is None:
            return None
        if self._spec.gripper is None:
            raise CommandError(
                f"{self._spec.name} is configured without a gripper (FrankaConfig.gripper=False) "
                "but the command sets gripper_width"
            )
        if not math.isfinite(width):
            raise CommandError(f"gripper_width must be finite, got {width}")
        return min(max(float(width), HAND.min_width), HAND.max_width)

    def _apply_arm(self, r: _Request) -> Command:
        if r.mode is ControlMode.JOINT_POSITION:
            q = r.q
            assert q is not None
            self._guard(lambda: self._send_joint_target(q))
            return Command(r.mode, joint_position=q)
        if r.mode is ControlMode.JOINT_IMPEDANCE:
            self._guard(lambda: self._send_impedance(r))
            return Command(
                r.mode, joint_position=r.q, stiffness=r.kp, damping=r.kd, joint_torque=r.tau_ff
            )
        return self._guard(lambda: self._send_ee_delta(r))

    def _send_joint_target(self, q: FloatArray) -> None:
        franky = import_franky()
        if self._kind == "joint" and self._last_q is not None and np.array_equal(q, self._last_q):
            return  # the running motion already tracks this target
        self._switch_to("joint")
        self._robot.move(franky.JointMotion(q, return_when_finished=False), asynchronous=True)
        self._last_q = q.copy()

    def _send_impedance(self, r: _Request) -> None:
        franky = import_franky()
        assert r.q is not None and r.kp is not None and r.kd is not None
        reference = franky.JointReference(q=r.q, tau_ff=r.tau_ff)
        if self._kind == "impedance" and self._impedance is not None:
            if self._gains is None or not _same_gains(self._gains, (r.kp, r.kd)):
                self._impedance.set_gains(franky.JointImpedanceGains(r.kp, r.kd))
                self._gains = (r.kp.copy(), r.kd.copy())
            self._impedance.set_reference(reference)
            return
        self._switch_to("impedance")
        motion = franky.JointImpedanceTrackingMotion(
            stiffness=r.kp,
            damping=r.kd,
            lower_joint_limits=self._lower,
            upper_joint_limits=self._upper,
        )
        motion.set_reference(reference)
        self._robot.move(motion, asynchronous=True)
        self._impedance, self._gains = motion, (r.kp.copy(), r.kd.copy())

    def _send_ee_delta(self, r: _Request) -> Command:
        franky = import_franky()
        assert r.dpos is not None and r.drot is not None
        state = self._robot.state
        T_meas = np.asarray(state.O_T_EE.matrix, dtype=np.float64)
        meas_pos, meas_quat = T_meas[:3, 3].copy(), quat_from_mat(T_meas[:3, :3])
        base = self._ee_target if self._kind == "cartesian" else None
        base_pos, base_quat = base if base is not None else (meas_pos, meas_quat)
        target_pos, target_quat = _limit_lead(
            base_pos + r.dpos,
            quat_multiply(quat_from_rotvec(r.drot), base_quat),
            meas_pos,
            meas_quat,
        )
        if base is None or not (
            np.array_equal(target_pos, base_pos) and np.array_equal(target_quat, base_quat)
        ):  # an unchanged target keeps the running motion
            self._switch_to("cartesian")
            affine = franky.Affine(_homogeneous(target_pos, target_quat))
            motion = franky.CartesianMotion(
                affine, franky.ReferenceType.Absolute, return_when_finished=False
            )
            self._robot.move(motion, asynchronous=True)
            self._ee_target = (target_pos, target_quat)
        err_pos, err_rot = target_pos - meas_pos, quat_error(target_quat, meas_quat)
        return Command(
            ControlMode.EE_DELTA,
            ee_delta_pos=err_pos,
            ee_delta_rot=err_rot,
            joint_position=self._ik_estimate(state, err_pos, err_rot),
        )

    def _ik_estimate(self, state: Any, err_pos: FloatArray, err_rot: FloatArray) -> FloatArray:
        """Joints reaching the pose error to first order: one damped least-squares step with
        libfranka's zero Jacobian (6, 7) at the measured joints, clipped to the limits."""
        franky = import_franky()
        jac = np.asarray(self._robot.model.zero_jacobian(franky.Frame.EndEffector, state))
        err = np.concatenate([err_pos, err_rot])  # (6,)
        dq = jac.T @ np.linalg.solve(jac @ jac.T + _IK_DAMPING * np.eye(6), err)  # (7,)
        scale = max(1.0, float(np.abs(dq).max()) / _IK_MAX_STEP_RAD)
        q = np.asarray(state.q, dtype=np.float64) + dq / scale
        return np.clip(q, self._lower, self._upper)

    def _apply_gripper(self, width: float | None) -> None:
        if width is None or self._hand is None:
            return
        self._hand.request(width)
        self._gripper_target = width

    # ----------------------------------------------------------- motions
    def _switch_to(self, kind: MotionKind) -> None:
        """Stop the running motion if it is of another control signal than ``kind``."""
        if self._kind is not None and self._kind != kind:
            self._stop_motion()
        if self._kind != kind:
            self._forget_motion()
            self._kind = kind

    def _forget_motion(self) -> None:
        self._kind, self._impedance, self._gains = None, None, None
        self._last_q, self._ee_target = None, None

    def _stop_motion(self) -> None:
        """Bring the running motion to rest with franky's stop motion of its kind; preempt it
        if that takes longer than ``stop_timeout_s``."""
        franky, kind = import_franky(), self._kind
        stop = {
            "joint": franky.JointStopMotion,
            "cartesian": franky.CartesianStopMotion,
            "impedance": franky.TorqueStopMotion,
        }
        if kind is not None and self._robot.is_in_control:
            self._robot.move(stop[kind](), asynchronous=True)
            if not self._join(self.config.stop_timeout_s):
                self._robot.stop()
                self._join(self.config.stop_timeout_s)
        self._forget_motion()

    def _join(self, timeout_s: float) -> bool:
        """Wait for the motion to end; a preemption we caused ourselves is not an error."""
        try:
            return bool(self._robot.join_motion(timeout_s))
        except import_franky().ControlException as exc:
            if "preempted" not in str(exc).lower():
                raise
            return True

    def _stop_motion_quietly(self) -> None:
        errors: tuple[type[BaseException], ...] = (*franky_errors(), DriverError)
        try:
            self._stop_motion()
        except errors as exc:
            reason = " ".join(str(exc).split())
            log.warning(
                "stopping the Franka at %s on disconnect failed: %s", self.config.host, reason
            )

    # ----------------------------------------------------------- errors
    def _guard(self, fn: Callable[[], T]) -> T:
        """``fn()`` with franky's exceptions turned into :class:`FrankaError`."""
        try:
            return fn()
        except RobolearnError:
            raise  # already ours (DriverError is a RuntimeError too)
        except franky_errors() as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: BaseException) -> FrankaError:
        flags = self._error_flags() if isinstance(exc, import_franky().ControlException) else ""
        error = franka_error(exc, self.config.host, flags)
        self._forget_motion()
        if isinstance(error, FrankaConnectionError):
            self._fault = error
        return error

    def _error_flags(self) -> str:
        try:
            return repr(self._robot.state.last_motion_errors)
        except franky_errors():
            return ""

    def _surface_errors(self) -> None:
        """Raise what failed since the last call: a motion's error, or the hand's."""
        try:
            self._guard(self._robot.poll_motion)
        except FrankaControlError:
            if not self._try_recover():
                raise
        if self._hand is not None:
            hand_error = self._hand.take_error()
            if hand_error is not None:
                error = franka_error(hand_error, self.config.host)
                if isinstance(error, FrankaConnectionError):
                    self._fault = error
                elif not isinstance(error, FrankaGripperError):
                    error = FrankaGripperError(f"the Franka Hand failed: {error}")
                raise error

    def _try_recover(self) -> bool:
        """With auto_recover, libfranka's error recovery; whether the driver may go on."""
        cfg = self.config
        if not cfg.auto_recover or self.recoveries >= cfg.max_recoveries:
            return False
        ok = self._guard(lambda: bool(self._robot.recover_from_errors()))
        self._forget_motion()
        if ok:
            self.recoveries += 1
            log.warning(
                "Franka at %s: recovered from a control error automatically (%d of %d)",
                cfg.host,
                self.recoveries,
                cfg.max_recoveries,
            )
        return ok

    def _lose(self, reason: str) -> None:
        self._fault = FrankaConnectionError(
            f"{reason}. Check that the robot (or franky-sim) still runs and the network is up, "
            "then disconnect() and connect()"
        )
        raise self._fault

    def _raise_if_lost(self) -> None:
        if self._fault is not None:
            raise self._fault


# ------------------------------------------------------------------------ helpers


def _clip_norm(vec: FloatArray, max_norm: float) -> FloatArray:
    norm = float(np.linalg.norm(vec))
    return vec if norm <= max_norm else vec * (max_norm / norm)


def _limit_lead(
    pos: FloatArray, quat: FloatArray, meas_pos: FloatArray, meas_quat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The target pose pulled back to within the lead limits of the measured pose (the same
    arrays when it is within them)."""
    lead = pos - meas_pos
    if float(np.linalg.norm(lead)) > MAX_EE_LEAD_M:
        pos = meas_pos + _clip_norm(lead, MAX_EE_LEAD_M)
    rot = quat_error(quat, meas_quat)
    if float(np.linalg.norm(rot)) > MAX_EE_LEAD_RAD:
        quat = quat_multiply(quat_from_rotvec(_clip_norm(rot, MAX_EE_LEAD_RAD)), meas_quat)
    return pos, quat


def _homogeneous(pos: FloatArray, quat: FloatArray) -> FloatArray:
    """4×4 transform of a position and a (w, x, y, z) quaternion."""
    T = np.eye(4)
    T[:3, :3] = mat_from_quat(quat)
    T[:3, 3] = pos
    return T


def _same_gains(a: tuple[FloatArray, FloatArray], b: tuple[FloatArray, FloatArray]) -> bool:
    return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
