"""The README's Python examples run as written (from its "From Python" section), every
``robolearn`` command it shows parses, and those that need no hardware or person run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from robolearn.cli.main import build_parser, dataset_verbs, main, positional_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("### From Python") :]
    section = section[: section.index("\n### ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data/reach`` and ``runs/reach`` as the README's commands make them (small)."""
    root = tmp_path_factory.mktemp("readme")
    data, run = root / "data" / "reach", root / "runs" / "reach"
    record = ["record", "--env", "robolearn/FrankaReach-v0", "--episodes", "2", "--no-cameras"]
    assert main([*record, "--out", str(data)]) == 0
    train = ["train", "--dataset", str(data), "--out", str(run), "--preset", "cpu-state-bc"]
    assert main([*train, "--steps", "5", "--batch-size", "8", "--no-progress"]) == 0
    return root


def test_the_readme_has_the_three_examples() -> None:
    blocks = _python_blocks()
    assert len(blocks) == 3
    assert "DatasetReader" in blocks[0] and "load_policy" in blocks[1] and "RateLoop" in blocks[2]


@pytest.mark.parametrize("index", range(3))
def test_a_readme_example_runs(
    index: int, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workdir)
    exec(compile(_python_blocks()[index], f"README example {index + 1}", "exec"), {})
    assert capsys.readouterr().out.strip()


# ------------------------------------------------------------------- the README's commands

SHRINK = {
    "record": ["--episodes", "2"],
    "rollout": ["--episodes", "1"],
    "eval": ["--episodes", "1", "--workers", "1"],
    "deploy": ["--episodes", "1"],
    "train": ["--steps", "3", "--batch-size", "8"],
    "pretrain": ["--steps", "2", "--batch-size", "4"],
}
"""Appended to a README command (argparse keeps the last value given), so that the command runs
as written, only smaller."""
RUN_AS_WRITTEN_EXCEPT = {
    "quickstart": "make demo runs it",
    "--teleop keyboard": "needs a person at the keyboard",
    "find-ports": "lists this machine's serial ports",
    "calibrate": "needs an arm",
    "--robot koch-follower": "needs an arm",
    "--robot aloha": "needs two arms",
    "--robot franka ": "needs a Franka",
    "--policy ...": "a placeholder for the reader's policy",
}
"""README commands that are only parsed here, with the reason."""


def _readme_commands() -> list[list[str]]:
    """Every ``robolearn ...`` command in the README's bash blocks, split as a shell would."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("robolearn "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def _runs_here(argv: list[str]) -> bool:
    line = " ".join(argv) + " "
    return not any(marker in line for marker in RUN_AS_WRITTEN_EXCEPT)


def _shrunk(argv: list[str]) -> list[str]:
    if "--resume" in argv:
        return argv  # continues the run to its own (shrunk) steps
    return argv + SHRINK.get(argv[0], [])


def test_every_readme_command_parses() -> None:
    commands = _readme_commands()
    assert len(commands) > 25
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(positional_dataset(dataset_verbs(argv)))
        except SystemExit:
            pytest.fail(f"README command does not parse: robolearn {shlex.join(argv)}")


def test_the_simulated_readme_commands_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record → train (every preset, RL included) → resume → eval → deploy, on the simulated
    tasks, each README command as written but with fewer episodes and steps."""
    monkeypatch.chdir(tmp_path)
    ran = []
    for argv in filter(_runs_here, _readme_commands()):
        status = main(_shrunk(argv))
        assert status == 0, f"robolearn {shlex.join(_shrunk(argv))} exited with {status}"
        ran.append(argv[0])
    assert {"envs", "rollout", "record", "train", "eval", "deploy", "find-cameras"} <= set(ran)
