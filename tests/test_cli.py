"""The ``robolearn`` command line, run in-process on the real registered tasks."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from robolearn.cli.common import format_table
from robolearn.cli.demo_cmd import file_stems
from robolearn.cli.main import main


@pytest.fixture(scope="module")
def env_id() -> str:
    """A registered task, FrankaReach if there is one."""
    from robolearn import envs

    ids = envs.registered_ids()
    assert ids, "no tasks registered"
    return "robolearn/FrankaReach-v0" if "robolearn/FrankaReach-v0" in ids else ids[0]


def test_help_and_usage_errors_return_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "rollout" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["rollout", "--episodes", "x", "--env", "a"]) == 2


def test_unknown_policy_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "--env", "robolearn/Any-v0", "--policy", "bc"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "robolearn: error: --policy 'bc' is neither \"scripted\" nor a policy folder "
        "(a folder with config.json + model.safetensors, from robolearn train)\n"
    )
    assert captured.out == ""


def test_unknown_env_is_one_line_error(capsys: pytest.CaptureFixture[str], env_id: str) -> None:
    assert main(["rollout", "--env", "robolearn/NoSuchTask-v0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robolearn: error: ") and err.count("\n") == 1
    assert env_id in err  # the message lists the valid ids


def test_envs_lists_every_task(capsys: pytest.CaptureFixture[str], env_id: str) -> None:
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["id", "observation"]
    assert any(line.startswith(env_id + " ") for line in lines[2:])
    assert main(["envs", "--ids"]) == 0
    assert env_id in capsys.readouterr().out.split()


def test_rollout_writes_video_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env_id: str
) -> None:
    video, summary = tmp_path / "r.mp4", tmp_path / "r.json"
    argv = ["rollout", "--env", env_id, "--episodes", "2", "--seed", "5", "--max-steps", "4"]
    assert main([*argv, "--video", str(video), "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "seed 5" in out and "seed 6" in out
    assert "success rate: " in out
    data = json.loads(summary.read_text())
    assert set(data) == {
        "env",
        "episodes",
        "successes",
        "success_rate",
        "mean_episode_length",
        "seconds",
    }
    assert (data["env"], data["episodes"]) == (env_id, 2)
    with av.open(str(video)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 2 + round(2 * data["mean_episode_length"])  # reset frame + one per step


def test_demo_writes_combined_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env_id: str
) -> None:
    argv = ["demo", "--out", str(tmp_path), "--episodes", "1", "--no-video", "--envs", env_id]
    assert main(argv) == 0
    stem = file_stems([env_id])[env_id]
    assert (tmp_path / f"{stem}.json").is_file()
    combined = json.loads((tmp_path / "summary.json").read_text())
    assert [t["env"] for t in combined["tasks"]] == [env_id]
    assert env_id in capsys.readouterr().out


def test_file_stems_drop_the_version_unless_names_clash() -> None:
    assert file_stems(["robolearn/FrankaReach-v0"]) == {"robolearn/FrankaReach-v0": "FrankaReach"}
    ids = ["robolearn/A-v0", "robolearn/A-v1"]
    assert file_stems(ids) == {ids[0]: "A-v0", ids[1]: "A-v1"}


def test_format_table_aligns_columns() -> None:
    table = format_table(["a", "bb"], [["xxx", 1], ["y", 22]])
    assert table.splitlines() == ["a    bb", "---  --", "xxx  1", "y    22"]
