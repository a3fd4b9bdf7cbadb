"""The episode runner: loop + safety + async inference on the simulated Panda, and deploy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _runner_policies import ExpertThenFail, ExpertThenStall, NaNPolicy

from robolearn import envs
from robolearn.cli.main import main
from robolearn.control.inference import AsyncInference, PolicyWorkerError, obs_spec_of
from robolearn.control.runner import EpisodeRunner, RunConfig, check_action_shape
from robolearn.control.safety import SafetyConfig, SafetyLayer
from robolearn.core.types import ConfigError
from robolearn.envs.experts import expert_for_task

HZ = 50.0
H = 4


@pytest.fixture
def lift() -> Iterator[Any]:
    env = envs.make("robolearn/FrankaLift-v0", control_hz=HZ, max_ee_step_m=0.02)
    env.reset(seed=0)
    yield env.unwrapped
    env.close()


def _runner(env: Any, factory: Callable[[], Any], backend: str, ticks: int) -> EpisodeRunner:
    obs = env.observe()
    inference = AsyncInference(factory, obs_spec_of(obs), (H, 4), backend=backend)  # type: ignore[arg-type]
    inference.start()
    safety = SafetyLayer(env.driver.spec, SafetyConfig(watchdog_timeout_s=0.1), 1.0 / HZ)
    return EpisodeRunner(env, inference, safety, RunConfig(hz=HZ, max_ticks=ticks))


def _expert() -> Any:
    return expert_for_task("FrankaLift", max_ee_step_m=0.02, chunk_horizon=H)


def _inside_limits(env: Any, sent: list[dict]) -> bool:
    spec = env.driver.spec
    q = np.array([s["joint_position"] for s in sent if "joint_position" in s]).reshape(-1, 7)
    return bool(np.all(q >= spec.limits("lower")) and np.all(q <= spec.limits("upper")))


@pytest.mark.parametrize("backend", ["sync", "thread", "process"])
def test_episode_succeeds_through_the_loop(lift: Any, backend: str, tmp_path: Path) -> None:
    runner = _runner(lift, _expert, backend, ticks=200)
    try:
        episode = runner.run_episode()
    finally:
        runner.inference.close()
    assert episode.success and episode.error is None
    assert len(episode.ticks) == 200 and episode.ticks == list(range(200))
    assert _inside_limits(lift, episode.sent)
    assert episode.timing["ticks"] == 200
    episode.save(tmp_path / "ep")
    steps = np.load(tmp_path / "ep" / "steps.npz")
    assert steps["sent_joint_position"].shape == (200, 7)


def test_fast_sim_advances_one_period_per_tick(lift: Any) -> None:
    runner = _runner(lift, _expert, "sync", ticks=20)
    try:
        episode = runner.run_episode()
    finally:
        runner.inference.close()
    np.testing.assert_allclose(np.diff(episode.time_s), 1.0 / HZ, atol=1e-9)


def test_worker_exception_holds_the_robot_and_surfaces(lift: Any) -> None:
    runner = _runner(lift, partial(ExpertThenFail, 5), "process", ticks=200)
    try:
        with pytest.raises(PolicyWorkerError, match="exploded"):
            runner.run_episode()
        q_before = lift.driver.read_proprio().q
        lift.driver.wait(0.5)  # the held robot does not move on its own
        q_after = lift.driver.read_proprio().q
    finally:
        runner.inference.close()
    assert runner.safety.estop.is_set()
    assert "exploded" in (runner.last_log.error or "")
    assert 0 < len(runner.last_log.ticks) < 200  # the ticks before the failure are kept
    np.testing.assert_allclose(q_after, q_before, atol=2e-3)


def test_stalled_policy_trips_the_watchdog(lift: Any) -> None:
    # The worker stalls 1 s of wall time; the fast simulation runs far more than the 0.1 s
    # watchdog deadline (and the 4-tick chunk) in that time, so the watchdog must hold.
    runner = _runner(lift, partial(ExpertThenStall, 3, 1.0), "thread", ticks=60)
    try:
        episode = runner.run_episode()
    finally:
        runner.inference.close()
    assert runner.safety.onsets.get("watchdog_hold", 0) >= 1
    assert any("watchdog_hold" in i for i in episode.interventions)


def test_nan_policy_output_stops_and_holds(lift: Any) -> None:
    """NaN chunks are a policy failure: e-stop latched, robot held where it was."""
    runner = _runner(lift, NaNPolicy, "sync", ticks=20)
    q0 = lift.driver.read_proprio().q
    try:
        with pytest.raises(PolicyWorkerError, match="NaN"):
            runner.run_episode()
        lift.driver.wait(0.3)
    finally:
        runner.inference.close()
    assert runner.safety.estop.is_set()
    assert _inside_limits(lift, runner.last_log.sent)
    np.testing.assert_allclose(lift.driver.read_proprio().q, q0, atol=5e-3)


def test_safety_counts_are_per_episode() -> None:
    """Each episode's safety counts are its own ticks' interventions, not the layer's total
    so far (an expert stepping 2.5 m/s at 50 Hz trips the EE step limit every episode)."""
    env = envs.make("robolearn/FrankaLift-v0", control_hz=HZ, max_ee_step_m=0.05)
    env.reset(seed=0)
    fast = partial(expert_for_task, "FrankaLift", max_ee_step_m=0.05, chunk_horizon=H)
    runner = _runner(env.unwrapped, fast, "sync", ticks=60)
    try:
        episodes = []
        for seed in (0, 1):
            env.reset(seed=seed)
            episodes.append(runner.run_episode())
    finally:
        runner.inference.close()
        env.close()
    for episode in episodes:
        per_tick = {k: sum(k in i for i in episode.interventions) for k in episode.safety_counts}
        assert episode.safety_counts == per_tick
        assert episode.safety_counts["ee_step"] > 0


def test_mismatched_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="size 7"):
        check_action_shape((4,), (16, 7))


def test_rate_above_the_driver_is_refused(lift: Any) -> None:
    with pytest.raises(ConfigError, match="max"):
        _runner(lift, _expert, "sync", ticks=1).__class__(
            lift,
            None,
            None,
            RunConfig(hz=5000.0),  # type: ignore[arg-type]
        )


def test_deploy_cli_runs_and_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deploy"
    code = main(
        [
            "deploy",
            "--env",
            "robolearn/FrankaReach-v0",
            "--episodes",
            "2",
            "--seconds",
            "1.5",
            "--no-realtime",
            "--inference",
            "sync",
            "--no-keyboard-estop",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "success rate: 2/2" in text
    assert (out / "episode_001" / "steps.npz").exists() and (out / "summary.json").exists()


def test_deploy_refuses_unknown_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--policy", "/no/such/ckpt"]) == 2
    assert "checkpoints" in capsys.readouterr().err


def test_a_diverged_simulation_ends_the_episode_as_a_failure(lift: Any) -> None:
    class KickingExpert:
        """The expert, kicking the cube (a real solver blow-up) at its third chunk."""

        def __init__(self) -> None:
            self.expert, self.calls = _expert(), 0

        def reset(self) -> None:
            self.expert.reset()

        def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
            self.calls += 1
            if self.calls == 3:
                kick = np.array([1e6, 0.0, 0.0])
                lift.driver.set_object_velocity("cube", kick, np.zeros(3))
            return np.asarray(self.expert.predict_chunk(obs))

    runner = _runner(lift, KickingExpert, "sync", ticks=200)
    try:
        episode = runner.run_episode()
    finally:
        runner.inference.close()
    assert not episode.success and episode.error is not None and "diverged" in episode.error
    assert 0 < len(episode.ticks) < 200
    assert all(np.isfinite(q).all() for q in episode.q)  # nothing diverged was logged
