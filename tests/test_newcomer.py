"""The newcomer path through the CLI: what a new user runs first, and the bad inputs they hit.

Each bad input must end in one line on stderr (no traceback) and leave what was recorded or
trained intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from robolearn.cli.deploy_cmd import DeployConfig
from robolearn.cli.main import main
from robolearn.evaluate import EvalResult
from robolearn.train.config import PRESETS, PresetName, TrainConfig, resolve_preset

ENV = "robolearn/FrankaReach-v0"


def _record(out: Path, *args: str, env: str = ENV, episodes: int = 2) -> int:
    argv = ["record", "--env", env, "--episodes", str(episodes), "--out", str(out)]
    return main([*argv, "--no-cameras", *args])


@pytest.fixture(scope="module")
def reach_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("newcomer") / "reach"
    assert _record(out, episodes=3) == 0
    return out


def _env_file(root: Path) -> dict:
    return json.loads((root / "meta" / "robolearn_env.json").read_text())


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_split_and_merge_keep_the_env(reach_data: Path, tmp_path: Path) -> None:
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "m"
    argv = ["dataset", "split", str(reach_data), "--out", str(a), "--out2", str(b)]
    assert main([*argv, "--fraction", "0.5"]) == 0
    assert _env_file(a) == _env_file(b) == _env_file(reach_data)
    assert main(["dataset", "merge", str(a), str(b), "--out", str(merged)]) == 0
    assert _env_file(merged) == _env_file(reach_data)


def test_merge_refuses_datasets_of_different_envs(
    reach_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "push"
    assert _record(other, env="robolearn/FrankaPush-v0", episodes=1) == 0
    capsys.readouterr()
    out = tmp_path / "m"
    assert main(["dataset", "merge", str(reach_data), str(other), "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert "FrankaPush-v0" in line and "one env" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [(("--env", "robolearn/FrankaPush-v0"), "FrankaPush-v0"), (("--hz", "10"), "--hz 20 (now 10)")],
)
def test_resume_with_another_env_is_refused(
    reach_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    before = (reach_data / "meta" / "robolearn_env.json").read_text()
    info_before = (reach_data / "meta" / "info.json").read_text()
    capsys.readouterr()
    argv = ["record", "--episodes", "1", "--out", str(reach_data), "--no-cameras", "--resume"]
    env_args = [] if "--env" in args else ["--env", ENV]
    assert main([*argv, *env_args, *args]) == 2
    line = _one_line_error(capsys)
    assert said in line and "one env" in line
    assert (reach_data / "meta" / "robolearn_env.json").read_text() == before
    assert (reach_data / "meta" / "info.json").read_text() == info_before


def test_resume_with_the_same_env_appends(tmp_path: Path) -> None:
    out = tmp_path / "reach"
    assert _record(out, episodes=1) == 0
    assert _record(out, "--resume", episodes=1) == 0
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2


def _train_config(*argv: str) -> TrainConfig:
    from robolearn.cli.config import parse_into
    from robolearn.cli.main import build_parser

    namespace = build_parser().parse_args(["train", "--dataset", "d", *argv])
    return resolve_preset(parse_into(TrainConfig, namespace))


def test_an_option_given_wins_over_the_preset_even_at_its_default() -> None:
    cfg = _train_config("--preset", "cpu-state-diffusion", "--lr", "0.0001")
    assert cfg.lr == 1e-4 and cfg.warmup_steps == 200
    cfg = _train_config("--preset", "cpu-state-diffusion", "--warmup-steps", "500")
    assert cfg.warmup_steps == 500 and cfg.lr == 1e-3
    assert _train_config("--lr", "0.0001").lr == 1e-4
    code = TrainConfig(dataset=Path("d"), preset="cpu-state-diffusion", lr=1e-4)
    assert resolve_preset(code).lr == 1e-4  # in code too


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_chooses_its_policy(preset: str) -> None:
    assert _train_config("--preset", preset).policy == PRESETS[preset]["policy_type"]


def test_a_preset_for_another_policy_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--dataset", "d", "--preset", "cpu-state-act", "--policy", "diffusion"]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "cpu-state-act is for the act policy" in line and "cpu-state-diffusion" in line


def test_train_help_lists_presets_and_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(get_args(PresetName)) + "}" in text
    assert set(get_args(PresetName)) == set(PRESETS)
    assert "robolearn.policies.available_policies()" in text


def test_rl_passes_a_given_learning_rate_even_at_the_default() -> None:
    from robolearn.rl.algos import sb3_kwargs

    given = TrainConfig(algo="sac", env="robolearn/FrankaReach-v0", lr=1e-4, batch_size=64)
    assert sb3_kwargs(given, "sac", 50)["learning_rate"] == 1e-4
    assert sb3_kwargs(given, "sac", 50)["batch_size"] == 64
    plain = TrainConfig(algo="sac", env="robolearn/FrankaReach-v0")
    assert "learning_rate" not in sb3_kwargs(plain, "sac", 50)


def test_preset_bc_trains_a_bc_policy(reach_data: Path, tmp_path: Path) -> None:
    from robolearn.policies.base import read_policy_config

    out = tmp_path / "run"
    argv = ["train", "--dataset", str(reach_data), "--out", str(out), "--steps", "2"]
    assert main([*argv, "--preset", "cpu-state-bc", "--batch-size", "8", "--no-progress"]) == 0
    name, _ = read_policy_config(out / "checkpoints" / "last")
    assert name == "bc"


@pytest.fixture(scope="module")
def camera_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("newcomer") / "reach_cams"
    argv = ["record", "--env", ENV, "--episodes", "2", "--out", str(out)]
    assert main([*argv, "--cameras", "front", "--image-size", "32", "32"]) == 0
    return out


@pytest.fixture(scope="module")
def camera_policy(camera_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("newcomer") / "run"
    argv = ["train", "--dataset", str(camera_data), "--out", str(out), "--policy", "bc"]
    assert main([*argv, "--steps", "2", "--batch-size", "8", "--no-progress"]) == 0
    return out / "checkpoints" / "last"


def test_a_camera_policy_reads_what_a_robot_has(camera_policy: Path) -> None:
    from robolearn.policies.base import read_policy_config

    inputs = set(read_policy_config(camera_policy)[1].input_features)
    assert "observation.images.front" in inputs and "observation.state" in inputs
    assert "observation.environment_state" not in inputs


def test_record_train_eval_deploy_with_cameras(camera_policy: Path, tmp_path: Path) -> None:
    run = ["--episodes", "1", "--out"]
    evaluate = ["eval", "--policy", str(camera_policy), "--workers", "1", "--videos", "0"]
    assert main([*evaluate, *run, str(tmp_path / "e")]) == 0
    deploy = ["deploy", "--policy", str(camera_policy), "--inference", "sync", "--seconds", "0.5"]
    argv = [*deploy, "--no-realtime", "--no-keyboard-estop", *run, str(tmp_path / "d")]
    assert main(argv) == 0


def test_privileged_keys_on_a_camera_env_are_refused_at_train_start(
    camera_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    keys = ["observation.state", "observation.environment_state", "observation.images.front"]
    argv = ["train", "--dataset", str(camera_data), "--out", str(out), "--obs-keys", *keys]
    assert main([*argv, "--policy", "bc", "--steps", "2"]) == 2
    line = _one_line_error(capsys)
    assert "observation.environment_state" in line and "observation mode image" in line
    assert not out.exists()


def test_eval_builds_the_env_the_checkpoint_needs_or_says_why_not(
    camera_policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--policy", str(camera_policy), "--episodes", "1", "--workers", "1"]
    assert main([*argv, "--image-size", "48", "48", "--out", str(tmp_path / "e")]) == 2
    line = _one_line_error(capsys)
    assert "observation.images.front is (48, 48, 3), policy needs (3, 32, 32)" in line


@pytest.fixture(scope="module")
def state_run(reach_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("newcomer") / "state_run"
    argv = ["train", "--dataset", str(reach_data), "--out", str(out), "--policy", "bc"]
    assert main([*argv, "--steps", "4", "--save-every", "2", "--batch-size", "8"]) == 0
    return out


def _copy_policy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _bad_inputs(data: Path, run: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Command lines a newcomer gets wrong → a phrase the one-line error must hold."""
    last = run / "checkpoints" / "last"
    empty = _copy_policy(last, tmp / "empty")
    (empty / "model.safetensors").write_bytes(b"")
    cut = _copy_policy(last, tmp / "cut")
    weights = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    a_file = tmp / "a_file"
    a_file.write_text("x")
    evaluate = ["eval", "--episodes", "1", "--workers", "1", "--out", str(tmp / "e")]
    deploy = [
        "deploy",
        "--episodes",
        "1",
        "--seconds",
        "0.2",
        "--no-realtime",
        "--inference",
        "sync",
    ]
    deploy += ["--no-keyboard-estop"]
    train = ["train", "--dataset", str(data), "--steps", "2", "--batch-size", "8"]
    return {
        "eval empty weights": ([*evaluate, "--policy", str(empty)], "model.safetensors"),
        "eval truncated weights": ([*evaluate, "--policy", str(cut)], "model.safetensors"),
        "rollout truncated weights": (
            ["rollout", "--env", ENV, "--policy", str(cut), "--episodes", "1"],
            "model.safetensors",
        ),
        "deploy truncated weights": (
            [*deploy, "--policy", str(cut), "--out", str(tmp / "d")],
            "model.safetensors",
        ),
        "train out is a file": ([*train, "--out", str(a_file)], "is a file"),
        "eval out is a file": (
            [*evaluate[:-2], "--out", str(a_file), "--policy", str(last)],
            "is a file",
        ),
        "deploy out is a file": (
            [*deploy, "--policy", str(last), "--out", str(a_file)],
            "is a file",
        ),
        "rollout video not mp4": (
            ["rollout", "--env", ENV, "--episodes", "1", "--video", str(tmp / "r.avi")],
            ".mp4",
        ),
        "view out not mp4": (["view", str(data), "--out", str(tmp / "v.gif")], ".mp4"),
        "view out is a dir": (["view", str(data), "--out", str(tmp)], ".mp4"),
        "record hz 0": (["record", "--out", str(tmp / "rec"), "--hz", "0"], "--hz"),
        "deploy hz 0": ([*deploy, "--hz", "0", "--out", str(tmp / "d0")], "--hz"),
        "deploy seconds 0": (
            ["deploy", "--seconds", "0", "--out", str(tmp / "d1")],
            "--seconds",
        ),
        "deploy seconds -1": (
            ["deploy", "--seconds", "-1", "--out", str(tmp / "d2")],
            "--seconds",
        ),
        "eval videos -1": ([*evaluate, "--policy", str(last), "--videos", "-1"], "--videos"),
        "train save-every 0": (
            [*train, "--out", str(tmp / "t0"), "--save-every", "0"],
            "--save-every",
        ),
        "train negative lr": ([*train, "--out", str(tmp / "t1"), "--lr", "-0.1"], "--lr"),
        "replay episode out of range": (["replay", str(data), "--episode", "99"], "episode 99"),
        "view episode out of range": (
            ["view", str(data), "--episode", "-1", "--out", str(tmp / "v.mp4")],
            "episode -1",
        ),
        "robomimic file missing": (
            ["dataset", "--import-robomimic", str(tmp / "nope.hdf5"), "--out", str(tmp / "rm")],
            "nope.hdf5",
        ),
        "eval cuda without cuda": ([*evaluate, "--policy", str(last), "--device", "cuda"], "CUDA"),
        "eval unknown device": ([*evaluate, "--policy", str(last), "--device", "tpu"], "device"),
        "record control mode without robot": (
            ["record", "--out", str(tmp / "rc"), "--control-mode", "ee_delta"],
            "--control-mode",
        ),
        "record seconds without robot": (
            ["record", "--out", str(tmp / "rs"), "--seconds", "3"],
            "--seconds",
        ),
        "record camera without robot": (
            ["record", "--out", str(tmp / "rk"), "--camera", "front=opencv:0"],
            "--camera",
        ),
    }


BAD_INPUTS = [
    "eval empty weights",
    "eval truncated weights",
    "rollout truncated weights",
    "deploy truncated weights",
    "train out is a file",
    "eval out is a file",
    "deploy out is a file",
    "rollout video not mp4",
    "view out not mp4",
    "view out is a dir",
    "record hz 0",
    "deploy hz 0",
    "deploy seconds 0",
    "deploy seconds -1",
    "eval videos -1",
    "train save-every 0",
    "train negative lr",
    "replay episode out of range",
    "view episode out of range",
    "robomimic file missing",
    "eval cuda without cuda",
    "eval unknown device",
    "record control mode without robot",
    "record seconds without robot",
    "record camera without robot",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_ends_in_one_line(
    case: str,
    reach_data: Path,
    state_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    if case == "eval cuda without cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv, said = _bad_inputs(reach_data, state_run, tmp_path)[case]
    capsys.readouterr()
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert line.startswith("robolearn: error:") and said in line, line


@pytest.mark.parametrize("damage", ["junk training state", "truncated weights"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(
    state_run: Path,
    reach_data: Path,
    tmp_path: Path,
    damage: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(state_run, run)
    last = run / "checkpoints" / "last"
    if damage == "junk training state":
        (last / "training_state.json").write_text("{not json")
    else:
        weights = (last / "model.safetensors").read_bytes()
        (last / "model.safetensors").write_bytes(weights[:100])
    capsys.readouterr()
    argv = ["train", "--dataset", str(reach_data), "--out", str(run), "--resume"]
    assert main([*argv, "--steps", "6", "--batch-size", "8", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "continuing from" in err and "000004" in err
    state = json.loads((run / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["step"] == 6


def _eval_result(successes: list[bool], returns: list[float]) -> EvalResult:
    from robolearn.evaluate import EpisodeResult

    rows = [
        EpisodeResult(k, k, ok, 20 + k if ok else None, 100, ret, 0.1)
        for k, (ok, ret) in enumerate(zip(successes, returns, strict=True))
    ]
    return EvalResult("robolearn/FrankaReach-v0", "p", rows, 1.0)


def _is_integer_ticks(axis: object) -> bool:
    ticks = axis.get_majorticklocs()  # type: ignore[attr-defined]
    return all(float(t).is_integer() for t in ticks)


def test_report_plots_when_nothing_succeeded_and_returns_are_equal() -> None:
    import matplotlib.pyplot as plt

    from robolearn.evaluate import plots_figure

    fig = plots_figure(_eval_result([False] * 5, [-3.0] * 5))
    rate, first, returns = fig.axes
    assert not first.patches  # no "first success step" bar without a success
    assert any("no episode succeeded" in t.get_text() for t in first.texts)
    low, high = returns.get_xlim()
    assert low < -3.0 < high and high - low >= 1.0
    assert returns.xaxis.get_major_formatter().get_offset() == ""
    assert _is_integer_ticks(rate.xaxis)
    plt.close(fig)


def test_report_plots_use_integer_steps() -> None:
    import matplotlib.pyplot as plt

    from robolearn.evaluate import plots_figure

    fig = plots_figure(_eval_result([True, False, True, True], [1.0, 0.5, 2.0, 1.5]))
    _, first, _ = fig.axes
    assert first.patches and _is_integer_ticks(first.xaxis) and _is_integer_ticks(first.yaxis)
    plt.close(fig)


def _deploy_cfg(out: Path, **kw: object) -> DeployConfig:
    options = {"episodes": 2, "seconds": 1.0, "realtime": False, "inference": "sync", "env": ENV}
    return DeployConfig(out=out, keyboard_estop=False, **{**options, **kw})  # type: ignore[arg-type]


def test_deploy_with_a_failing_policy_keeps_its_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from functools import partial

    from robolearn.cli.deploy_cmd import DeployError, _deploy, _scripted
    from tests._runner_policies import ExpertThenFail

    cfg = _deploy_cfg(tmp_path / "d", env="robolearn/FrankaLift-v0")
    env, _ = _scripted(cfg)
    with pytest.raises(DeployError, match="policy exploded at call 4") as failure:
        _deploy(cfg, env, partial(ExpertThenFail, 3))
    assert "\n" not in str(failure.value)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert len(summary) == 1 and "policy exploded" in summary[0]["error"]
    assert (tmp_path / "d" / "episode_000" / "steps.npz").exists()
    assert "policy exploded" not in capsys.readouterr().err  # the cause is said once, by main


def test_deploy_into_an_earlier_deploy_needs_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    argv = ["deploy", "--env", ENV, "--seconds", "0.5", "--no-realtime", "--inference", "sync"]
    argv += ["--no-keyboard-estop", "--out", str(out)]
    assert main([*argv, "--episodes", "2"]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*argv, "--episodes", "1"]) == 2
    assert "--overwrite" in _one_line_error(capsys)
    assert (out / "episode_001").exists()
    assert main([*argv, "--episodes", "1", "--overwrite"]) == 0
    assert (out / "episode_000").exists() and not (out / "episode_001").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_features_carry_names_shown_by_stats(
    reach_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features = json.loads((reach_data / "meta" / "info.json").read_text())["features"]
    assert features["observation.state"]["names"][:2] == ["panda_joint1", "panda_joint2"]
    assert features["observation.state"]["names"][-1] == "gripper_width"
    assert features["action"]["names"] == ["dx", "dy", "dz", "gripper"]
    assert features["observation.ee_pose"]["names"][:3] == ["ee_pos.x", "ee_pos.y", "ee_pos.z"]
    env_names = features["observation.environment_state"]["names"]
    assert len(env_names) == features["observation.environment_state"]["shape"][0]
    capsys.readouterr()
    assert main(["dataset", "stats", str(reach_data)]) == 0
    table = capsys.readouterr().out
    assert "panda_joint1" in table and "gripper_width" in table and " dz " in table


def test_resume_continues_to_the_runs_own_total_steps(
    state_run: Path, reach_data: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(state_run, run)  # 4 steps, checkpoints at 2 and 4
    shutil.rmtree(run / "checkpoints" / "last")
    shutil.rmtree(run / "checkpoints" / "000004")  # as if stopped after step 2
    argv = ["train", "--dataset", str(reach_data), "--out", str(run), "--resume", "--no-progress"]
    assert main(argv) == 0
    state = json.loads((run / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["step"] == 4  # the run's --steps 4, not the default 5000
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["steps"] == 4 and saved["batch_size"] == 8


def test_settings_that_train_but_not_as_meant_are_warned(
    reach_data: Path, camera_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--steps", "2", "--batch-size", "8", "--no-progress", "--policy", "bc"]
    assert main([*argv, "--dataset", str(reach_data), "--out", str(tmp_path / "a")]) == 0
    assert "warm" in capsys.readouterr().err  # default warm-up 500 >= 2 steps
    argv = ["train", "--steps", "2", "--batch-size", "8", "--no-progress", "--warmup-steps", "0"]
    argv += ["--dataset", str(camera_data), "--out", str(tmp_path / "b")]
    assert main([*argv, "--preset", "cpu-state-bc"]) == 0
    err = capsys.readouterr().err
    assert "cpu-state-bc is sized for state inputs" in err and "warm" not in err


def test_progress_bar_into_a_pipe_does_not_redraw_every_step(
    reach_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--dataset", str(reach_data), "--out", str(tmp_path / "r"), "--policy", "bc"]
    assert main([*argv, "--steps", "300", "--batch-size", "8", "--warmup-steps", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("\r") <= 4, err.count("\r")


def test_ctrl_c_in_train_saves_the_step_reached(reach_data: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "robolearn.cli.main", "train", "--dataset", str(reach_data)]
    cmd += ["--out", str(out), "--policy", "bc", "--steps", "100000", "--batch-size", "8"]
    cmd += ["--log-every", "1", "--save-every", "100000", "--no-progress", "--warmup-steps", "0"]
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().count("\n") >= 5):
        assert child.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130
    state = json.loads((out / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["step"] >= 5
    assert f"--resume continues from step {state['step']}" in err


def test_rl_saves_before_its_first_evaluation(tmp_path: Path) -> None:
    from robolearn.rl import run_rl

    cfg = TrainConfig(
        algo="sac", env="robolearn/FrankaReach-v0", steps=64, n_envs=1, eval_every=1000,
        eval_episodes=1, out=tmp_path / "run", progress=False,
        set=['policy_kwargs={"net_arch":[16]}'],
    )  # fmt: skip
    run_rl(cfg)
    assert (tmp_path / "run" / "checkpoints" / "000000" / "model.safetensors").is_file()
