"""SpaceMouse (3Dconnexion 6-DoF mouse) teleop over raw HID reports.

The device sends small input reports (report id first, then little-endian int16s):

* id 1, 7 bytes — translation x, y, z; id 2, 7 bytes — rotation rx, ry, rz (older and wired
  models: SpaceNavigator, SpaceMouse Compact, SpaceExplorer, …);
* id 1, 13 bytes — all six axes in one report (SpaceMouse Wireless/Pro Wireless/Enterprise);
* id 3 — buttons, a little-endian bit mask (bit 0 the left button, bit 1 the right);
* other ids (battery, …) — ignored.

Axes are in the HID frame: +x right, +y toward the user, +z down, rotations about those axes
(right-handed); full deflection is about ±350 counts. :func:`parse_report` is the whole
protocol, a pure function. Reports come from a :class:`HidSource`: :class:`HidapiSource`
uses the ``hid`` module (``pip install 'robolearn[teleop]'`` installs hidapi, which bundles
the C library; the ctypes ``hid`` package works too). On Linux, reading ``/dev/hidraw*``
needs a udev rule (e.g. ``KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0666"``).

Shaping: counts / ``full_scale`` → deadband → rotation ``R_robot_device`` into the robot's
base frame (default: the operator behind the robot, so pushing the cap away from you is +x,
left is +y, lifting it is +z; the same matrix rotates the twist axes) → × ``step_m`` /
``step_rad`` per control step. Buttons (default): left toggles the gripper, right saves the
episode. ``intervention`` is on while the cap is deflected past the deadband.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from robolearn.core.types import ConfigError, DriverError, FloatArray
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice
from robolearn.teleop.shaping import apply_deadband, rotation_matrix

_log = logging.getLogger("robolearn.teleop")

REPORT_TRANSLATION, REPORT_ROTATION, REPORT_BUTTONS = 1, 2, 3
VENDOR_3DCONNEXION = 0x256F
VENDOR_LOGITECH = 0x046D
LOGITECH_SPACEMICE = frozenset(
    {0xC603, 0xC605, 0xC606, 0xC621, 0xC623, 0xC625, 0xC626, 0xC627, 0xC628, 0xC629, 0xC62B}
)
"""3Dconnexion products sold under Logitech's vendor id (every 0x256F product is one)."""
R_ROBOT_HID: FloatArray = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
"""HID frame → robot base frame for an operator standing behind the robot."""
BUTTON_ACTIONS: tuple[str, ...] = ("gripper", "save", "rerecord", "stop")
_PRESS_EVENTS = {"save": "save_episode", "rerecord": "rerecord_episode", "stop": "stop_recording"}


@dataclass(frozen=True)
class SpaceMouseState:
    """The raw device state, in HID counts and the HID frame."""

    translation: tuple[int, int, int] = (0, 0, 0)
    rotation: tuple[int, int, int] = (0, 0, 0)
    buttons: int = 0
    """Bit ``i`` set while button ``i`` is held."""


def _int16_triple(data: bytes, first: int) -> tuple[int, int, int]:
    """Three little-endian int16s starting at byte ``first``."""
    x, y, z = (
        int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(first, first + 6, 2)
    )
    return x, y, z


def parse_report(report: bytes | Sequence[int], state: SpaceMouseState) -> SpaceMouseState:
    """The state after one HID input report (see the module docstring); unknown or short
    reports leave ``state`` as it was."""
    data = bytes(report)
    if not data:
        return state
    report_id = data[0]
    if report_id == REPORT_TRANSLATION and len(data) >= 13:
        return replace(state, translation=_int16_triple(data, 1), rotation=_int16_triple(data, 7))
    if report_id == REPORT_TRANSLATION and len(data) >= 7:
        return replace(state, translation=_int16_triple(data, 1))
    if report_id == REPORT_ROTATION and len(data) >= 7:
        return replace(state, rotation=_int16_triple(data, 1))
    if report_id == REPORT_BUTTONS and len(data) >= 2:
        return replace(state, buttons=int.from_bytes(data[1:], "little"))
    return state


@dataclass(frozen=True)
class SpaceMouseMapping:
    """How the raw state becomes robot motion and actions; see the module docstring."""

    R_robot_device: ArrayLike = field(default_factory=lambda: R_ROBOT_HID.copy())
    """3×3 rotation from the HID frame to the robot's base frame."""
    full_scale: float = 350.0
    """Counts of full deflection."""
    buttons: Mapping[int, str] = field(default_factory=lambda: {0: "gripper", 1: "save"})
    """Button bit → action (gripper, save, rerecord, stop)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "R_robot_device", rotation_matrix(self.R_robot_device))
        if not self.full_scale > 0:
            raise ConfigError(f"full_scale must be > 0, got {self.full_scale}")
        bad = set(self.buttons.values()) - set(BUTTON_ACTIONS)
        if bad:
            raise ConfigError(f"unknown SpaceMouse actions {sorted(bad)}; known: {BUTTON_ACTIONS}")

    def twist(self, state: SpaceMouseState, deadband: float) -> tuple[FloatArray, FloatArray]:
        """Normalised translation and rotation in the robot frame, each (3,) in [-1, 1]."""
        rot = np.asarray(self.R_robot_device)
        lin = apply_deadband(np.array(state.translation) / self.full_scale, deadband)
        ang = apply_deadband(np.array(state.rotation) / self.full_scale, deadband)
        return np.clip(rot @ lin, -1, 1), np.clip(rot @ ang, -1, 1)


def pressed_buttons(before: int, after: int) -> list[int]:
    """Bits that went from released to held, lowest first."""
    new = after & ~before
    return [bit for bit in range(new.bit_length()) if new >> bit & 1]


class HidSource(Protocol):
    """Where HID input reports come from (the device, or an emulator in tests)."""

    def read_report(self) -> bytes | None:
        """The next pending report without blocking, or ``None``; DriverError if gone."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def _import_hid() -> Any:
    from robolearn.core.extras import require

    # the ctypes 'hid' package raises ImportError without libhidapi too
    return require("hid", "the SpaceMouse")


def is_spacemouse(vendor_id: int, product_id: int) -> bool:
    """Whether a USB vendor/product id is a 3Dconnexion device."""
    return vendor_id == VENDOR_3DCONNEXION or (
        vendor_id == VENDOR_LOGITECH and product_id in LOGITECH_SPACEMICE
    )


def find_spacemice(infos: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The SpaceMouse entries of a ``hid.enumerate()`` list, the multi-axis controller
    interface (usage page 1, usage 8) first: receivers expose several interfaces."""
    mice = [i for i in infos if is_spacemouse(i["vendor_id"], i["product_id"])]
    return sorted(mice, key=lambda i: (i.get("usage_page"), i.get("usage")) != (1, 8))


class HidapiSource:
    """Reports from a SpaceMouse opened with the ``hid`` module (either flavour)."""

    REPORT_BYTES = 64

    def __init__(self, device: Any, label: str) -> None:
        self._dev, self.label = device, label

    @classmethod
    def open(cls, path: bytes | str | None = None) -> HidapiSource:
        """Open ``path`` (a hidapi path) or the first SpaceMouse found; DriverError if none."""
        hid = _import_hid()
        if path is None:
            mice = find_spacemice(hid.enumerate())
            if not mice:
                raise DriverError("no SpaceMouse found (plugged in? udev rule for hidraw?)")
            path = mice[0]["path"]
            _log.info("spacemouse teleop: using %s", mice[0].get("product_string") or path)
        raw = path.encode() if isinstance(path, str) else path
        try:
            return cls(_open_hid_path(hid, raw), label=raw.decode(errors="replace"))
        except OSError as exc:
            raise DriverError(f"cannot open SpaceMouse {raw!r}: {exc}") from exc

    def read_report(self) -> bytes | None:
        """One pending report, or ``None`` when none is waiting."""
        try:
            data = self._dev.read(self.REPORT_BYTES, 0)
        except (OSError, ValueError) as exc:
            raise DriverError(f"SpaceMouse {self.label} failed: {exc}") from exc
        return bytes(data) if data else None

    def close(self) -> None:
        """Close the device."""
        self._dev.close()


def _open_hid_path(hid: Any, path: bytes) -> Any:
    """A non-blocking device from cython-hidapi (``hid.device``) or ctypes ``hid.Device``."""
    if hasattr(hid, "device"):
        dev = hid.device()
        dev.open_path(path)
        dev.set_nonblocking(1)
        return dev
    return hid.Device(path=path)  # reads with timeout 0 never block


class SpaceMouseTeleop(TeleopDevice):
    """End-effector teleop from a SpaceMouse; see the module docstring.

    ``source`` supplies HID reports (default: :meth:`HidapiSource.open` of ``path`` or the
    first SpaceMouse). Full deflection moves ``step_m`` (``step_rad``) per :meth:`read`.
    Each read drains every pending report (at most ``max_reports``), so the command is the
    latest state however fast the device reports.
    """

    name = "spacemouse"

    def __init__(
        self,
        path: bytes | str | None = None,
        *,
        source: HidSource | None = None,
        mapping: SpaceMouseMapping | None = None,
        step_m: float = 0.02,
        step_rad: float = 0.1,
        deadband: float = 0.1,
        max_reports: int = 256,
    ) -> None:
        super().__init__()
        if path is not None and source is not None:
            raise ConfigError("give a SpaceMouse path or a source, not both")
        if not step_m > 0 or not step_rad > 0 or max_reports < 1:
            raise ConfigError(
                f"need step_m, step_rad > 0 and max_reports >= 1, got {step_m}, {step_rad}, "
                f"{max_reports}"
            )
        apply_deadband(0.0, deadband)  # validates
        self.path, self.mapping = path, mapping or SpaceMouseMapping()
        self.step_m, self.step_rad, self.deadband = step_m, step_rad, deadband
        self.max_reports = max_reports
        self._given_source = source
        self._source: HidSource | None = None
        self.state = SpaceMouseState()

    def _open(self) -> None:
        self._source = self._given_source or HidapiSource.open(self.path)
        self.state = SpaceMouseState()

    def _close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()

    def _read(self, obs: Obs | None) -> TeleopCommand:
        self._drain()
        lin, ang = self.mapping.twist(self.state, self.deadband)
        moving = bool(np.any(lin) or np.any(ang))
        self.events.set_level("intervention", moving)
        return TeleopCommand(
            ee_delta_pos=lin * self.step_m,
            ee_delta_rot=ang * self.step_rad,
            gripper=self.gripper,
            events=self.events.take(),
        )

    def _drain(self) -> None:
        assert self._source is not None
        for _ in range(self.max_reports):
            report = self._source.read_report()
            if report is None:
                return
            before = self.state.buttons
            self.state = parse_report(report, self.state)
            for bit in pressed_buttons(before, self.state.buttons):
                self._fire(self.mapping.buttons.get(bit))

    def _fire(self, action: str | None) -> None:
        if action == "gripper":
            self.toggle_gripper()
        elif action is not None:
            self.events.press(_PRESS_EVENTS[action])
