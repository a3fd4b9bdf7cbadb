"""``robolearn deploy``: run a policy on a robot through the rate loop, the safety layer and
asynchronous chunked inference; log what was sent and print a timing/intervention summary."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from robolearn.cli.common import (
    ControlModeName,
    ObsModeName,
    Subcommand,
    env_overrides,
    format_table,
)
from robolearn.control.inference import PolicyWorkerError
from robolearn.core.paths import require_folder, require_positive
from robolearn.core.types import ConfigError, RobolearnError
from robolearn.drivers.panda import BACKENDS

SIM_ROBOT = "mujoco_panda"
SIM_RATE_HZ = 20.0  # rate the tasks' time limits and EE step sizes are defined at
SCRIPTED_ENV = "robolearn/FrankaLift-v0"


@dataclass
class DeployConfig:
    """Run episodes of a policy on a robot in real time (loop + safety + async inference)."""

    robot: str = SIM_ROBOT
    """mujoco_panda (the simulated task, in the simulator --backend names), or a robot from
    robolearn.drivers.registry: franka, franka-sim, a Dynamixel arm (koch-follower, viperx-300s,
    ...) or virtual:<arm>."""
    robot_option: list[str] = field(default_factory=list)
    """Robot options as KEY=VALUE, e.g. host=172.16.0.2 or port=/dev/ttyUSB0."""
    camera: list[str] = field(default_factory=list)
    """--robot only: cameras as NAME=realsense[:SERIAL][@HxW] or NAME=opencv:SOURCE[@HxW]
    (observations <NAME>_rgb, and <NAME>_depth for a RealSense)."""
    env: str | None = None
    """Env id (robolearn/<Task>-v<k>): default robolearn/FrankaLift-v0 for the scripted
    expert, and the env its training data was recorded in for a policy."""
    task: str | None = None
    """Task description stored with the deploy dataset's episodes; default "deploy POLICY"."""
    policy: str = "scripted"
    """"scripted" (the task's expert), or a policy folder (robolearn train's checkpoints);
    a policy runs in the env its training data was recorded in."""
    hz: float | None = None
    """Control rate; default 50 Hz for the scripted expert, the training data's rate for a
    policy. Refused if above what the driver supports."""
    episodes: int = 3
    """Number of episodes."""
    seconds: float | None = None
    """Episode length; none uses the task's time limit."""
    seed: int = 0
    """Episode k resets the task with seed + k."""
    realtime: bool = True
    """Pace the simulation to the wall clock (a real arm always runs in real time)."""
    backend: str | None = None
    """Simulator of the simulated task: mujoco or pybullet; default: the one the policy's data
    was recorded in (mujoco for the scripted expert)."""
    inference: Literal["process", "thread", "sync"] = "process"
    """Where the policy runs: its own process (default), a thread, or inline (sync)."""
    smoothing: Literal["latest", "ensemble", "blend"] = "latest"
    """How chunks are executed: newest chunk, ACT temporal ensembling, or crossfade."""
    chunk_horizon: int = 4
    """Scripted policy only: ticks each expert action is held for (zero-order-hold chunk)."""
    control_mode: ControlModeName | None = None
    """Action space: default ee_delta for the scripted expert, the policy's for a policy."""
    obs_mode: ObsModeName | None = None
    """Observation mode of the env; default: the one the policy's data was recorded in."""
    image_size: list[int] | None = None
    """Camera image HEIGHT WIDTH; default: the policy's."""
    watchdog_timeout_s: float = 0.2
    """Hold the robot when no fresh action arrives for this long."""
    keyboard_estop: bool = True
    """Space or Esc in the terminal latches the e-stop (only when stdin is a terminal)."""
    overwrite: bool = False
    """Replace the logs of an earlier deploy in ``out`` (without it, an earlier run there is
    an error: nothing already logged is lost)."""
    out: Path = Path("out/deploy")
    """Folder for per-episode logs (steps.npz, summary.json), the run summary, and
    dataset/: every episode as a LeRobot v3 dataset (states, commands sent, policy actions,
    latency, interventions)."""

    def __post_init__(self) -> None:
        _check_sim_backend(self.backend, self.robot)
        if self.robot != SIM_ROBOT and self.policy == "scripted":
            raise ConfigError(
                f"--robot {self.robot}: scripted experts exist only for the simulated tasks; "
                "pass --policy FOLDER (a policy trained on this robot's data)"
            )
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be at least 1, got {self.episodes}")
        require_positive("--hz", self.hz)
        require_positive("--seconds", self.seconds)
        require_positive("--watchdog-timeout-s", self.watchdog_timeout_s)
        require_folder(self.out)


DEPLOY_LOGS = ("summary.json", "dataset", "episode_*")
"""What a deploy writes into ``--out`` (and ``--overwrite`` removes)."""


def prepare_out(cfg: DeployConfig) -> None:
    """Refuse an ``--out`` holding an earlier deploy unless ``--overwrite``; then remove the
    earlier deploy's logs (only those) so no stale episode folder stays."""
    earlier = [p for pattern in DEPLOY_LOGS for p in sorted(cfg.out.glob(pattern))]
    if not earlier:
        return
    if not cfg.overwrite:
        raise ConfigError(
            f"{cfg.out} holds an earlier deploy ({earlier[0].name}, ...); pass --overwrite to "
            "replace it, or choose another --out"
        )
    for path in earlier:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def run(cfg: DeployConfig) -> int:
    """Run the episodes; print per-episode lines and a summary table."""
    prepare_out(cfg)
    if cfg.robot != SIM_ROBOT:
        return _on_robot(cfg)
    env, factory = _scripted(cfg) if cfg.policy == "scripted" else _checkpoint(cfg)
    return _deploy(cfg, env, factory)


def _on_robot(cfg: DeployConfig) -> int:
    """Deploy a saved policy on a driver from :mod:`robolearn.drivers.registry`."""
    from robolearn.drivers.registry import open_cameras, open_robot
    from robolearn.envs.robot_env import RobotEnv
    from robolearn.policies.base import check_policy_spec, read_policy_config
    from robolearn.policies.env_io import env_observation_shapes, load_env_policy

    config = read_policy_config(cfg.policy)[1]
    hz = cfg.hz or float(config.env.get("kwargs", {}).get("control_hz", 50.0))
    with open_robot(cfg.robot, parse_options(cfg.robot_option)) as driver:
        env = RobotEnv(
            driver,
            cameras=open_cameras(cfg.camera),
            control_hz=hz,
            episode_seconds=cfg.seconds or 10.0,
        )
        check_policy_spec(config, env_observation_shapes(env), int(env.action_space.shape[0]))
        return _deploy(cfg, env, partial(load_env_policy, cfg.policy))


def parse_options(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; ConfigError naming any item without ``=``."""
    pairs = [item.partition("=") for item in items]
    bad = [item for item, (_, sep, _) in zip(items, pairs, strict=True) if not sep]
    if bad:
        raise ConfigError(f"--robot-option takes KEY=VALUE, got {bad}")
    return {key: value for key, _, value in pairs}


def _deploy(cfg: DeployConfig, env: Any, factory: Any) -> int:
    u = env.unwrapped
    seconds = cfg.seconds or getattr(u, "episode_seconds", u.task.max_episode_steps / SIM_RATE_HZ)
    rows: list[dict] = []
    try:
        _run_episodes(cfg, env, factory, round(seconds * u.control_hz), rows)
    except PolicyWorkerError as exc:
        _report(cfg, rows)
        raise DeployError(
            f"the policy failed in episode {len(rows) - 1}: {rows[-1]['error']}; the "
            f"robot was held; logs and summary in {cfg.out}"
        ) from exc
    finally:
        env.close()
    _report(cfg, rows)
    return 0


def _check_sim_backend(backend: str | None, robot: str) -> None:
    """ConfigError for a --backend that is not a simulator, or one given with a real robot."""
    if backend is None:
        return
    if backend in ("process", "thread", "sync"):
        raise ConfigError(
            f"--backend chooses the simulator (mujoco, pybullet); where the policy runs is "
            f"--inference {backend}"
        )
    if backend not in BACKENDS:
        raise ConfigError(f"unknown --backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if robot != SIM_ROBOT:
        raise ConfigError(f"--backend chooses a simulator; --robot {robot} is a real robot")


class DeployError(RobolearnError):
    """A deploy stopped early (the policy failed); its logs are written."""


def _scripted(cfg: DeployConfig) -> tuple[Any, Any]:
    from robolearn import envs
    from robolearn.envs.experts import expert_for_task

    hz = cfg.hz or 50.0
    control_mode = cfg.control_mode or "ee_delta"
    env = envs.make(
        cfg.env or SCRIPTED_ENV,
        **env_overrides(cfg.obs_mode, cfg.image_size, None, cfg.backend),
        control_hz=hz,
        max_ee_step_m=0.05 * SIM_RATE_HZ / hz,  # same EE speed as at 20 Hz
        control_mode=control_mode,
        realtime=cfg.realtime,
    )
    u: Any = env.unwrapped
    factory = partial(
        expert_for_task,
        u.task.name,
        control_mode,
        u.max_ee_step_m,
        u.max_ee_rot_rad,
        cfg.chunk_horizon,
    )
    return env, factory


def _checkpoint(cfg: DeployConfig) -> tuple[Any, Any]:
    """The env a policy folder was trained for, and a worker factory that loads it."""
    from robolearn import envs
    from robolearn.evaluate import env_for_policy
    from robolearn.policies.base import check_policy_spec, read_policy_config
    from robolearn.policies.env_io import env_observation_shapes, load_env_policy

    overrides = env_overrides(cfg.obs_mode, cfg.image_size, cfg.control_mode, cfg.backend)
    env_id, kwargs = env_for_policy(cfg.policy, cfg.env, overrides)
    recorded_hz = float(kwargs.get("control_hz", SIM_RATE_HZ))
    if cfg.hz is not None and cfg.hz != recorded_hz:  # keep the trained EE speed per second
        kwargs["max_ee_step_m"] = kwargs.get("max_ee_step_m", 0.05) * recorded_hz / cfg.hz
        kwargs["control_hz"] = cfg.hz
    env = envs.make(env_id, **{**kwargs, "realtime": cfg.realtime})
    config = read_policy_config(cfg.policy)[1]
    check_policy_spec(
        config,
        env_observation_shapes(env),
        int(env.action_space.shape[0]),  # type: ignore[index]
    )
    return env, partial(load_env_policy, cfg.policy)


def _run_episodes(
    cfg: DeployConfig, env: Any, factory: Any, max_ticks: int, rows: list[dict]
) -> None:
    """Run the episodes, appending each one's summary row to ``rows`` (also the failed one)."""
    from robolearn.control.inference import AsyncInference, obs_spec_of
    from robolearn.control.keyboard import KeyboardEStop
    from robolearn.control.runner import EpisodeRunner, RunConfig, check_action_shape
    from robolearn.control.safety import SafetyConfig, SafetyLayer

    u = env.unwrapped
    obs, _ = env.reset(seed=cfg.seed)
    chunk_shape = _chunk_shape(cfg, factory, obs)
    check_action_shape(env.action_space.shape, chunk_shape)
    safety = SafetyLayer(
        u.driver.spec,
        SafetyConfig(watchdog_timeout_s=cfg.watchdog_timeout_s),
        1.0 / u.control_hz,
        ee_position_fn=(lambda q: u.driver.ik().forward(q)[0]) if hasattr(u.driver, "ik") else None,
    )
    run_cfg = RunConfig(hz=u.control_hz, max_ticks=max_ticks, smoothing=cfg.smoothing)
    task = cfg.task or f"deploy {cfg.policy}"
    dataset_log = _DatasetLog(cfg.out / "dataset", u.control_hz, u.driver.spec.name, task)
    with (
        dataset_log,
        AsyncInference(factory, obs_spec_of(obs), chunk_shape, backend=cfg.inference) as inf,
    ):
        keys = KeyboardEStop(safety.estop) if cfg.keyboard_estop else None
        if keys is not None:
            keys.start()
        try:
            runner = EpisodeRunner(u, inf, safety, run_cfg)
            for k in range(cfg.episodes):
                if k:
                    env.reset(seed=cfg.seed + k)
                _one_episode(cfg, runner, k, dataset_log, rows)
        finally:
            if keys is not None:
                keys.stop()


class _DatasetLog:
    """Deploy episodes appended to a LeRobot v3 dataset (created at the first episode)."""

    def __init__(self, root: Path, fps: float, robot_type: str, task: str) -> None:
        self.root, self.fps, self.robot_type, self.task = root, fps, robot_type, task
        self.writer: Any = None

    def write(self, episode: Any, seed: int) -> None:
        from robolearn.data import DatasetWriter

        if not episode.ticks:
            return
        if self.writer is None:
            self.writer = DatasetWriter(
                self.root, self.fps, episode.dataset_features(), self.robot_type, mode="overwrite"
            )
        self.writer.start_episode(self.task, seed=seed)
        for frame in episode.dataset_frames():
            self.writer.add_frame(frame)
        self.writer.save_episode()

    def __enter__(self) -> _DatasetLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


def _chunk_shape(cfg: DeployConfig, factory: Any, obs: Any) -> tuple[int, int]:
    """The chunk shape the policy produces (one trial chunk for a saved policy)."""
    policy = factory()
    policy.reset()
    rows, width = policy.predict_chunk(obs).shape
    return int(rows), int(width)


def _one_episode(cfg: DeployConfig, runner: Any, k: int, log: Any, rows: list[dict]) -> None:
    """Run, save and print episode ``k``; its row goes to ``rows`` even when the policy fails
    (the ticks before the failure are logged too)."""
    try:
        episode = runner.run_episode()
    except PolicyWorkerError:
        rows.append(_save_episode(cfg, runner.last_log, k, log))
        raise
    row = _save_episode(cfg, episode, k, log)
    rows.append(row)
    timing, outcome = row["timing"], "success" if row["success"] else "failure"
    p99 = _fmt(timing.get("period_error_ms", {}), "p99")
    print(
        f"episode {k} ({k + 1} of {cfg.episodes})  {outcome}  ticks {row['ticks']}  "
        f"period error p99 {p99} ms  overruns {timing.get('overruns', 0)}  "
        f"interventions {sum(row['safety_counts'].values())}",
        flush=True,
    )


def _save_episode(cfg: DeployConfig, episode: Any, k: int, log: Any) -> dict:
    """Save ``episode``'s log folder and dataset episode; its summary row."""
    episode.save(cfg.out / f"episode_{k:03d}")
    log.write(episode, cfg.seed + k)
    return {"episode": k, "seed": cfg.seed + k, **episode.summary()}


def _fmt(block: Any, key: str) -> str:
    value = block.get(key) if isinstance(block, dict) else None
    return "-" if value is None else f"{value:.3f}"


def _report(cfg: DeployConfig, rows: list[dict]) -> None:
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    table = [
        [
            r["episode"],
            "yes" if r["success"] else "no",
            _fmt(r["timing"].get("period_error_ms", {}), "p50"),
            _fmt(r["timing"].get("period_error_ms", {}), "p99"),
            _fmt(r["timing"].get("period_error_ms", {}), "max"),
            r["timing"].get("overruns", 0),
            r["ticks_without_action"],
            "-" if r["latency_ms_p50"] is None else f"{r['latency_ms_p50']:.1f}",
            ", ".join(f"{k}={v}" for k, v in r["safety_counts"].items() if v) or "none",
        ]
        for r in rows
    ]
    headers = [
        "ep",
        "success",
        "err p50 ms",
        "p99 ms",
        "max ms",
        "overruns",
        "no-action ticks",
        "obs→cmd ms",
        "interventions",
    ]
    print(format_table(headers, table))
    successes = sum(r["success"] for r in rows)
    print(f"success rate: {successes}/{len(rows)}; logs in {cfg.out}")


COMMAND = Subcommand(
    name="deploy",
    help="run a policy on a robot through the real-time loop, safety layer and async inference",
    config=DeployConfig,
    run=run,
)
