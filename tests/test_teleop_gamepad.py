"""Gamepad teleop, driven by synthetic evdev events.

There is no /dev/uinput here to make a real virtual gamepad, so an emulated one writes the
kernel's ``struct input_event`` records into a pipe, and the real reader (the same code that
reads ``/dev/input/event*``) decodes them. Device discovery runs on a synthetic sysfs tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from robolearn import envs
from robolearn.core.types import ConfigError, DriverError
from robolearn.teleop import GamepadTeleop, TeleopActionSource
from robolearn.teleop.gamepad import (
    ABS_HAT0Y,
    ABS_RX,
    ABS_RY,
    ABS_RZ,
    ABS_X,
    ABS_Y,
    BTN_MODE,
    BTN_SELECT,
    BTN_SOUTH,
    BTN_START,
    BTN_TL,
    EV_ABS,
    EV_KEY,
    EV_SYN,
    INPUT_EVENT,
    SYN_DROPPED,
    SYN_REPORT,
    XBOX_MAPPING,
    AxisRange,
    EvdevSource,
    GamepadMapping,
    GamepadState,
    InputEvent,
    decode_input_events,
    encode_input_events,
    find_gamepads,
)

STEP_M, STEP_RAD = 0.02, 0.1
FULL = 32767


class EmulatedGamepad:
    """Writes evdev records for stick moves and button presses, each frame ending in a
    SYN_REPORT, as the kernel does."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.t = 1000.0

    def frame(self, *events: tuple[int, int, int]) -> None:
        self.t += 0.008
        records = [InputEvent(t, c, v, self.t) for t, c, v in events]
        records.append(InputEvent(EV_SYN, SYN_REPORT, 0, self.t))
        os.write(self.write_fd, encode_input_events(records))

    def stick(self, code: int, value: int) -> None:
        self.frame((EV_ABS, code, value))

    def press(self, code: int) -> None:
        self.frame((EV_KEY, code, 1))

    def release(self, code: int) -> None:
        self.frame((EV_KEY, code, 0))

    def tap(self, code: int) -> None:
        self.press(code)
        self.release(code)

    def unplug(self) -> None:
        os.close(self.write_fd)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pad() -> Iterator[EmulatedGamepad]:
    emulated = EmulatedGamepad()
    yield emulated
    emulated.close()


@pytest.fixture
def device(pad: EmulatedGamepad) -> Iterator[GamepadTeleop]:
    source = EvdevSource(os.dup(pad.read_fd), label="emulated")
    with GamepadTeleop(source=source, step_m=STEP_M, step_rad=STEP_RAD, deadband=0.1) as dev:
        yield dev


# ------------------------------------------------------------------ the wire format
def test_events_round_trip_through_the_kernel_record_format() -> None:
    events = [InputEvent(EV_ABS, ABS_X, -123, 17.25), InputEvent(EV_KEY, BTN_SOUTH, 1, 17.5)]
    data = encode_input_events(events)
    assert len(data) == 2 * INPUT_EVENT.size
    decoded, rest = decode_input_events(data + data[:5])
    assert decoded == events and rest == data[:5], "a partial record is kept for later"


def test_axis_ranges_normalise_sticks_and_triggers() -> None:
    stick, trigger = AxisRange(-32768, 32767), AxisRange(0, 1023)
    assert stick.normalize(-32768) == -1.0 and stick.normalize(32767) == 1.0
    assert abs(stick.normalize(0)) < 1e-4 and stick.normalize(99999) == 1.0
    assert trigger.normalize(0, one_sided=True) == 0.0
    assert trigger.normalize(1023, one_sided=True) == 1.0
    assert AxisRange(5, 5).normalize(5) == 0.0


def test_state_skips_dropped_events_and_ignores_autorepeat() -> None:
    state = GamepadState(XBOX_MAPPING)
    assert state.apply(InputEvent(EV_KEY, BTN_SOUTH, 1)) == "gripper"
    assert state.apply(InputEvent(EV_KEY, BTN_SOUTH, 2)) is None, "auto-repeat"
    assert state.apply(InputEvent(EV_KEY, BTN_SOUTH, 1)) is None, "already held"
    state.apply(InputEvent(EV_SYN, SYN_DROPPED, 0))
    state.apply(InputEvent(EV_ABS, ABS_Y, -FULL))  # lost in the overflow
    state.apply(InputEvent(EV_SYN, SYN_REPORT, 0))
    state.apply(InputEvent(EV_ABS, ABS_X, -FULL))
    np.testing.assert_allclose(state.deflections({}), [0, 1, 0, 0, 0, 0], atol=1e-4)


def test_mapping_rejects_unknown_targets() -> None:
    with pytest.raises(ConfigError, match="unknown gamepad targets"):
        GamepadMapping(axes={"w": (ABS_X, 1.0)})
    with pytest.raises(ConfigError, match="unknown gamepad targets"):
        GamepadMapping(buttons={BTN_SOUTH: "jump"})


# ------------------------------------------------------------------ the device
@pytest.mark.parametrize(
    ("code", "value", "pos", "rot"),
    [
        (ABS_Y, -FULL, [1, 0, 0], [0, 0, 0]),  # left stick up: forward
        (ABS_X, -FULL, [0, 1, 0], [0, 0, 0]),  # left stick left: +y
        (ABS_RY, -FULL, [0, 0, 1], [0, 0, 0]),  # right stick up: up
        (ABS_RX, FULL, [0, 0, 0], [0, 0, -1]),  # right stick right: yaw clockwise
        (ABS_HAT0Y, -1, [0, 0, 0], [0, 1, 0]),  # D-pad up: +pitch
    ],
)
def test_sticks_move_the_robot_axes(
    pad: EmulatedGamepad,
    device: GamepadTeleop,
    code: int,
    value: int,
    pos: list[int],
    rot: list[int],
) -> None:
    assert not device.read().ee_delta_pos.any()
    pad.stick(code, value)
    cmd = device.read()
    np.testing.assert_allclose(cmd.ee_delta_pos, np.array(pos) * STEP_M, atol=1e-6)
    np.testing.assert_allclose(cmd.ee_delta_rot, np.array(rot) * STEP_RAD, atol=1e-6)
    pad.stick(code, 0)
    assert not device.read().ee_delta_pos.any()


def test_deadband_hides_stick_drift(pad: EmulatedGamepad, device: GamepadTeleop) -> None:
    pad.frame((EV_ABS, ABS_X, 3000), (EV_ABS, ABS_Y, -3000))  # ~9 % deflection
    assert not device.read().ee_delta_pos.any()
    pad.stick(ABS_Y, -FULL // 2 - 1638)  # 55 % → (0.55 - 0.1) / 0.9 = 0.5
    np.testing.assert_allclose(device.read().ee_delta_pos, [0.5 * STEP_M, 0, 0], atol=1e-4)


def test_buttons_fire_session_events_once(pad: EmulatedGamepad, device: GamepadTeleop) -> None:
    for code, event in [
        (BTN_START, "save_episode"),
        (BTN_SELECT, "rerecord_episode"),
        (BTN_MODE, "stop_recording"),
    ]:
        pad.tap(code)
        assert device.read().events.names() == {event}
        assert device.read().events.names() == frozenset(), "reported once"


def test_a_tap_between_two_reads_is_not_lost(pad: EmulatedGamepad, device: GamepadTeleop) -> None:
    pad.tap(BTN_SOUTH)
    pad.tap(BTN_START)
    cmd = device.read()
    assert cmd.gripper == 0.0 and cmd.events.save_episode


def test_gripper_toggles_per_press_and_intervention_holds(
    pad: EmulatedGamepad, device: GamepadTeleop
) -> None:
    pad.press(BTN_SOUTH)
    assert device.read().gripper == 0.0
    assert device.read().gripper == 0.0, "holding is one press"
    pad.release(BTN_SOUTH)
    pad.tap(BTN_SOUTH)
    assert device.read().gripper == 1.0
    pad.press(BTN_TL)
    assert device.read().events.intervention and device.read().events.intervention
    pad.release(BTN_TL)
    assert not device.read().events.intervention


def test_a_trigger_bound_to_an_axis_rests_at_zero(pad: EmulatedGamepad) -> None:
    mapping = GamepadMapping(axes={"z": (ABS_RZ, 1.0)})
    source = EvdevSource(os.dup(pad.read_fd))
    with GamepadTeleop(source=source, mapping=mapping, step_m=STEP_M) as device:
        assert not device.read().ee_delta_pos.any()
        pad.stick(ABS_RZ, 1023)
        np.testing.assert_allclose(device.read().ee_delta_pos, [0, 0, STEP_M])


def test_a_record_split_across_reads_is_reassembled(
    pad: EmulatedGamepad, device: GamepadTeleop
) -> None:
    data = encode_input_events(
        [InputEvent(EV_ABS, ABS_Y, -FULL), InputEvent(EV_SYN, SYN_REPORT, 0)]
    )
    os.write(pad.write_fd, data[:10])
    assert not device.read().ee_delta_pos.any()
    os.write(pad.write_fd, data[10:])
    np.testing.assert_allclose(device.read().ee_delta_pos, [STEP_M, 0, 0], atol=1e-6)


def test_an_unplugged_gamepad_raises(pad: EmulatedGamepad, device: GamepadTeleop) -> None:
    pad.unplug()
    with pytest.raises(DriverError, match="device gone"):
        device.read()


def test_a_pipe_has_no_axis_ranges_so_defaults_apply(pad: EmulatedGamepad) -> None:
    source = EvdevSource(os.dup(pad.read_fd))
    assert source.axis_range(ABS_X) is None
    source.close()
    source.close()  # idempotent


def test_events_drive_the_env_end_to_end(pad: EmulatedGamepad, device: GamepadTeleop) -> None:
    env = envs.make("robolearn/FrankaReach-v0")
    try:
        obs, _ = env.reset(seed=0)
        source = TeleopActionSource.for_env(device, env)
        pad.frame((EV_ABS, ABS_Y, -FULL), (EV_ABS, ABS_RY, FULL), (EV_KEY, BTN_SOUTH, 1))
        start = obs["ee_pos"].copy()
        for _ in range(8):
            action, _ = source.next_action(obs)
            np.testing.assert_allclose(action, [0.4, 0, -0.4, -1], atol=1e-4)
            obs, *_ = env.step(action)
        moved = obs["ee_pos"] - start
        assert moved[0] > 0.05 and moved[2] < -0.05
        pad.tap(BTN_START)
        assert source.next_action(obs)[1] == {"save_episode"}
    finally:
        env.close()


# ------------------------------------------------------------------ finding the hardware
def _bitmap(*bits: int) -> str:
    """A sysfs capability bitmap: hex 64-bit words, most significant first."""
    value = sum(1 << b for b in bits)
    words = []
    while True:
        words.append(value & (2**64 - 1))
        value >>= 64
        if not value:
            break
    return " ".join(f"{w:x}" for w in reversed(words)) + "\n"


def _fake_node(root: Path, name: str, keys: str, abs_: str) -> None:
    caps = root / name / "device" / "capabilities"
    caps.mkdir(parents=True)
    (caps / "key").write_text(keys)
    (caps / "abs").write_text(abs_)


def test_find_gamepads_reads_sysfs_capabilities(tmp_path: Path) -> None:
    _fake_node(tmp_path, "event2", _bitmap(30, 31, 32), "0\n")  # a keyboard
    _fake_node(tmp_path, "event11", _bitmap(BTN_SOUTH, BTN_START), _bitmap(ABS_X, ABS_Y))
    _fake_node(tmp_path, "event3", _bitmap(BTN_SOUTH), _bitmap(ABS_X, ABS_RZ))
    _fake_node(tmp_path, "event4", "zz\n", "0\n")  # unreadable: skipped
    (tmp_path / "event5").mkdir()  # no capabilities: skipped
    found = find_gamepads(tmp_path, dev_input="/dev/input")
    assert found == [Path("/dev/input/event3"), Path("/dev/input/event11")]


def test_opening_a_missing_node_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot open gamepad"):
        EvdevSource.open(tmp_path / "event99")
    with pytest.raises(DriverError, match="cannot open gamepad"):
        GamepadTeleop(tmp_path / "event99").connect()


def test_bad_device_settings_are_refused(pad: EmulatedGamepad) -> None:
    with pytest.raises(ConfigError):
        GamepadTeleop(step_m=0.0)
    with pytest.raises(ConfigError):
        GamepadTeleop(deadband=-0.1)
    source = EvdevSource(os.dup(pad.read_fd))
    with pytest.raises(ConfigError):
        GamepadTeleop("/dev/input/event0", source=source)
    source.close()
