"""What every subcommand module shares: the :class:`Subcommand` record and table printing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from robolearn.core.types import ConfigError

C = TypeVar("C")


@dataclass(frozen=True)
class Subcommand(Generic[C]):
    """One ``robolearn <name>`` subcommand: a typed config dataclass and a function to run it."""

    name: str
    """The word typed after ``robolearn``."""
    help: str
    """One line for ``robolearn --help``."""
    config: type[C]
    """Dataclass whose fields become the subcommand's options."""
    run: Callable[[C], int]
    """Runs the parsed config; returns the exit status."""


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned plain-text table with a rule under the header row."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


ControlModeName = Literal["ee_delta", "ee_delta_pose", "joint_position"]
ObsModeName = Literal["state", "image"]
SimBackendName = Literal["mujoco", "pybullet"]
"""The simulators every task runs on (``robolearn.drivers.panda.BACKENDS``)."""


def env_overrides(
    obs_mode: str | None,
    image_size: Sequence[int] | None,
    control_mode: str | None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Env options given on the command line (``--obs-mode``, ``--image-size``,
    ``--control-mode``, ``--backend``) over the ones a policy was trained with; ConfigError on
    a bad size."""
    out: dict[str, Any] = {}
    if backend is not None:
        out["backend"] = backend
    if obs_mode is not None:
        out["obs_mode"] = obs_mode
    if image_size is not None:
        if len(image_size) != 2 or min(image_size) < 1:
            raise ConfigError(f"--image-size takes HEIGHT WIDTH (> 0), got {list(image_size)}")
        out["image_size"] = tuple(image_size)
    if control_mode is not None:
        out["control_mode"] = control_mode
    return out
