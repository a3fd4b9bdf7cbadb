"""The teleop contract: commands, events, the command ⇄ action mapping, the registry."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robolearn import envs
from robolearn.core.types import CommandError, ConfigError, DriverError
from robolearn.teleop import (
    ActionScale,
    KeyboardTeleop,
    ScriptedTeleop,
    TeleopActionSource,
    TeleopCommand,
    TeleopEvents,
    device_names,
    from_action,
    make_device,
    to_action,
)
from robolearn.teleop.base import EventLatch, Obs, TeleopDevice

EE = ActionScale("ee_delta", max_ee_step_m=0.05, max_ee_rot_rad=0.2)
POSE = ActionScale("ee_delta_pose", max_ee_step_m=0.05, max_ee_rot_rad=0.2)
JOINT = ActionScale("joint_position", max_gripper_width_m=0.08)


@pytest.fixture(scope="module")
def reach_env() -> Iterator[object]:
    env = envs.make("robolearn/FrankaReach-v0", control_mode="ee_delta_pose")
    env.reset(seed=0)
    yield env
    env.close()


# ------------------------------------------------------------------ events and commands
def test_events_names_merge_and_parse() -> None:
    a = TeleopEvents(save_episode=True)
    b = TeleopEvents(intervention=True)
    assert (a | b).names() == {"save_episode", "intervention"}
    assert TeleopEvents().names() == frozenset()
    assert TeleopEvents.from_names({"stop_recording"}) == TeleopEvents(stop_recording=True)
    with pytest.raises(CommandError, match="unknown teleop events"):
        TeleopEvents.from_names({"pause"})


def test_event_latch_reports_a_press_once_and_a_level_while_on() -> None:
    latch = EventLatch()
    latch.press("save_episode")
    latch.press("save_episode")
    latch.set_level("intervention", True)
    assert latch.take() == TeleopEvents(save_episode=True, intervention=True)
    assert latch.take() == TeleopEvents(intervention=True), "a press is reported once"
    assert latch.toggle_level("intervention") is False
    latch.press("stop_recording")
    latch.clear()
    assert latch.take() == TeleopEvents()
    with pytest.raises(CommandError):
        latch.press("intervention")
    with pytest.raises(CommandError):
        latch.set_level("save_episode", True)
    with pytest.raises(CommandError):
        latch.toggle_level("stop_recording")


def test_command_defaults_and_validation() -> None:
    cmd = TeleopCommand()
    assert cmd.gripper == 1.0 and cmd.produces == "ee_delta"
    np.testing.assert_array_equal(cmd.ee_delta_pos, np.zeros(3))
    assert TeleopCommand(joint_targets=np.array([0.1, 0.2])).produces == "joint"
    with pytest.raises(CommandError, match="shape"):
        TeleopCommand(ee_delta_pos=np.zeros(2))
    with pytest.raises(CommandError, match="NaN"):
        TeleopCommand(ee_delta_rot=np.array([0.0, np.nan, 0.0]))
    with pytest.raises(CommandError, match="NaN"):
        TeleopCommand(joint_targets=np.array([np.inf]))
    with pytest.raises(CommandError, match="opening fraction"):
        TeleopCommand(gripper=1.5)


# ------------------------------------------------------------------ command → action
def test_to_action_ee_delta_scales_and_maps_the_gripper_and_drops_rotation() -> None:
    cmd = TeleopCommand(np.array([0.01, -0.025, 0.0]), np.array([0.1, 0.0, 0.0]), gripper=0.0)
    np.testing.assert_allclose(to_action(cmd, EE), [0.2, -0.5, 0.0, -1.0])
    assert to_action(cmd, EE).dtype == np.float32
    np.testing.assert_allclose(to_action(cmd, POSE), [0.2, -0.5, 0.0, 0.5, 0.0, 0.0, -1.0])


def test_to_action_clips_each_entry_to_the_action_space() -> None:
    cmd = TeleopCommand(np.array([0.5, -0.5, 0.01]), np.array([-1.0, 0.0, 0.0]), gripper=1.0)
    np.testing.assert_allclose(to_action(cmd, POSE), [1.0, -1.0, 0.2, -1.0, 0.0, 0.0, 1.0])


def test_to_action_joint_position_appends_the_gripper_width() -> None:
    cmd = TeleopCommand(joint_targets=np.arange(7.0) * 0.1, gripper=0.5)
    np.testing.assert_allclose(to_action(cmd, JOINT), [*np.arange(7) * 0.1, 0.04], rtol=1e-6)


def test_to_action_refuses_a_command_of_the_wrong_kind() -> None:
    with pytest.raises(CommandError, match="needs joint targets"):
        to_action(TeleopCommand(), JOINT)
    with pytest.raises(CommandError, match="needs end-effector deltas"):
        to_action(TeleopCommand(joint_targets=np.zeros(7)), EE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"control_mode": "joint_torque"},
        {"control_mode": "ee_delta", "max_ee_step_m": 0.0},
        {"control_mode": "ee_delta", "max_gripper_width_m": -1.0},
    ],
)
def test_bad_action_scales_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ActionScale(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    mode=st.sampled_from([EE, POSE]),
    values=st.lists(st.floats(-1, 1, allow_nan=False), min_size=7, max_size=7),
)
def test_from_action_then_to_action_is_the_identity_in_the_space(
    mode: ActionScale, values: list[float]
) -> None:
    action = np.array(values[: 4 if mode is EE else 7], np.float32)
    back = to_action(from_action(action, mode), mode)
    np.testing.assert_allclose(back, action, atol=1e-6)


def test_from_action_joint_and_bad_actions() -> None:
    cmd = from_action(np.array([*np.zeros(7), 0.08]), JOINT)
    assert cmd.produces == "joint" and cmd.gripper == pytest.approx(1.0)
    with pytest.raises(CommandError, match="cannot have 7 entries"):
        from_action(np.zeros(7), EE)
    with pytest.raises(CommandError, match="NaN"):
        from_action(np.array([0.0, np.nan, 0.0, 1.0]), EE)


def test_to_action_agrees_with_the_env(reach_env: object) -> None:
    """The env's own action → command mapping recovers the teleop command exactly."""
    env = reach_env
    scale = ActionScale.of_env(env)
    assert scale == POSE
    cmd = TeleopCommand(np.array([0.01, -0.02, 0.005]), np.array([0.0, 0.05, -0.1]), gripper=0.25)
    driver_cmd = env.unwrapped.action_to_command(to_action(cmd, scale))  # type: ignore[attr-defined]
    np.testing.assert_allclose(driver_cmd.ee_delta_pos, cmd.ee_delta_pos, atol=1e-8)
    np.testing.assert_allclose(driver_cmd.ee_delta_rot, cmd.ee_delta_rot, atol=1e-8)
    assert driver_cmd.gripper_width == pytest.approx(0.25 * 0.08)


# ------------------------------------------------------------------ devices and registry
class _Constant(TeleopDevice):
    """The smallest device: the same command each read, counting opens and closes."""

    name = "constant"

    def __init__(self, cmd: TeleopCommand) -> None:
        super().__init__()
        self.cmd, self.opened, self.closed = cmd, 0, 0

    def _open(self) -> None:
        self.opened += 1

    def _close(self) -> None:
        self.closed += 1

    def _read(self, obs: Obs | None) -> TeleopCommand:
        return TeleopCommand(self.cmd.ee_delta_pos, gripper=self.gripper, events=self.events.take())


def test_device_lifecycle_is_idempotent_and_read_needs_a_connection() -> None:
    device = _Constant(TeleopCommand())
    with pytest.raises(DriverError, match="not connected"):
        device.read()
    with device:
        device.connect()
        assert device.connected and device.opened == 1
        device.read()
    device.disconnect()
    assert not device.connected and device.closed == 1


def test_reset_opens_the_gripper_and_forgets_events() -> None:
    device = _Constant(TeleopCommand())
    assert device.toggle_gripper() == 0.0
    device.events.press("save_episode")
    device.reset(seed=3)
    with device:
        cmd = device.read()
    assert cmd.gripper == 1.0 and cmd.events == TeleopEvents()


def test_action_source_gives_the_recorder_actions_and_event_names() -> None:
    device = _Constant(TeleopCommand(np.array([0.025, 0.0, 0.0])))
    source = TeleopActionSource(device, EE)
    with device:
        device.events.press("rerecord_episode")
        action, events = source.next_action({})
        assert events == {"rerecord_episode"}
        np.testing.assert_allclose(action, [0.5, 0.0, 0.0, 1.0])
        assert source.last_command is not None
        source.reset(0)
        assert source.next_action({})[1] == frozenset()


def test_registry_makes_every_device_by_name(reach_env: object) -> None:
    assert device_names() == [
        "aloha_leaders",
        "gamepad",
        "keyboard",
        "leader_arm",
        "scripted",
        "spacemouse",
    ]
    keyboard = make_device("keyboard", step_m=0.02)
    assert isinstance(keyboard, KeyboardTeleop) and not keyboard.connected
    assert keyboard.step_m == 0.02
    assert isinstance(make_device("scripted", env=reach_env), ScriptedTeleop)
    for name in ("gamepad", "spacemouse"):
        assert make_device(name).name == name  # made, not opened: no hardware touched


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("joystick", {}, "known: aloha_leaders, gamepad, keyboard, leader_arm, scripted"),
        ("keyboard", {"speed": 2}, "bad arguments"),
        ("scripted", {}, "env="),
        ("keyboard", {"step_m": 0.0}, "step_m"),
    ],
)
def test_registry_errors_say_what_is_wrong(
    name: str, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        make_device(name, **kwargs)
