"""The keyboard e-stop, driven through a real pseudo-terminal (no mocks)."""

from __future__ import annotations

import contextlib
import logging
import os
import termios
import time
from collections.abc import Iterator

import pytest

from robolearn.control.keyboard import KeyboardEStop
from robolearn.control.safety import EStop
from robolearn.core.types import ConfigError

WAIT_S = 5.0  # generous: only a failing test waits this long


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (master, slave). Keys written to the master arrive at the slave."""
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.mark.parametrize("key", [b" ", b"\x1b"])
def test_space_or_esc_latches_the_estop(pty: tuple[int, int], key: bytes) -> None:
    master, slave = pty
    estop = EStop()
    with KeyboardEStop(estop, stream=slave) as keyboard:
        assert keyboard.active
        os.write(master, key)
        assert estop.wait(WAIT_S), "the key did not latch the e-stop"
    assert repr(key.decode()) in (estop.reason or "")
    assert not keyboard.active


def test_other_keys_do_nothing_and_keys_never_reset(pty: tuple[int, int]) -> None:
    master, slave = pty
    estop = EStop()
    with KeyboardEStop(estop, keys=("q",), stream=slave):
        os.write(master, b"abc \x1b")
        os.write(master, b"q")
        assert estop.wait(WAIT_S)
        # The reason is that of the first trigger: nothing before the 'q' triggered.
        assert estop.reason == "key 'q' pressed"
        os.write(master, b"qqq")
    assert estop.is_set(), "latched until reset() is called"
    estop.reset()
    assert not estop.is_set()


def test_terminal_is_in_cbreak_mode_while_armed_and_restored_after(
    pty: tuple[int, int],
) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    with KeyboardEStop(EStop(), stream=slave):
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON, "keys must arrive without Enter"
        assert not during[3] & termios.ECHO
        assert during[3] & termios.ISIG, "Ctrl-C still interrupts"
    assert termios.tcgetattr(slave) == before


def test_a_file_object_stream_is_accepted(pty: tuple[int, int]) -> None:
    master, slave = pty
    estop = EStop()
    with open(slave, "rb", buffering=0, closefd=False) as stream:
        keyboard = KeyboardEStop(estop, stream=stream)
        assert keyboard.start()
        assert keyboard.start(), "starting twice is harmless"
        os.write(master, b" ")
        assert estop.wait(WAIT_S)
        keyboard.stop()
        keyboard.stop()  # idempotent


def test_without_a_terminal_it_warns_and_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="robolearn.safety")
    read_end, write_end = os.pipe()
    try:
        estop = EStop()
        with KeyboardEStop(estop, stream=read_end) as keyboard:
            assert not keyboard.active
            os.write(write_end, b" ")
        assert not estop.is_set()
        assert any("not a terminal" in r.getMessage() for r in caplog.records)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_stream_without_a_descriptor_is_refused_politely(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import io

    caplog.set_level(logging.WARNING, logger="robolearn.safety")
    assert not KeyboardEStop(EStop(), stream=io.BytesIO(b" ")).start()
    assert any("no file descriptor" in r.getMessage() for r in caplog.records)


def test_the_reader_stops_when_the_terminal_goes_away(
    pty: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="robolearn.safety")
    master, slave = pty
    keyboard = KeyboardEStop(EStop(), stream=slave)
    assert keyboard.start()
    os.close(master)  # the terminal hangs up: reading the slave fails or hits end of input
    deadline = time.monotonic() + WAIT_S
    while keyboard.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not keyboard.active
    keyboard.stop()  # still restores (or gives up on) the terminal without raising


@pytest.mark.parametrize(("keys", "poll_s"), [((), 0.05), (("ab",), 0.05), ((" ",), 0.0)])
def test_bad_arguments_are_refused(keys: tuple[str, ...], poll_s: float) -> None:
    with pytest.raises(ConfigError):
        KeyboardEStop(EStop(), keys=keys, poll_s=poll_s)
