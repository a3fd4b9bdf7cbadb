"""SpaceMouse teleop, driven by synthetic HID reports.

The HID hardware is the one thing that cannot exist here, so an emulated device feeds the
real parser and device code byte reports exactly as hidapi returns them.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator

import numpy as np
import pytest

from robolearn import envs
from robolearn.core.types import ConfigError, DriverError
from robolearn.teleop import SpaceMouseTeleop, TeleopActionSource
from robolearn.teleop.spacemouse import (
    SpaceMouseMapping,
    SpaceMouseState,
    find_spacemice,
    is_spacemouse,
    parse_report,
    pressed_buttons,
)

STEP_M, STEP_RAD = 0.02, 0.1


def translation(x: int, y: int, z: int) -> bytes:
    return struct.pack("<B3h", 1, x, y, z)


def rotation(rx: int, ry: int, rz: int) -> bytes:
    return struct.pack("<B3h", 2, rx, ry, rz)


def six_axis(*axes: int) -> bytes:
    return struct.pack("<B6h", 1, *axes)


def buttons(mask: int) -> bytes:
    return struct.pack("<BH", 3, mask)


class EmulatedSpaceMouse:
    """A HID source playing queued reports; ``gone`` makes the next read fail like an unplug."""

    def __init__(self) -> None:
        self.reports: deque[bytes] = deque()
        self.gone = False
        self.closed = False

    def send(self, *reports: bytes) -> None:
        self.reports.extend(reports)

    def read_report(self) -> bytes | None:
        if self.gone:
            raise DriverError("SpaceMouse emulated failed: read error")
        return self.reports.popleft() if self.reports else None

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def mouse() -> EmulatedSpaceMouse:
    return EmulatedSpaceMouse()


@pytest.fixture
def device(mouse: EmulatedSpaceMouse) -> Iterator[SpaceMouseTeleop]:
    with SpaceMouseTeleop(source=mouse, step_m=STEP_M, step_rad=STEP_RAD, deadband=0.1) as dev:
        yield dev


# ------------------------------------------------------------------ the report parser
def test_parse_split_translation_and_rotation_reports() -> None:
    state = parse_report(translation(100, -200, 350), SpaceMouseState())
    assert state == SpaceMouseState(translation=(100, -200, 350))
    state = parse_report(list(rotation(-1, 2, -32768)), state)  # hidapi returns int lists
    assert state.translation == (100, -200, 350) and state.rotation == (-1, 2, -32768)


def test_parse_six_axis_report_of_newer_devices() -> None:
    state = parse_report(six_axis(1, 2, 3, -4, -5, -6), SpaceMouseState(buttons=2))
    assert state == SpaceMouseState((1, 2, 3), (-4, -5, -6), buttons=2)


def test_parse_buttons_and_ignore_what_is_unknown_or_short() -> None:
    state = parse_report(buttons(0b10), SpaceMouseState())
    assert state.buttons == 2
    assert parse_report(struct.pack("<B", 3) + b"\x01\x00\x01", state).buttons == 0x10001
    for junk in (b"", b"\x17\x55", b"\x01\x00\x01", b"\x02\x01", b"\x03"):
        assert parse_report(junk, state) == state


def test_pressed_buttons_are_rising_edges() -> None:
    assert pressed_buttons(0b00, 0b11) == [0, 1]
    assert pressed_buttons(0b01, 0b11) == [1]
    assert pressed_buttons(0b11, 0b01) == []


# ------------------------------------------------------------------ shaping
def test_default_axis_map_puts_the_operator_behind_the_robot() -> None:
    mapping = SpaceMouseMapping()
    # HID: +x right, +y toward the user, +z down → robot: -y, -x, -z.
    lin, _ = mapping.twist(SpaceMouseState(translation=(350, 0, 0)), 0.0)
    np.testing.assert_allclose(lin, [0, -1, 0])
    lin, _ = mapping.twist(SpaceMouseState(translation=(0, -350, 0)), 0.0)
    np.testing.assert_allclose(lin, [1, 0, 0])
    lin, ang = mapping.twist(SpaceMouseState((0, 0, -700), (0, 0, 175)), 0.0)
    np.testing.assert_allclose(lin, [0, 0, 1])  # clipped at full scale
    np.testing.assert_allclose(ang, [0, 0, -0.5])


def test_deadband_zeroes_small_deflections_and_rescales_the_rest() -> None:
    mapping = SpaceMouseMapping(R_robot_device=np.eye(3))
    lin, _ = mapping.twist(SpaceMouseState(translation=(35, -30, 10)), 0.1)
    np.testing.assert_array_equal(lin, [0, 0, 0])
    lin, _ = mapping.twist(SpaceMouseState(translation=(350, 0, -(35 + 157))), 0.1)
    np.testing.assert_allclose(lin, [1.0, 0.0, -0.5], atol=1e-2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"R_robot_device": np.diag([1.0, 1.0, -1.0])},  # a reflection
        {"R_robot_device": np.eye(2)},
        {"full_scale": 0.0},
        {"buttons": {0: "launch"}},
    ],
)
def test_bad_mappings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SpaceMouseMapping(**kwargs)  # type: ignore[arg-type]


def test_bad_device_settings_are_refused(mouse: EmulatedSpaceMouse) -> None:
    with pytest.raises(ConfigError):
        SpaceMouseTeleop(source=mouse, deadband=1.0)
    with pytest.raises(ConfigError):
        SpaceMouseTeleop("/dev/hidraw0", source=mouse)


# ------------------------------------------------------------------ the device
def test_reports_become_commands(mouse: EmulatedSpaceMouse, device: SpaceMouseTeleop) -> None:
    cmd = device.read()
    assert not cmd.ee_delta_pos.any() and not cmd.events.intervention
    mouse.send(translation(0, -350, 0), rotation(0, 0, 350))  # push away, twist clockwise
    cmd = device.read()
    np.testing.assert_allclose(cmd.ee_delta_pos, [STEP_M, 0, 0])
    np.testing.assert_allclose(cmd.ee_delta_rot, [0, 0, -STEP_RAD])
    assert cmd.events.intervention, "deflected: the human has control"
    np.testing.assert_allclose(device.read().ee_delta_pos, [STEP_M, 0, 0])  # the state holds
    mouse.send(translation(0, 0, 0), rotation(0, 0, 0))
    cmd = device.read()
    assert not cmd.ee_delta_pos.any() and not cmd.events.intervention


def test_a_read_drains_every_pending_report(
    mouse: EmulatedSpaceMouse, device: SpaceMouseTeleop
) -> None:
    mouse.send(*(translation(i, 0, 0) for i in range(0, 300, 10)), translation(0, 0, -350))
    np.testing.assert_allclose(device.read().ee_delta_pos, [0, 0, STEP_M])
    assert not mouse.reports


def test_buttons_toggle_the_gripper_and_save_once(
    mouse: EmulatedSpaceMouse, device: SpaceMouseTeleop
) -> None:
    mouse.send(buttons(0b01))
    assert device.read().gripper == 0.0
    mouse.send(buttons(0b01))  # still held: no second toggle
    assert device.read().gripper == 0.0
    mouse.send(buttons(0b00), buttons(0b10))
    cmd = device.read()
    assert cmd.gripper == 0.0 and cmd.events.names() == {"save_episode"}
    assert device.read().events.names() == frozenset(), "a press is reported once"
    mouse.send(buttons(0b00), buttons(0b01))
    assert device.read().gripper == 1.0


def test_a_vanished_device_raises_and_disconnect_closes_it(mouse: EmulatedSpaceMouse) -> None:
    device = SpaceMouseTeleop(source=mouse)
    device.connect()
    mouse.gone = True
    with pytest.raises(DriverError, match="failed"):
        device.read()
    device.disconnect()
    assert mouse.closed


def test_reports_drive_the_env_end_to_end(
    mouse: EmulatedSpaceMouse, device: SpaceMouseTeleop
) -> None:
    env = envs.make("robolearn/FrankaReach-v0", control_mode="ee_delta_pose")
    try:
        obs, _ = env.reset(seed=0)
        source = TeleopActionSource.for_env(device, env)
        mouse.send(six_axis(350, 0, 0, 0, 0, 0), buttons(1))  # right: robot -y; close
        start = obs["ee_pos"].copy()
        for _ in range(10):
            action, _ = source.next_action(obs)
            np.testing.assert_allclose(action, [0, -0.4, 0, 0, 0, 0, -1], atol=1e-6)
            obs, *_ = env.step(action)
        moved = obs["ee_pos"] - start
        assert moved[1] < -0.05 and abs(moved[0]) < 0.02 and abs(moved[2]) < 0.02
    finally:
        env.close()


# ------------------------------------------------------------------ finding the hardware
def test_find_spacemice_filters_and_prefers_the_multi_axis_interface() -> None:
    infos = [
        {"vendor_id": 0x046D, "product_id": 0xC52B, "path": b"logitech-receiver"},
        {"vendor_id": 0x256F, "product_id": 0xC652, "path": b"kbd", "usage_page": 1, "usage": 6},
        {"vendor_id": 0x256F, "product_id": 0xC652, "path": b"6dof", "usage_page": 1, "usage": 8},
        {"vendor_id": 0x046D, "product_id": 0xC626, "path": b"navigator"},
    ]
    assert [i["path"] for i in find_spacemice(infos)] == [b"6dof", b"kbd", b"navigator"]
    assert is_spacemouse(0x046D, 0xC626) and not is_spacemouse(0x046D, 0xC52B)


# Without the hid module, opening names robolearn[teleop]: tests/test_extras.py (hid blocked).
