"""The child side of :class:`drivers.franka.sim.FrankySim`: franky-sim serving one simulated FR3.

Run as ``python -m drivers.franka`` (``FrankySim`` does, with ``--control-stdin``). It differs
from franky-sim's own ``SimulationServer.run_forever`` in its pacing: ``run_once`` sleeps a
fixed remainder after each 1 ms step, so every late wake-up on a busy machine is lost and
simulated time drifts behind the wall clock (45 % of real time on two loaded cores in our runs;
the driver and its tests run on wall time). Here each step has a deadline on the wall clock, and
after a stall the simulation catches up by stepping without pause, as a real robot extrapolates
missed packets (up to :data:`MAX_CATCH_UP_S`, beyond which it skips ahead); 93 % of real time on
the same loaded machine.

Known limit of franky-sim's fidelity (not changed here): franky starts every motion that
replaces a running one from the robot-reported desired velocity and acceleration (``dq_d``,
``ddq_d``; ``O_dP_EE_c``, ``O_ddP_EE_c`` in Cartesian space). franky-sim estimates them by
low-pass filtered finite differences of the commands it has applied, which lag the client's
trajectory by several milliseconds. Targets that change at every tick therefore overshoot in
the simulation more than on a real arm (about 0.15 rad past a joint target approached at
1.3 rad/s), and Cartesian targets re-sent at every tick occasionally make franky's trajectory
generator fail (``Motion planner failed with error code -111``). Unfiltered differences on the
commands' own clock (message ids) were tried: less overshoot, but the state still lags the
commands, and feeding that back through franky's takeovers could run away.
"""

from __future__ import annotations

import argparse
import json
import logging
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from drivers.franka.config import FR3_READY_Q

log = logging.getLogger("drivers.franka.sim_server")

READY_PREFIX = "FRANKY_SIM_READY "
"""Start of the line printed (followed by JSON with the address) each time a simulation is up."""
CHECK_EVERY_STEPS = 20
"""Control requests on stdin are looked for once every this many 1 ms steps."""
MAX_CATCH_UP_S = 0.05
"""Largest lag behind the wall clock the simulation makes up by stepping without pause."""
STEP_S = 0.001
"""franky-sim's physics step and libfranka's control period."""


def serve_once(
    initial_q: Sequence[float],
    gripper_width_m: float,
    hostnames: Iterable[str] | None,
    announce: Callable[[str], None],
    request: Callable[[], str | None],
) -> str:
    """Run one simulation until ``request()`` returns something; returns that request.

    ``announce(address)`` is called once the robot and hand servers listen; ``request`` is
    polled every :data:`CHECK_EVERY_STEPS` steps.
    """
    from franky_sim import LocalHostnames, SimulationServer
    from franky_sim.mujoco_simulator import MujocoSimulator

    with MujocoSimulator() as sim:
        robot = sim.add_robot(initial_q=tuple(initial_q), initial_hand_width=gripper_width_m)
        candidates = LocalHostnames() if hostnames is None else list(hostnames)
        with SimulationServer(sim, hostname_candidates=candidates) as server:
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


# -------------------------------------------------------------------------------- CLI


def _stdin_requests(stream: IO[str]) -> Callable[[], str | None]:
    """Non-blocking reader of control lines: "reset", or "quit" (also at EOF)."""

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
        prog="python -m drivers.franka",
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
        "--control-stdin",
        action="store_true",
        help="read 'reset' / 'quit' lines on stdin, quit at EOF (FrankySim uses it)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve simulations until quit (EOF on stdin with --control-stdin), Ctrl-C or SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="franky-sim: %(levelname)s %(message)s")
    logging.getLogger("franky_sim").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    piped = bool(args.control_stdin)
    request = _stdin_requests(sys.stdin) if piped else _never
    announce = _announce_line if piped else _announce_human
    try:
        while True:
            got = serve_once(args.initial_q, args.gripper_width, args.hostname, announce, request)
            if got != "reset":
                return 0
    except KeyboardInterrupt:
        return 0
