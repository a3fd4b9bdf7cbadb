"""The README's Python examples run as written (from its "From Python" section)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from robolearn.cli.main import main

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
