"""``robolearn record``: record demonstrations into a LeRobot v3 dataset through the loop."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robolearn.cli.common import SimBackendName, Subcommand
from robolearn.core.paths import require_folder, require_positive
from robolearn.core.types import ConfigError

TASK_TEXT = {
    "FrankaReach": "move the gripper to the green target",
    "FrankaPush": "push the red cube to the green target",
    "FrankaLift": "pick up the red cube",
    "FrankaPickPlace": "put the red cube at the green target",
}


@dataclass
class RecordConfig:
    """Record demonstrations (teleop device or scripted expert) into a LeRobot v3 dataset."""

    out: Path
    """Dataset folder (LeRobotDataset v3.0 layout)."""
    env: str = "robolearn/FrankaLift-v0"
    """Task to record in."""
    robot: str | None = None
    """Record on a robot from robolearn.drivers.registry instead of the simulated task: franka,
    franka-sim, a Dynamixel arm (koch-follower, viperx-300s, ...), aloha or virtual:<arm>."""
    robot_option: list[str] = field(default_factory=list)
    """Robot options as KEY=VALUE, e.g. host=172.16.0.2 or port=/dev/ttyUSB0."""
    teleop: Literal[
        "scripted", "keyboard", "spacemouse", "gamepad", "leader_arm", "aloha_leaders"
    ] = "scripted"
    """Where actions come from (leader_arm: a Dynamixel leader mirrored onto the robot;
    aloha_leaders: ALOHA's two leaders mirrored onto --robot aloha)."""
    teleop_option: list[str] = field(default_factory=list)
    """Device options as KEY=VALUE, e.g. leader=koch-leader port=/dev/ttyUSB1, or
    left_port=... right_port=... calibration_dir=... for aloha_leaders."""
    control_mode: Literal["joint_position", "ee_delta"] | None = None
    """--robot only: the action space recorded (joint targets, the default, or EE deltas if
    the driver has them)."""
    seconds: float | None = None
    """--robot only: episode length (default 20 s)."""
    camera: list[str] = field(default_factory=list)
    """--robot only: cameras as NAME=realsense[:SERIAL][@HxW] or NAME=opencv:SOURCE[@HxW]
    (observations <NAME>_rgb, and <NAME>_depth for a RealSense)."""
    episodes: int = 10
    """Episodes to save."""
    task: str | None = None
    """Task description stored with every episode; none uses the task's own."""
    resume: bool = False
    """Append to an existing dataset."""
    overwrite: bool = False
    """Delete an existing dataset first."""
    hz: float = 20.0
    """Control (and recording) rate."""
    seed: int = 0
    """Episode k is reset with seed + k (re-recorded attempts take the next seed)."""
    cameras: list[str] = field(
        default_factory=lambda: ["front", "wrist"], metadata={"none_flag": True}
    )
    """Cameras to record as video; --no-cameras for a state-only dataset."""
    image_size: list[int] = field(default_factory=lambda: [96, 96])
    """Camera image height and width."""
    depth: bool = False
    """Also record metric depth (stored losslessly)."""
    codec: str = "libx264"
    """Video codec (PyAV encoder name), e.g. libx264 or libsvtav1."""
    realtime: bool | None = None
    """Pace to the wall clock; default: yes for human devices, no for the scripted expert."""
    success_hold_ticks: int = 10
    """End an episode this many ticks after the task is first solved."""
    backend: SimBackendName | None = None
    """Simulator of the task: mujoco (default) or pybullet; stored with the dataset's env."""
    randomize: str | None = None
    """Domain randomization of the simulated scene, drawn anew for each episode from its seed:
    a preset (dynamics, visual, full) or a JSON file; masses, friction, damping, servo gains,
    object sizes, cameras, lights and colours (action latency and observation noise are for
    eval and training envs, not for the recorded demonstrations)."""

    def __post_init__(self) -> None:
        if self.robot is not None and self.teleop == "scripted":
            raise ConfigError(
                f"--robot {self.robot}: scripted experts exist only for the simulated tasks; "
                "choose a device with --teleop (leader_arm, aloha_leaders, spacemouse, gamepad, "
                "keyboard)"
            )
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pick one")
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be at least 1, got {self.episodes}")
        require_positive("--hz", self.hz)
        require_folder(self.out)
        if self.robot is None:
            _reject_robot_only(self)
        elif self.randomize is not None:
            raise ConfigError(f"--randomize varies a simulation; --robot {self.robot} is real")
        elif self.backend is not None:
            raise ConfigError(
                f"--backend chooses a simulator; --robot {self.robot} records a real robot"
            )
        if len(self.image_size) != 2:
            raise ConfigError(f"--image-size takes HEIGHT WIDTH, got {self.image_size}")


def _reject_robot_only(cfg: RecordConfig) -> None:
    """ConfigError for options that only a --robot recording reads."""
    given = {
        "--control-mode": cfg.control_mode is not None,
        "--seconds": cfg.seconds is not None,
        "--camera": bool(cfg.camera),
    }

    names = [flag for flag, on in given.items() if on]
    if names:
        raise ConfigError(
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} for --robot; a simulated "
            "task uses its own action space, time limit and --cameras NAME ..."
        )


def run(cfg: RecordConfig) -> int:
    """Record; print what was saved."""
    if cfg.robot is not None:
        return _on_robot(cfg)
    from robolearn import envs

    realtime = cfg.teleop != "scripted" if cfg.realtime is None else cfg.realtime
    env_meta = (cfg.env, _env_kwargs(cfg, realtime=False))
    _check_resumed_env(cfg, *env_meta)
    env = envs.make(cfg.env, **_env_kwargs(cfg, realtime))
    reset = None if cfg.randomize is None else _randomized_reset(env, cfg.randomize)
    robot_type = f"franka_panda_{cfg.backend or 'mujoco'}"
    return _record(cfg, env, robot_type, realtime, env_meta, reset)


def _randomized_reset(env: Any, randomize: str) -> Callable[[int], Any]:
    """Episode starts under domain randomization: the wrapper's reset draws the scene."""
    from robolearn.envs.randomization import DomainRandomization, DomainRandomizationConfig

    randomized = DomainRandomization(env, DomainRandomizationConfig.load(randomize))

    def reset(seed: int) -> Any:
        return randomized.reset(seed=seed)

    return reset


def _on_robot(cfg: RecordConfig) -> int:
    """Record on a driver from :mod:`robolearn.drivers.registry` (always paced by the wall
    clock)."""
    from robolearn.cli.deploy_cmd import parse_options
    from robolearn.drivers.registry import open_cameras, open_robot
    from robolearn.envs.robot_env import RobotEnv

    assert cfg.robot is not None
    control_mode = cfg.control_mode or "joint_position"
    kwargs = {"control_hz": cfg.hz, "control_mode": control_mode}
    env_meta = (f"robot:{cfg.robot}", kwargs)
    _check_resumed_env(cfg, *env_meta)
    with open_robot(cfg.robot, parse_options(cfg.robot_option)) as driver:
        env = RobotEnv(
            driver,
            cameras=open_cameras(cfg.camera),
            control_mode=control_mode,
            control_hz=cfg.hz,
            episode_seconds=cfg.seconds if cfg.seconds is not None else 20.0,
        )
        return _record(cfg, env, driver.spec.name, True, env_meta)


RECORD_FLAGS = {
    "control_hz": "--hz",
    "obs_mode": "cameras on/off",
    "cameras": "--cameras",
    "image_size": "--image-size",
    "depth": "--depth",
    "control_mode": "--control-mode",
}
"""Env options of a recording → the record options that set them (for messages)."""


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _check_resumed_env(cfg: RecordConfig, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """ConfigError when ``--resume`` would add episodes of another env to the dataset."""
    from robolearn.data.meta import env_metadata, read_env_metadata

    if not cfg.resume:
        return
    recorded = read_env_metadata(cfg.out)
    wanted = json.loads(json.dumps(env_metadata(env_id, env_kwargs)))
    if not recorded or recorded == wanted:
        return
    differs = [
        f"{RECORD_FLAGS.get(k, k)} {_shown(recorded['kwargs'].get(k))} (now {_shown(v)})"
        for k, v in wanted["kwargs"].items()
        if recorded.get("kwargs", {}).get(k) != v and k in RECORD_FLAGS
    ] or ["other options"]
    what = f"env {recorded['id']}, not {env_id}" if recorded["id"] != env_id else ", ".join(differs)
    raise ConfigError(
        f"{cfg.out} was recorded with {what}; a dataset holds one env: resume with the same "
        "options, or record into another --out"
    )


def _record(
    cfg: RecordConfig,
    env: Any,
    robot_type: str,
    realtime: bool,
    env_meta: tuple[str, dict[str, Any]],
    reset: Callable[[int], Any] | None = None,
) -> int:
    from robolearn.control.recorder import RecordConfig as SessionConfig
    from robolearn.control.recorder import Recorder, dataset_features
    from robolearn.data import DatasetWriter, WriteMode
    from robolearn.data.meta import write_env_metadata

    u: Any = env.unwrapped
    try:
        mode: WriteMode = "resume" if cfg.resume else "overwrite" if cfg.overwrite else "create"
        writer = DatasetWriter(
            cfg.out,
            cfg.hz,
            dataset_features(u),
            robot_type,
            mode=mode,
            video_codec=cfg.codec,
        )
        write_env_metadata(cfg.out, *env_meta)
        max_ticks = u.task.max_episode_steps
        if cfg.robot is None:  # the tasks' time limits are defined at 20 Hz
            max_ticks = int(max_ticks * cfg.hz / 20.0)
        session = SessionConfig(
            episodes=cfg.episodes,
            task=cfg.task or (_task_text(cfg.env) if cfg.robot is None else "teleoperation"),
            seed=cfg.seed + writer.num_episodes,
            hz=cfg.hz,
            max_ticks=max_ticks,
            success_hold_ticks=cfg.success_hold_ticks,
            realtime=realtime,
        )
        with writer, _source(cfg, env) as source:
            result = Recorder(u, source, writer, session, reset=reset).run()
    finally:
        env.close()
    print(f"saved {len(result.saved)} episode(s) to {cfg.out} (discarded {result.discarded})")
    if result.save_block_s:
        print(f"save_episode blocked at most {max(result.save_block_s):.3f} s")
    return 0


def _env_kwargs(cfg: RecordConfig, realtime: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "control_hz": cfg.hz,
        "max_ee_step_m": 0.05 * 20.0 / cfg.hz,
        "realtime": realtime,
    }
    if cfg.backend not in (None, "mujoco"):  # MuJoCo datasets say nothing, as before
        kwargs["backend"] = cfg.backend
    if cfg.cameras:
        kwargs.update(
            obs_mode="image",
            cameras=tuple(cfg.cameras),
            image_size=tuple(cfg.image_size),
            depth=cfg.depth,
        )
    return kwargs


def _task_text(env_id: str) -> str:
    name = env_id.split("/")[-1].split("-")[0]
    return TASK_TEXT.get(name, name)


@contextlib.contextmanager
def _source(cfg: RecordConfig, env: Any) -> Iterator[Any]:
    from robolearn import envs
    from robolearn.control.recorder import ScriptedSource

    if cfg.teleop == "scripted":
        yield ScriptedSource(envs.make_expert(env))
        return
    from robolearn.cli.deploy_cmd import parse_options
    from robolearn.teleop.actions import TeleopActionSource
    from robolearn.teleop.registry import make_device

    options: dict[str, Any] = dict(parse_options(cfg.teleop_option))
    if cfg.teleop in ("leader_arm", "aloha_leaders"):
        options.setdefault("follower_spec", env.unwrapped.driver.spec)
    with make_device(cfg.teleop, **options) as device:
        yield TeleopActionSource.for_env(device, env.unwrapped)


COMMAND = Subcommand(
    name="record",
    help="record demonstrations (teleop or scripted) into a LeRobot v3 dataset",
    config=RecordConfig,
    run=run,
)
