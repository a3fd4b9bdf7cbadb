"""The Franka driver's errors, and how franky's exceptions map onto them."""

from __future__ import annotations

from typing import Any

from robolearn.core.types import DriverError


def import_franky() -> Any:
    """The franky module, imported on first use (an optional dependency: ``pip install
    robolearn[franka]``)."""
    from robolearn.core.extras import require

    return require("franky", "the Franka driver (libfranka's Python bindings)")


class FrankaError(DriverError):
    """Something went wrong with the Franka; the message says what and what to do."""


class FrankaConnectionError(FrankaError):
    """The robot (or franky-sim, or the network to it) cannot be reached or went away."""


class FrankaControlError(FrankaError):
    """libfranka aborted a motion (other than by a reflex), e.g. it was preempted."""


class FrankaReflexError(FrankaControlError):
    """A reflex stopped the arm: collision, joint or Cartesian limit, discontinuity, ..."""


class FrankaGripperError(FrankaError):
    """The Franka Hand failed to execute a command."""


def franka_error(exc: BaseException, host: str, errors: str = "") -> FrankaError:
    """The :class:`FrankaError` for an exception raised by franky, with one clear message.

    ``errors`` lists the robot's active error flags, if known (``RobotState.last_motion_errors``).
    """
    franky = import_franky()
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    flags = f" (robot errors: {errors})" if errors and errors != "[]" else ""
    lost = isinstance(exc, RuntimeError) and "net exception" in text.lower()
    if lost or isinstance(exc, franky.NetworkException | ConnectionError | OSError):
        return FrankaConnectionError(
            f"lost the connection to the Franka at {host}: {text}. Check that the robot (or "
            "franky-sim) is still running and the network is up, then disconnect() and connect()"
        )
    if isinstance(exc, franky.ControlException) and "reflex" in text.lower():
        return FrankaReflexError(
            f"the Franka at {host} stopped with a reflex: {text}{flags}. Clear the cause "
            "(obstacle, limit, too fast a target), then call recover() or set auto_recover=True"
        )
    if isinstance(exc, franky.GripperException):
        return FrankaGripperError(f"the Franka Hand at {host} failed: {text}")
    return FrankaControlError(
        f"the Franka at {host} aborted the motion: {text}{flags}. Call recover() (or set "
        "auto_recover=True) and send the command again"
    )


def franky_errors() -> tuple[type[BaseException], ...]:
    """Every exception type franky raises for robot, network and hand failures."""
    f = import_franky()
    return (
        f.ControlException,
        f.CommandException,
        f.NetworkException,
        f.ProtocolException,
        f.InvalidOperationException,
        f.GripperException,
        f.Exception,
        RuntimeError,  # franky reports a connection already lost as RuntimeError("Net Exception")
    )
