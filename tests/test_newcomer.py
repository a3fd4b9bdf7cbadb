"""The newcomer path through the CLI: what a new user runs first, and the bad inputs they hit.

Each bad input must end in one line on stderr (no traceback) and leave what was recorded or
trained intact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robolearn.cli.main import main

ENV = "robolearn/FrankaReach-v0"


def _record(out: Path, *args: str, env: str = ENV, episodes: int = 2) -> int:
    argv = ["record", "--env", env, "--episodes", str(episodes), "--out", str(out)]
    return main([*argv, "--cameras", *args])


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
    [(("--env", "robolearn/FrankaPush-v0"), "FrankaPush-v0"), (("--hz", "10"), "control_hz")],
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
    argv = ["record", "--episodes", "1", "--out", str(reach_data), "--cameras", "--resume"]
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
