"""franky-sim in a child process: a simulated Franka FR3 behind libfranka's own network protocol.

franky-sim (PyPI ``franky-sim``) answers libfranka's TCP/UDP protocol with a MuJoCo physics
backend, so :class:`~robolearn.drivers.franka.driver.FrankaDriver` talks to it exactly as it talks
to a
real arm. libfranka's ports are fixed (1337 for the arm, 1338 for the Franka Hand), so instead of
a free *port* the simulator binds the first free *loopback address* (``127.0.0.1``,
``127.0.0.2``, ...): several simulators run side by side, each at its own address::

    with FrankySim() as sim:                          # starts the child process
        with FrankaDriver(sim.driver_config()) as arm:  # realtime="ignore", host=sim.address
            state = arm.read()

The child runs the simulation at 1 kHz of wall time in its own process, so its Python work never
competes with the control loop for the GIL. :meth:`FrankySim.reset` rebuilds the simulation in
the same process (arm at ``initial_q``, gripper at ``gripper_width_m``) in a fraction of the
start-up time. :meth:`FrankySim.kill` ends it abruptly, like a crashed robot controller.

From a shell, ``python -m robolearn.drivers.franka`` serves one simulated arm until Ctrl-C and
prints the
address to connect to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from robolearn.core.types import ConfigError, DriverError
from robolearn.drivers.franka.config import FR3_READY_Q, FrankaConfig
from robolearn.drivers.franka.sim_server import READY_PREFIX, SimSettings

_LOG_TAIL_CHARS = 2000


class FrankySim:
    """franky-sim (MuJoCo backend) serving one simulated FR3 from a child process.

    ``initial_q`` (rad, 7 values) and ``gripper_width_m`` are the state after start and after
    every :meth:`reset`. ``joint_speed_limits_rad_s`` (default: the FR3's) are the speeds above
    which the simulated arm aborts a motion with a reflex, like the real one. ``hostnames`` lists
    loopback addresses to try in order (default: 127.0.0.1, 127.0.0.2, ...).
    ``startup_timeout_s`` bounds start and reset. The child also ends when this process dies
    (its stdin closes). See :mod:`robolearn.drivers.franka.sim_server` for how it paces the
    simulation
    and where franky-sim differs from a real arm.
    """

    def __init__(
        self,
        initial_q: Sequence[float] = FR3_READY_Q,
        gripper_width_m: float = 0.08,
        hostnames: Sequence[str] | None = None,
        startup_timeout_s: float = 30.0,
        joint_speed_limits_rad_s: Sequence[float] | None = None,
    ) -> None:
        if not 0.0 <= gripper_width_m <= 0.08:
            raise ConfigError(f"gripper_width_m must lie in [0, 0.08], got {gripper_width_m}")
        self.settings = SimSettings(initial_q=_check_q(initial_q), gripper_width_m=gripper_width_m)
        if joint_speed_limits_rad_s is not None:
            self.settings = self._with(joint_speed_limits_rad_s=joint_speed_limits_rad_s)
        self.hostnames = tuple(hostnames) if hostnames is not None else None
        self.startup_timeout_s = float(startup_timeout_s)
        self._proc: subprocess.Popen[bytes] | None = None
        self._address: str | None = None
        self._log_path: Path | None = None
        self._pending = b""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Start the child process and wait until it listens; returns its address."""
        if self.running:
            return self.address
        fd, log_name = tempfile.mkstemp(prefix="franky-sim-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log:
            self._proc = subprocess.Popen(
                self._child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        self._pending = b""
        self._address = self._await_ready("start")
        return self._address

    def reset(self, **changes: Any) -> str:
        """A fresh simulation in the same process; returns the address.

        ``changes`` (fields of :class:`~robolearn.drivers.franka.sim_server.SimSettings`, e.g.
        ``joint_speed_limits_rad_s``) apply to this simulation only; the next plain reset goes
        back to the constructor's settings. Disconnect every driver first: the reset closes
        their connections.
        """
        proc = self._require_running()
        assert proc.stdin is not None
        line = f"reset {self._with(**changes).to_json()}\n"
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except BrokenPipeError as exc:
            raise DriverError(f"franky-sim ended before the reset: {self._log_tail()}") from exc
        self._address = self._await_ready("reset")
        return self._address

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the child cleanly (it closes its sockets); kill it if it does not end in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # EOF on stdin: the child's signal to quit
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._close_pipes(proc)
        self._remove_log()

    def kill(self) -> None:
        """End the child at once with SIGKILL, as a crashing robot controller would."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        self._close_pipes(proc)
        self._remove_log()

    def __enter__(self) -> FrankySim:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ accessors
    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def address(self) -> str:
        """The loopback address the simulated robot listens on."""
        self._require_running()
        assert self._address is not None
        return self._address

    @property
    def pid(self) -> int | None:
        """The child's process id, ``None`` when not running."""
        return self._proc.pid if self.running and self._proc is not None else None

    def driver_config(self, **changes: Any) -> FrankaConfig:
        """A :class:`FrankaConfig` for this simulator: its address and ``realtime="ignore"``
        (a simulator needs no realtime kernel), with ``changes`` applied on top."""
        fields: dict[str, Any] = {"host": self.address, "realtime": "ignore"}
        fields.update(changes)
        return FrankaConfig(**fields)

    # ------------------------------------------------------------------ internals
    def _with(self, **changes: Any) -> SimSettings:
        """The settings with ``changes``, checked."""
        if "initial_q" in changes:
            changes["initial_q"] = _check_q(changes["initial_q"])
        if "joint_speed_limits_rad_s" in changes:
            changes["joint_speed_limits_rad_s"] = _check_limits(changes["joint_speed_limits_rad_s"])
        try:
            return dataclasses.replace(self.settings, **changes)
        except TypeError as exc:
            raise ConfigError(f"unknown franky-sim setting: {exc}") from exc

    def _child_command(self) -> list[str]:
        cmd = [sys.executable, "-m", "robolearn.drivers.franka", "--control-stdin"]
        cmd += ["--settings", self.settings.to_json()]
        for host in self.hostnames or ():
            cmd += ["--hostname", host]
        return cmd

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise DriverError("franky-sim is not running: call start() (or use it as `with`)")
        return self._proc

    def _await_ready(self, what: str) -> str:
        """Read the child's ready line; DriverError if it ends or takes too long."""
        proc = self._require_running()
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            line = self._next_line(proc, deadline)
            if line is None:
                ended = proc.poll() is not None or time.monotonic() < deadline
                self._kill_child()
                problem = (
                    "ended" if ended else f"did not get ready within {self.startup_timeout_s:g} s"
                )
                message = f"franky-sim {problem} ({what}): {self._log_tail()}"
                self._remove_log()
                raise DriverError(message)
            if line.startswith(READY_PREFIX):
                return str(json.loads(line[len(READY_PREFIX) :])["address"])

    def _next_line(self, proc: subprocess.Popen[bytes], deadline: float) -> str | None:
        """The child's next stdout line, or ``None`` on EOF or at the deadline."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def _kill_child(self) -> None:
        """Kill the child if it runs (its log stays, for the error message)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            self._close_pipes(proc)

    def _log_tail(self) -> str:
        """The last line of the child's log (its error, if it failed), for one-line messages."""
        lines: list[str] = []
        if self._log_path is not None and self._log_path.exists():
            text = self._log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
            lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else "its log is empty"

    def _remove_log(self) -> None:
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None

    @staticmethod
    def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _check_q(q: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in q)
    if len(values) != 7 or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"initial_q must be 7 finite joint angles (rad), got {list(q)}")
    return values


def _check_limits(limits: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in limits)
    if len(values) != 7 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"joint_speed_limits_rad_s must be 7 speeds > 0 (rad/s), got {values}")
    return values
