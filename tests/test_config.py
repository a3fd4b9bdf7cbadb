"""robolearn.cli.config: dataclass fields → argparse options and back."""

from __future__ import annotations

import argparse
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from robolearn.cli.config import add_dataclass_arguments, arg, option_flag, parse, parse_into
from robolearn.core.types import ConfigError


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Everything:
    """A config with one field of every supported kind."""

    env_id: str = arg(help="env id")
    episodes: int = arg(10, "episodes to run")
    learning_rate: float = arg(3e-4, "step size, 100% safe in help")
    out_dir: Path = arg(Path("out"), "output folder")
    render: bool = arg(True, "render frames")
    verbose: bool = arg(False, "more output")
    max_steps: int | None = arg(None, "step cap")
    name: str | None = arg(None, "run name")
    obs_mode: Literal["state", "image"] = arg("state", "observations")
    color: Color = arg(Color.RED, "a color")
    maybe_color: Color | None = arg(None, "a color or none")
    image_size: tuple[int, int] = arg((96, 128), "H W")
    cameras: tuple[str, ...] = arg(("front",), "camera names")
    seeds: list[int] = arg([1, 2], "seeds")
    documented: float = 0.5
    """Help from an attribute docstring."""


def _parser(cls: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prog")
    add_dataclass_arguments(parser, cls)
    return parser


def test_defaults_come_from_the_dataclass() -> None:
    cfg = parse(Everything, ["--env-id", "a"])
    assert cfg == Everything(env_id="a")
    assert cfg.seeds == [1, 2]
    assert cfg.seeds is not parse(Everything, ["--env-id", "b"]).seeds  # no shared list


def test_every_kind_parses() -> None:
    argv = [
        "--env-id", "robolearn/X-v0",
        "--episodes", "3",
        "--learning-rate", "0.1",
        "--out-dir", "runs/a",
        "--no-render",
        "--verbose",
        "--max-steps", "7",
        "--name", "run1",
        "--obs-mode", "image",
        "--color", "green",
        "--maybe-color", "red",
        "--image-size", "64", "48",
        "--cameras", "wrist", "front",
        "--seeds",
        "--documented", "2",
    ]  # fmt: skip
    cfg = parse(Everything, argv)
    assert cfg == Everything(
        env_id="robolearn/X-v0",
        episodes=3,
        learning_rate=0.1,
        out_dir=Path("runs/a"),
        render=False,
        verbose=True,
        max_steps=7,
        name="run1",
        obs_mode="image",
        color=Color.GREEN,
        maybe_color=Color.RED,
        image_size=(64, 48),
        cameras=("wrist", "front"),
        seeds=[],
        documented=2.0,
    )


def test_none_resets_an_optional_field() -> None:
    cfg = parse(Everything, ["--env-id", "a", "--max-steps", "none", "--maybe-color", "none"])
    assert cfg.max_steps is None
    assert cfg.maybe_color is None


def test_enum_accepts_member_names_too() -> None:
    assert parse(Everything, ["--env-id", "a", "--color", "GREEN"]).color is Color.GREEN


def test_option_flags_are_kebab_case() -> None:
    assert option_flag("control_mode") == "--control-mode"
    usage = _parser(Everything).format_usage()
    assert "--env-id" in usage and "--render | --no-render" in usage


def test_help_shows_text_and_defaults() -> None:
    text = " ".join(_parser(Everything).format_help().split())
    assert "env id (required)" in text
    assert "episodes to run (default: 10)" in text
    assert "100% safe in help" in text
    assert "render frames (default: true)" in text
    assert "H W (default: 96 128)" in text
    assert "Help from an attribute docstring. (default: 0.5)" in text
    assert "{state,image}" in text and "{red,green}" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --env-id"),
        (["--env-id", "a", "--episodes", "x"], "argument --episodes: invalid int value: 'x'"),
        (["--env-id", "a", "--obs-mode", "rgb"], "argument --obs-mode: invalid choice"),
        (["--env-id", "a", "--color", "blue"], "invalid choice 'blue' (choose from red, green)"),
        (["--env-id", "a", "--image-size", "1"], "argument --image-size: expected 2 arguments"),
    ],
)
def test_bad_values_exit_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(Everything, argv, prog="prog")
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@dataclass
class Validated:
    episodes: int = arg(1, "at least 1")

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError("episodes must be at least 1")


def test_post_init_errors_propagate() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        parse(Validated, ["--episodes", "0"])


@dataclass
class BadUnion:
    value: int | str = 0


@dataclass
class BadMapping:
    table: dict[str, int] = field(default_factory=dict)


@dataclass
class BadTuple:
    pair: tuple[int, str] = (0, "a")


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (BadUnion, r"BadUnion\.value: unions other than"),
        (BadMapping, r"BadMapping\.table: unsupported field type"),
        (BadTuple, r"BadTuple\.pair: only homogeneous"),
        (int, "is not a dataclass"),
    ],
)
def test_unsupported_types_raise_config_error(cls: type, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        add_dataclass_arguments(argparse.ArgumentParser(), cls)


@dataclass
class PlainField:
    size: int = field(default=3, metadata={"help": "written with dataclasses.field"})


def test_help_from_plain_field_metadata() -> None:
    assert "written with dataclasses.field (default: 3)" in _parser(PlainField).format_help()
    assert parse(PlainField, ["--size", "4"]).size == 4


def test_parse_into_ignores_other_namespace_entries() -> None:
    namespace = argparse.Namespace(episodes=4, command="rollout", _internal=object())
    assert parse_into(Validated, namespace) == Validated(episodes=4)


def test_subparsers_keep_their_options_apart() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_dataclass_arguments(sub.add_parser("a"), Validated)
    add_dataclass_arguments(sub.add_parser("b"), Everything)
    namespace = parser.parse_args(["a", "--episodes", "5"])
    assert parse_into(Validated, namespace) == Validated(episodes=5)
