"""The child side of :class:`robolearn.drivers.franka.sim.FrankySim`: franky-sim serving one
simulated FR3.

Run as ``python -m robolearn.drivers.franka`` (``FrankySim`` does, with ``--control-stdin``). Two
things
differ from franky-sim's own ``SimulationServer.run_forever``:

* **Pacing on absolute deadlines.** ``run_once`` sleeps a fixed remainder after each 1 ms step,
  so every late wake-up on a busy machine is lost and simulated time drifts behind the wall
  clock (45 % of real time on two loaded cores in our runs; the driver and its tests run on wall
  time). Here each step has a deadline on the wall clock, and after a stall the simulation
  catches up by stepping without pause, as a real robot extrapolates missed packets (up to
  :data:`MAX_CATCH_UP_S`, beyond which it skips ahead): 93 % of real time on the same machine.
* **Reflexes.** A real arm aborts a motion whose commands exceed its joint or Cartesian speed
  limits, or whose client stops answering its states (``*_motion_generator_velocity_limits_
  violation``, ``communication_constraints_violation``); franky-sim executes anything. Here each
  motion's commands are checked (:class:`MotionGuard`), and a violation aborts the motion with
  libfranka's reflex status: the arm holds where it was last told to be, and the error shows in
  the robot state's last motion errors until the next motion, so the client sees what it would
  see on the robot (franky raises ``ControlException: ... aborted by reflex!``). This matters in
  practice: when the client's process is starved of CPU, libfranka skips robot states and franky
  extrapolates its trajectory, which then runs away (by up to 2.8 rad in our runs on an
  overloaded machine); the robot refuses that, and so does this simulator. Tighter
  :attr:`SimSettings.joint_speed_limits_rad_s` provoke a reflex on purpose (error-handling
  tests).

A limit of franky-sim's fidelity that stays: franky starts every motion that replaces a
running one from the robot-reported desired velocity and acceleration (``dq_d``, ``ddq_d``;
``O_dP_EE_c``, ``O_ddP_EE_c``). franky-sim estimates them by low-pass filtered finite
differences of the commands it has applied, which lag the client's trajectory by several
milliseconds, so targets that change at every tick overshoot more than on a real arm (about
0.15 rad past a joint target approached at 1.3 rad/s), and Cartesian targets re-sent at every
tick occasionally make franky's trajectory generator fail (``Motion planner failed with error
code -111``). Unfiltered differences, on the simulation's clock or on the commands' own,
were tried and made franky's trajectories less stable, not more.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import select
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from robolearn.drivers.franka.config import FR3_JOINTS, FR3_READY_Q

log = logging.getLogger("robolearn.drivers.franka.sim_server")

READY_PREFIX = "FRANKY_SIM_READY "
"""Start of the line printed (followed by JSON with the address) each time a simulation is up."""
CHECK_EVERY_STEPS = 20
"""Control requests on stdin are looked for once every this many 1 ms steps."""
MAX_CATCH_UP_S = 0.05
"""Largest lag behind the wall clock the simulation makes up by stepping without pause."""
STEP_S = 0.001
"""franky-sim's physics step and libfranka's control period."""
SPEED_TOLERANCE = 1.2
"""Commands count as too fast above this factor of the speed limit."""
SPEED_WINDOW_STATES = 10
"""Speeds are measured over at least this many robot states (ms)."""
FR3_CARTESIAN_SPEED_M_S = 3.0
"""The FR3's end-effector translational speed limit."""
MAX_MISSED_STATES = 100
"""Robot states in a row (1 ms each) the client may leave unanswered before the motion is
aborted. More lenient than a real arm, whose client runs on a realtime kernel: a shorter gap lets
franky extrapolate only a harmless distance, and a busy test machine starves the client that
long now and then."""
JOINT_SPEED_REFLEX = "joint_motion_generator_velocity_limits_violation"
CARTESIAN_SPEED_REFLEX = "cartesian_motion_generator_velocity_limits_violation"
COMMUNICATION_REFLEX = "communication_constraints_violation"
_ERROR_INDEX = {JOINT_SPEED_REFLEX: 13, CARTESIAN_SPEED_REFLEX: 18, COMMUNICATION_REFLEX: 25}
"""Positions of the reflexes in libfranka's 41 error flags, as in libfranka 0.21 (franky 2.0);
:func:`error_flags` asks the installed franky when it can."""


@dataclass(frozen=True)
class SimSettings:
    """What a simulation starts from, and the speed limits its reflexes enforce."""

    initial_q: tuple[float, ...] = FR3_READY_Q
    """Joint angles (rad) at start and after every reset."""
    gripper_width_m: float = 0.08
    """Franka Hand opening (m) at start and after every reset."""
    joint_speed_limits_rad_s: tuple[float, ...] = tuple(j.max_velocity for j in FR3_JOINTS)
    """Commanded joint speeds above these abort the motion with a reflex (FR3's limits)."""
    cartesian_speed_limit_m_s: float = FR3_CARTESIAN_SPEED_M_S
    """Commanded end-effector speeds above this abort a Cartesian motion with a reflex."""

    def to_json(self) -> str:
        """One line of JSON (for the child's command line and reset requests)."""
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> SimSettings:
        """The settings :meth:`to_json` wrote."""
        fields = json.loads(text)
        for name in ("initial_q", "joint_speed_limits_rad_s"):
            fields[name] = tuple(float(v) for v in fields[name])
        return SimSettings(**fields)


def serve_once(
    settings: SimSettings,
    hostnames: Iterable[str] | None,
    announce: Callable[[str], None],
    request: Callable[[], str | None],
) -> str:
    """Run one simulation until ``request()`` returns something; returns that request.

    ``announce(address)`` is called once the robot and hand servers listen; ``request`` is
    polled every :data:`CHECK_EVERY_STEPS` steps.
    """
    from franky_sim import LocalHostnames
    from franky_sim.mujoco_simulator import MujocoSimulator

    with MujocoSimulator() as sim:
        robot = sim.add_robot(
            initial_q=settings.initial_q, initial_hand_width=settings.gripper_width_m
        )
        candidates = LocalHostnames() if hostnames is None else list(hostnames)
        with _simulation_server(sim, candidates, settings) as server:
            try:
                announce(str(robot.hostname))
                return _run_until_request(server, request)
            finally:
                _drop_clients(server)


def _run_until_request(server: Any, request: Callable[[], str | None]) -> str:
    """Step at 1 kHz on absolute wall-clock deadlines until a request arrives."""
    deadline = time.perf_counter()
    step = 0
    while True:
        _step_once(server)
        step += 1
        if step % CHECK_EVERY_STEPS == 0:
            got = request()
            if got is not None:
                return got
        deadline += STEP_S
        now = time.perf_counter()
        if now < deadline:
            time.sleep(deadline - now)
        elif now - deadline > MAX_CATCH_UP_S:
            deadline = now  # too far behind: give up on those steps


def _step_once(server: Any) -> None:
    """One step: take commands, advance physics, send the new state (``run_once`` unpaced)."""
    for robot_server in server.robot_servers:
        robot_server.process_commands()
    server.sim.step()
    for robot_server in server.robot_servers:
        robot_server.send_state()


def _drop_clients(server: Any) -> None:
    """Close client connections too (``SimulationServer.cleanup`` closes only listeners)."""
    for robot_server in server.robot_servers:
        robot_server.reset_state()
        if robot_server.gripper_server is not None:
            robot_server.gripper_server.reset_state()


# ---------------------------------------------------------------------------- reflexes


def error_flags(name: str) -> tuple[bool, ...]:
    """libfranka's 41 error flags with only ``name`` set, in the installed libfranka's order
    (it has changed between versions); the libfranka 0.21 order without franky."""
    try:
        import franky

        size = len(franky.Errors().__getstate__())
        for i in range(size):
            flags = tuple(j == i for j in range(size))
            errors = franky.Errors.__new__(franky.Errors)
            errors.__setstate__(flags)
            if getattr(errors, name):
                return flags
    except (ImportError, AttributeError, TypeError):
        pass
    return tuple(j == _ERROR_INDEX[name] for j in range(41))


class MotionGuard:
    """Checks one motion's commands as the robot's reflexes do: speeds within the limits, and
    no more than :data:`MAX_MISSED_STATES` robot states in a row left unanswered.

    ``mode`` is ``"joint"`` (joint positions are checked), ``"cartesian"`` (the end effector's
    position) or anything else (only the answering is checked). A speed is the distance between
    two commands at least :data:`SPEED_WINDOW_STATES` robot states apart (message ids, 1 ms each)
    over that time: single commands can step ahead of the trajectory when the client and the
    simulation jitter against each other, a runaway keeps going.
    """

    def __init__(self, mode: str, settings: SimSettings) -> None:
        self.mode = mode
        self._joint_limits = settings.joint_speed_limits_rad_s
        self._cartesian_limit = settings.cartesian_speed_limit_m_s
        self._history: deque[tuple[int, tuple[float, ...]]] = deque(maxlen=4 * SPEED_WINDOW_STATES)

    def violation(self, message_id: int, q_c: Sequence[float], O_T_EE_c: Sequence[float]) -> str:
        """The reflex this command triggers (a libfranka error name), or ``""``."""
        values = tuple(O_T_EE_c[12:15]) if self.mode == "cartesian" else tuple(q_c)
        history = self._history
        if history and message_id <= history[-1][0]:
            return ""  # a repeated or late command: nothing new
        if history and message_id - history[-1][0] > MAX_MISSED_STATES + 1:
            return COMMUNICATION_REFLEX
        history.append((message_id, values))
        before = next(
            (h for h in reversed(history) if h[0] <= message_id - SPEED_WINDOW_STATES), None
        )
        if before is None:
            return ""
        dt_s = (message_id - before[0]) * STEP_S
        if self.mode == "joint" and self._joint_too_fast(values, before[1], dt_s):
            return JOINT_SPEED_REFLEX
        if self.mode == "cartesian" and math.dist(values, before[1]) > self._cartesian_step(dt_s):
            return CARTESIAN_SPEED_REFLEX
        return ""

    def _joint_too_fast(
        self, now: tuple[float, ...], before: tuple[float, ...], dt_s: float
    ) -> bool:
        return any(
            abs(a - b) > SPEED_TOLERANCE * limit * dt_s
            for a, b, limit in zip(now, before, self._joint_limits, strict=True)
        )

    def _cartesian_step(self, dt_s: float) -> float:
        return SPEED_TOLERANCE * self._cartesian_limit * dt_s


def _next_state_id(server: Any) -> int:
    """The message id franky-sim gives the next robot state it sends (0 if unknown)."""
    return int(getattr(server, "_FrankaServer__message_id", 0))


def _simulation_server(sim: Any, hostnames: Iterable[str], settings: SimSettings) -> Any:
    """franky-sim's SimulationServer whose robot servers have the reflexes of MotionGuard."""
    from franky_sim import SimulationServer
    from franky_sim.franka_robot_protocol import (
        BaseCommand,
        MoveCommandMotionGeneratorMode,
        MoveStatus,
        RobotCommand,
        UDPCommand,
    )
    from franky_sim.franka_robot_server import FrankaRobotServer

    modes = {
        MoveCommandMotionGeneratorMode.kJointPosition: "joint",
        MoveCommandMotionGeneratorMode.kCartesianPosition: "cartesian",
    }

    class ReflexRobotServer(FrankaRobotServer):
        """FrankaRobotServer with the reflexes of :class:`MotionGuard`, and deaf to commands
        that answer robot states from before the current motion started."""

        _guard: MotionGuard | None = None
        _reflex = ""
        _flags: tuple[bool, ...] = ()
        _first_id = 0

        def start_motion(self, controller_mode: Any, generator_mode: Any, motion_id: int) -> None:
            super().start_motion(controller_mode, generator_mode, motion_id)
            self._guard = MotionGuard(modes.get(generator_mode, ""), settings)
            self._reflex = ""
            self._first_id = _next_state_id(self)

        def stop_motion(self, send_preemption_signal: bool = True) -> None:
            self._guard = None
            super().stop_motion(send_preemption_signal)

        def _reset_state(self) -> None:
            self._guard, self._reflex, self._first_id = None, "", 0
            super()._reset_state()

        def _handle_udp_command(self, command_data: bytes) -> None:
            cmd = UDPCommand.from_bytes(command_data)
            if cmd.message_id < self._first_id:
                # A late command of the previous motion (franky-sim would let its "finished"
                # flag end the motion just started, and the client would wait forever).
                return
            guard = self._guard
            if guard is not None:
                error = guard.violation(cmd.message_id, cmd.q_c, cmd.O_T_EE_c)
                if error:
                    self._abort(error)
                    return  # the offending command is never applied
            super()._handle_udp_command(command_data)

        def _abort(self, error: str) -> None:
            motion_id = self.current_motion_id
            self.stop_motion(send_preemption_signal=False)  # hold the last commanded pose
            self._reflex, self._flags = error, error_flags(error)
            if motion_id:
                BaseCommand.send_response(
                    self._tcp_socket, RobotCommand.kMove, motion_id, MoveStatus.kReflexAborted
                )
            self.reset_current_motion_id()
            log.warning("reflex: %s, motion %d aborted", error, motion_id)

        @property
        def robot_state(self) -> Any:
            state = super().robot_state
            if not self._reflex:
                return state
            return state.replace(reflex_reason=self._flags)  # libfranka's last_motion_errors

    class Server(SimulationServer):
        def init(self) -> None:
            for robot in self.sim.robots:
                server = ReflexRobotServer(robot, self._remaining_hostname_candidates)
                server.init()
                self.robot_servers.append(server)
            self.sim.start()

    return Server(sim, hostname_candidates=hostnames)


# -------------------------------------------------------------------------------- CLI


def _stdin_requests(stream: IO[str]) -> Callable[[], str | None]:
    """Non-blocking reader of control lines: "reset [settings JSON]", or "quit" (also at EOF)."""

    def poll() -> str | None:
        if not select.select([stream], [], [], 0)[0]:
            return None
        line = stream.readline()
        if not line:
            return "quit"
        return line.strip() or None

    return poll


def _never() -> str | None:
    return None


def _announce_line(address: str) -> None:
    print(READY_PREFIX + json.dumps({"address": address}), flush=True)


def _announce_human(address: str) -> None:
    print(
        f"franky-sim ready at {address}: connect with FrankaConfig(host={address!r}, "
        "realtime='ignore'); Ctrl-C stops it",
        flush=True,
    )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m robolearn.drivers.franka",
        description="Serve a simulated Franka FR3 (franky-sim, MuJoCo) on a loopback address.",
    )
    parser.add_argument(
        "--initial-q",
        type=float,
        nargs=7,
        default=list(FR3_READY_Q),
        metavar="RAD",
        help="joint angles after start and reset (default: libfranka's ready pose)",
    )
    parser.add_argument(
        "--gripper-width", type=float, default=0.08, metavar="M", help="hand opening (m)"
    )
    parser.add_argument(
        "--hostname", action="append", default=None, help="loopback address to bind (repeatable)"
    )
    parser.add_argument(
        "--settings", default=None, help="SimSettings as JSON (overrides the two options above)"
    )
    parser.add_argument(
        "--control-stdin",
        action="store_true",
        help="read 'reset [JSON]' / 'quit' lines on stdin, quit at EOF (FrankySim uses it)",
    )
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> SimSettings:
    if args.settings is not None:
        return SimSettings.from_json(args.settings)
    return SimSettings(initial_q=tuple(args.initial_q), gripper_width_m=args.gripper_width)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve simulations until quit (EOF on stdin with --control-stdin), Ctrl-C or SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="franky-sim: %(levelname)s %(message)s")
    logging.getLogger("franky_sim").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    piped = bool(args.control_stdin)
    request = _stdin_requests(sys.stdin) if piped else _never
    announce = _announce_line if piped else _announce_human
    settings = _settings(args)
    try:
        while True:
            got = serve_once(settings, args.hostname, announce, request)
            word, _, rest = got.partition(" ")
            if word != "reset":
                return 0
            if rest:
                settings = SimSettings.from_json(rest)
    except KeyboardInterrupt:
        return 0
