"""Keyboard teleop, driven through a real pseudo-terminal (key bytes written to its master)."""

from __future__ import annotations

import contextlib
import os
import termios
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from robolearn import envs
from robolearn.control.clock import FakeClock
from robolearn.control.safety import EStop
from robolearn.core.terminal import split_keys
from robolearn.core.types import ConfigError, DriverError
from robolearn.teleop import KeyboardTeleop, TeleopActionSource, TeleopCommand, TeleopEvents
from robolearn.teleop.keyboard import DEFAULT_KEYMAP, KeyHold, check_keymap

WAIT_S = 5.0  # generous: only a failing test waits this long
STEP_M, STEP_RAD, HOLD_S, DEBOUNCE_S = 0.01, 0.05, 0.1, 0.6


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (master, slave). Keys written to the master arrive at the slave."""
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
def keyboard(pty: tuple[int, int], clock: FakeClock) -> Iterator[KeyboardTeleop]:
    device = KeyboardTeleop(pty[1], clock=clock.now, hold_s=HOLD_S, debounce_s=DEBOUNCE_S)
    with device:
        yield device


def _until(device: KeyboardTeleop, done: Callable[[TeleopCommand], bool]) -> TeleopCommand:
    """Read until ``done(command)``: the reader thread handles keys asynchronously."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        cmd = device.read()
        if done(cmd):
            return cmd
        time.sleep(0.002)
    raise AssertionError("the keys never took effect")


def _sync(master: int, device: KeyboardTeleop) -> None:
    """Wait until everything written before is handled: 't' toggles intervention, in order."""
    before = device.read().events.intervention
    os.write(master, b"t")
    _until(device, lambda c: c.events.intervention != before)


# ------------------------------------------------------------------ pure pieces
@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b"wasd", ["w", "a", "s", "d"]),
        (b"\x1b[A\x1b[1;5Cx", ["\x1b[A", "\x1b[1;5C", "x"]),
        (b"\x1bOPq", ["\x1bOP", "q"]),
        (b"\x1b", ["\x1b"]),
        (b"\x1bw", ["\x1b", "w"]),
        (b"\n\x04\xc3\xa9", ["\n", "\x04"]),
    ],
)
def test_split_keys(data: bytes, keys: list[str]) -> None:
    assert split_keys(data) == keys


def test_key_hold_holds_expires_overrides_and_debounces() -> None:
    hold = KeyHold(DEFAULT_KEYMAP, hold_s=0.1, debounce_s=0.6)
    assert hold.press("w", 0.0) is None
    np.testing.assert_array_equal(hold.axes(0.05), [1, 0, 0, 0, 0, 0])
    assert not hold.axes(0.1).any(), "released within hold_s of the last byte"
    hold.press("w", 1.0)
    hold.press("s", 1.02)  # the latest key on an axis wins
    np.testing.assert_array_equal(hold.axes(1.03), [-1, 0, 0, 0, 0, 0])
    hold.press("j", 1.02)
    np.testing.assert_array_equal(hold.axes(1.03), [-1, 0, 0, 0, 0, 1])
    assert hold.press("g", 2.0) == "gripper"
    assert hold.press("g", 2.03) is None, "auto-repeat of the same press"
    assert hold.press("g", 2.5) is None, "still the same press: repeats extend the window"
    assert hold.press("g", 3.2) == "gripper"
    assert hold.press("?", 4.0) is None
    hold.release_all()
    assert not hold.axes(1.03).any()


@pytest.mark.parametrize(
    ("keymap", "match"),
    [({" ": "+x"}, "reserved"), ({"\x1b[A": "+x"}, "reserved"), ({"w": "fly"}, "unknown")],
)
def test_keymaps_may_not_bind_estop_keys_or_unknown_actions(
    keymap: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        check_keymap(keymap)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        KeyboardTeleop(0, step_m=-1.0)
    with pytest.raises(ConfigError):
        KeyboardTeleop(0, hold_s=0.0)


# ------------------------------------------------------------------ through a terminal
def test_a_held_key_moves_its_axis_until_hold_s_after_its_last_byte(
    pty: tuple[int, int], keyboard: KeyboardTeleop, clock: FakeClock
) -> None:
    master, _ = pty
    assert not keyboard.read().ee_delta_pos.any()
    os.write(master, b"w")
    cmd = _until(keyboard, lambda c: c.ee_delta_pos[0] > 0)
    np.testing.assert_allclose(cmd.ee_delta_pos, [STEP_M, 0, 0])
    np.testing.assert_allclose(keyboard.read().ee_delta_pos, [STEP_M, 0, 0])  # still held
    clock.advance(HOLD_S / 2)
    os.write(master, b"w")  # an auto-repeat byte extends the hold
    _sync(master, keyboard)
    clock.advance(HOLD_S * 0.9)
    assert keyboard.read().ee_delta_pos[0] > 0
    clock.advance(HOLD_S)
    assert not keyboard.read().ee_delta_pos.any(), "released"


@pytest.mark.parametrize(
    ("key", "pos", "rot"),
    [
        (b"a", [0, 1, 0], [0, 0, 0]),
        (b"d", [0, -1, 0], [0, 0, 0]),
        (b"q", [0, 0, 1], [0, 0, 0]),
        (b"e", [0, 0, -1], [0, 0, 0]),
        (b"u", [0, 0, 0], [1, 0, 0]),
        (b"k", [0, 0, 0], [0, -1, 0]),
        (b"l", [0, 0, 0], [0, 0, -1]),
    ],
)
def test_each_motion_key(
    pty: tuple[int, int], keyboard: KeyboardTeleop, key: bytes, pos: list[int], rot: list[int]
) -> None:
    os.write(pty[0], key)
    cmd = _until(keyboard, lambda c: bool(c.ee_delta_pos.any() or c.ee_delta_rot.any()))
    np.testing.assert_allclose(cmd.ee_delta_pos, np.array(pos) * STEP_M)
    np.testing.assert_allclose(cmd.ee_delta_rot, np.array(rot) * STEP_RAD)


@pytest.mark.parametrize(
    ("key", "event"),
    [
        (b"\n", "save_episode"),
        (b"r", "rerecord_episode"),
        (b"x", "stop_recording"),
        (b"\x04", "stop_recording"),
    ],
)
def test_session_keys_are_reported_once(
    pty: tuple[int, int], keyboard: KeyboardTeleop, key: bytes, event: str
) -> None:
    os.write(pty[0], key * 3)  # a held key: auto-repeat bytes of one press
    cmd = _until(keyboard, lambda c: bool(c.events.names()))
    assert cmd.events.names() == {event}
    _sync(pty[0], keyboard)
    assert keyboard.read().events.names() == {"intervention"}, "reported once"


def test_gripper_toggles_once_per_press_and_reset_opens_it(
    pty: tuple[int, int], keyboard: KeyboardTeleop, clock: FakeClock
) -> None:
    master, _ = pty
    assert keyboard.read().gripper == 1.0
    os.write(master, b"ggg")
    _until(keyboard, lambda c: c.gripper == 0.0)
    _sync(master, keyboard)
    assert keyboard.read().gripper == 0.0, "auto-repeat must not toggle it back"
    clock.advance(DEBOUNCE_S * 2)
    os.write(master, b"g")
    _until(keyboard, lambda c: c.gripper == 1.0)
    clock.advance(DEBOUNCE_S * 2)
    os.write(master, b"gw")
    _until(keyboard, lambda c: c.gripper == 0.0 and c.ee_delta_pos[0] > 0)
    keyboard.reset()
    cmd = keyboard.read()
    assert cmd.gripper == 1.0 and not cmd.ee_delta_pos.any() and cmd.events == TeleopEvents()


def test_intervention_is_a_level_toggled_by_t(
    pty: tuple[int, int], keyboard: KeyboardTeleop, clock: FakeClock
) -> None:
    os.write(pty[0], b"t")
    _until(keyboard, lambda c: c.events.intervention)
    assert keyboard.read().events.intervention and keyboard.read().events.intervention
    clock.advance(DEBOUNCE_S * 2)
    os.write(pty[0], b"t")
    _until(keyboard, lambda c: not c.events.intervention)


@pytest.mark.parametrize("key", [b" ", b"\x1b", b"\x1b[A"])
def test_estop_keys_latch_the_estop_and_release_every_axis(
    pty: tuple[int, int], clock: FakeClock, key: bytes
) -> None:
    master, slave = pty
    estop = EStop()
    with KeyboardTeleop(slave, estop=estop, clock=clock.now) as keyboard:
        os.write(master, b"w")
        _until(keyboard, lambda c: c.ee_delta_pos[0] > 0)
        os.write(master, key)
        assert estop.wait(WAIT_S), "the key did not latch the e-stop"
        assert not keyboard.read().ee_delta_pos.any()
    assert "pressed" in (estop.reason or "")


def test_without_an_estop_space_does_nothing(
    pty: tuple[int, int], keyboard: KeyboardTeleop
) -> None:
    os.write(pty[0], b" \x1b")
    _sync(pty[0], keyboard)
    cmd = keyboard.read()
    assert not cmd.ee_delta_pos.any() and cmd.gripper == 1.0


def test_terminal_is_in_cbreak_mode_while_connected_and_restored_after(
    pty: tuple[int, int],
) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with KeyboardTeleop(slave):
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
    assert termios.tcgetattr(slave) == before


def test_connect_without_a_terminal_fails_clearly() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(DriverError, match="needs a terminal"):
            KeyboardTeleop(read_end).connect()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_help_text_lists_the_keys() -> None:
    text = KeyboardTeleop(0, estop=EStop()).help_text()
    assert "w: +x" in text and "\\n: save" in text and "E-STOP" in text


def test_keys_drive_the_env_end_to_end(pty: tuple[int, int], keyboard: KeyboardTeleop) -> None:
    """Keys → command → the task's action → the simulated arm moves that way."""
    env = envs.make("robolearn/FrankaReach-v0")
    try:
        obs, _ = env.reset(seed=0)
        source = TeleopActionSource.for_env(keyboard, env)
        source.reset(0)
        os.write(pty[0], b"wq")
        _until(keyboard, lambda c: c.ee_delta_pos[0] > 0 and c.ee_delta_pos[2] > 0)
        start = obs["ee_pos"].copy()
        for _ in range(10):
            action, events = source.next_action(obs)
            np.testing.assert_allclose(action, [0.2, 0.0, 0.2, 1.0])
            assert events == frozenset()
            obs, *_ = env.step(action)
        moved = obs["ee_pos"] - start
        assert moved[0] > 0.05 and moved[2] > 0.05 and abs(moved[1]) < 0.02
    finally:
        env.close()
