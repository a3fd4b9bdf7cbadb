"""The Franka Hand driven from daemon threads, so the control loop never waits for it."""

from __future__ import annotations

import threading
import time
from typing import Any

from robolearn.drivers.franka.config import HAND

GRIPPER_DEADBAND_M = 5e-4
"""A width target closer than this to the measured width sends no hand command."""
READ_INTERVAL_S = 0.01
"""Pause between two reads of the hand's width (each waits for its next state packet)."""


class HandWorker:
    """A ``franky.Gripper`` on two daemon threads: one runs commands (latest target wins), one
    keeps the latest measured width. Nothing here blocks the caller.

    libfranka's hand commands block until the fingers settle, and a second command while one
    runs would block behind it; so exactly one command is in flight at a time. A daemon thread
    stuck in libfranka (the hand vanished mid-command) keeps the hand object alive, so it is
    never destroyed under a running command.
    """

    def __init__(self, gripper: Any, speed_mps: float, force_n: float) -> None:
        self._gripper = gripper
        self._speed_mps = speed_mps
        self._force_n = force_n
        self._cv = threading.Condition()
        self._target_m: float | None = None
        self._done_m: float | None = None  # the last target a command ran for
        self._closed = False
        self._busy = False
        self._error: BaseException | None = None
        self._width_m = float(gripper.width)
        self._width_wall_s = time.perf_counter()
        self._commands = threading.Thread(
            target=self._run_commands, name="franka-hand", daemon=True
        )
        self._reader = threading.Thread(
            target=self._run_reader, name="franka-hand-state", daemon=True
        )
        self._commands.start()
        self._reader.start()

    def request(self, width_m: float) -> None:
        """Make ``width_m`` the target; sent once the running command (if any) ends. The target
        of the last command is not sent again (the hand may hold an object short of it)."""
        with self._cv:
            if self._target_m is None and width_m == self._done_m:
                return
            if self._target_m != width_m:
                self._target_m = width_m
                self._cv.notify_all()

    def width(self) -> tuple[float, float]:
        """The latest measured width (m) and its ``perf_counter`` time."""
        with self._cv:
            return self._width_m, self._width_wall_s

    def take_error(self) -> BaseException | None:
        """The exception of a failed command or state read, once."""
        with self._cv:
            error, self._error = self._error, None
            return error

    @property
    def busy(self) -> bool:
        """Whether a command is running or waiting to be sent."""
        with self._cv:
            return self._busy or self._pending_locked()

    def close(self, timeout_s: float) -> bool:
        """Stop both threads after the running command; whether they ended in time."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in (self._commands, self._reader):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not (self._commands.is_alive() or self._reader.is_alive())

    # -------------------------------------------------------------- threads
    def _pending_locked(self) -> bool:
        target = self._target_m
        return target is not None and abs(target - self._width_m) > GRIPPER_DEADBAND_M

    def _run_commands(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._closed or self._pending_locked())
                if self._closed:
                    return
                target, current, self._busy = self._target_m, self._width_m, True
            assert target is not None
            error: Exception | None = None
            try:
                self._execute(target, current)
            except Exception as exc:  # reported through take_error(), never retried
                error = exc
            with self._cv:
                self._busy, self._done_m = False, target
                self._error = error or self._error
                if self._target_m == target:
                    self._target_m = None  # reached, or as close as the hand gets

    def _execute(self, target_m: float, current_m: float) -> None:
        if target_m < current_m:
            # Closing grasps, so an object in the way is held with the force instead of the
            # move failing; any final width counts as success.
            self._gripper.grasp(target_m, self._speed_mps, self._force_n, target_m, HAND.max_width)
        else:
            self._gripper.move(target_m, self._speed_mps)

    def _run_reader(self) -> None:
        while True:
            with self._cv:
                if self._closed:
                    return
            try:
                width = float(self._gripper.width)  # waits for the hand's next state packet
            except Exception as exc:
                with self._cv:
                    self._error = exc
                return
            with self._cv:
                self._width_m, self._width_wall_s = width, time.perf_counter()
            time.sleep(READ_INTERVAL_S)
