"""Optional dependencies: hardware SDKs and viewers, imported only when their device is used.

``pip install robolearn`` brings the simulation and learning stack; each SDK is an extra
(``robolearn[realsense]``, ``[dynamixel]``, ``[franka]``, ``[franka-sim]``, ``[teleop]``,
``[robomimic]``, ``[viewer]``, or ``[all]``). :func:`require` imports one, or raises a
:class:`MissingDependencyError` whose one line names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from robolearn.core.types import ConfigError

EXTRAS: dict[str, tuple[str, str]] = {
    "pyrealsense2": ("realsense", "pyrealsense2"),
    "dynamixel_sdk": ("dynamixel", "dynamixel-sdk"),
    "serial": ("dynamixel", "pyserial"),
    "franky": ("franka", "franky-control"),
    "franky_sim": ("franka-sim", "franky-sim"),
    "hid": ("teleop", "hidapi"),
    "h5py": ("robomimic", "h5py"),
    "rerun": ("viewer", "rerun-sdk"),
}
"""Import name → (robolearn extra, PyPI distribution)."""


class MissingDependencyError(ConfigError):
    """An optional dependency is not installed; the message says which extra brings it."""


def install_hint(module: str) -> str:
    """``pip install 'robolearn[EXTRA]'`` for an optional import name."""
    extra, dist = EXTRAS[module]
    return f"pip install 'robolearn[{extra}]' (or: pip install {dist})"


def require(module: str, needed_for: str) -> ModuleType:
    """Import the optional ``module`` (a key of :data:`EXTRAS`), or raise
    :class:`MissingDependencyError`: "``needed_for`` needs DIST: pip install ..."."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = EXTRAS[module][1]
        raise MissingDependencyError(
            f"{needed_for} needs {dist}, which is not installed ({exc}); {install_hint(module)}"
        ) from exc
