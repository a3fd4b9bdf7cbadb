"""The driver contract: one typed interface for every robot, simulated or real.

A driver exposes

* ``spec``: joints and limits (SI), control modes, cameras with intrinsics, rates;
* ``connect()`` / ``disconnect()``, also as a context manager;
* ``read()`` → :class:`~robolearn.core.types.RobotState` (timestamped);
* ``command(cmd)`` → the :class:`~robolearn.core.types.Command` actually applied;
* a clock: ``now()``, ``wait(duration_s)`` and ``wait_until(t)``. In simulation waiting
  advances physics by that much simulated time; on hardware it waits wall time (sleep, then
  spin for the last stretch). Loops, tests and tools written against this clock run unchanged
  on a simulated and a real arm.
"""

from __future__ import annotations

import abc
import time
from types import TracebackType

from robolearn.core.timing import precise_sleep_until
from robolearn.core.types import Command, DriverError, RobotSpec, RobotState


class Driver(abc.ABC):
    """Base class of every robot driver. Subclasses implement the ``_``-prefixed hooks."""

    def __init__(self) -> None:
        self._connected = False

    @property
    @abc.abstractmethod
    def spec(self) -> RobotSpec:
        """The robot's static description."""

    @property
    def realtime(self) -> bool:
        """Whether waiting on this driver's clock follows the wall clock (always on hardware;
        a simulator may also step as fast as it can)."""
        return True

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the connection (start the simulation, open the port, ...). Idempotent."""
        if not self._connected:
            self._connect()
            self._connected = True

    def disconnect(self) -> None:
        """Stop the robot safely and release it. Idempotent."""
        if self._connected:
            try:
                self._disconnect()
            finally:
                self._connected = False

    def __enter__(self) -> Driver:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    def read(self) -> RobotState:
        """The current state of the robot and its cameras."""
        self._require_connected()
        return self._read()

    def command(self, cmd: Command) -> Command:
        """Send one command; returns the command actually applied (after clipping)."""
        self._require_connected()
        if cmd.mode not in self.spec.control_modes:
            modes = ", ".join(sorted(m.value for m in self.spec.control_modes))
            raise DriverError(
                f"{self.spec.name} does not support control mode {cmd.mode.value!r}; "
                f"supported: {modes}"
            )
        return self._command(cmd)

    def now(self) -> float:
        """Seconds on this driver's clock (``time.perf_counter`` for hardware)."""
        return time.perf_counter()

    def wait(self, duration_s: float) -> float:
        """Let ``duration_s`` pass on this driver's clock; returns ``now()`` afterwards."""
        return self.wait_until(self.now() + duration_s)

    def wait_until(self, t: float) -> float:
        """Block until ``now() >= t`` on this driver's clock; returns ``now()`` afterwards."""
        return precise_sleep_until(t)

    def _require_connected(self) -> None:
        if not self._connected:
            raise DriverError(f"{self.spec.name} is not connected: call connect() first")

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _read(self) -> RobotState: ...

    @abc.abstractmethod
    def _command(self, cmd: Command) -> Command: ...
