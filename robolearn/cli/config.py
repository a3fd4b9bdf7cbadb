"""Typed dataclass configs → argparse options, with no third-party dependencies.

A config is a dataclass whose fields carry their own help text::

    @dataclass
    class RolloutConfig:
        env: str = arg(help="registered env id")      # required: --env ENV
        episodes: int = arg(10, "episodes to run")     # --episodes N
        render: bool = arg(True, "render frames")      # --render / --no-render
        video: Path | None = None                      # --video PATH
        # ...or, as in robolearn.core.types, a docstring line under a field is its help

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, RolloutConfig)
    cfg = parse_into(RolloutConfig, parser.parse_args())

Supported field types: ``str``, ``int``, ``float``, ``bool`` (``--flag/--no-flag``),
``pathlib.Path``, ``enum.Enum`` subclasses (choices by value), ``Literal[...]`` (choices),
``X | None`` of any of those, ``tuple[X, ...]`` / ``list[X]`` (any number of values) and
``tuple[X, X]`` (exactly that many). Field ``foo_bar`` becomes ``--foo-bar``;
``metadata={"flag": "--foo"}`` names it otherwise, and ``metadata={"repeat": True}`` lets a
list option be given several times, each adding values. Help text comes
from ``field(metadata={"help": ...})`` (what :func:`arg` writes) or else from an attribute
docstring under the field. Options the user did not pass are left out of the namespace, so
the dataclass applies its own defaults and ``__post_init__`` checks.

ruff's RUF009 cannot see that :func:`arg` returns a ``dataclasses.field`` and flags it when
the field type is not one ruff knows to be immutable (``Path``, enums, lists); list
``robolearn.cli.config.arg`` under ``[tool.ruff.lint.flake8-bugbear] extend-immutable-calls``,
or write such fields with a plain default and an attribute docstring.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import itertools
import pathlib
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, overload

from robolearn.core.types import ConfigError

T = TypeVar("T")
C = TypeVar("C")

_SCALARS: tuple[type, ...] = (str, int, float, pathlib.Path)
"""Types whose constructor parses one command-line string."""

_TYPE_METAVARS: dict[Callable[[str], Any], str] = {int: "N", float: "NUM", pathlib.Path: "PATH"}
"""Default metavar by type; other fields show their name in capitals."""


@overload
def arg(*, help: str, metavar: str | None = None) -> Any: ...
@overload
def arg(default: T, help: str, *, metavar: str | None = None) -> T: ...
def arg(default: Any = dataclasses.MISSING, help: str = "", *, metavar: str | None = None) -> Any:
    """A dataclass field with command-line help; without ``default`` the option is required.

    A ``list`` default is copied for each instance (``default_factory``), so it is safe.
    """
    metadata: dict[str, Any] = {"help": help}
    if metavar is not None:
        metadata["metavar"] = metavar
    if isinstance(default, list):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """How one dataclass field maps onto one command-line option."""

    name: str
    """Field name, also the argparse ``dest``."""
    flag: str
    """Option string, e.g. ``--control-mode``."""
    convert: Callable[[str], Any] | None
    """Parses one string (``None`` for boolean flags)."""
    choices: tuple[Any, ...] | None
    """Allowed values after conversion, if restricted."""
    nargs: int | str | None
    """argparse ``nargs`` for sequence fields, else ``None``."""
    container: type | None
    """``tuple`` or ``list`` for sequence fields, else ``None``."""
    is_bool: bool
    optional: bool
    """Whether the annotation admits ``None``; for a single value, ``none`` then means ``None``."""
    required: bool
    default: Any
    """The field's default (called from ``default_factory`` if needed), for the help text."""
    help: str
    metavar: str | None
    none_flag: bool = False
    """A list field with ``metadata={"none_flag": True}``: ``--no-<name>`` gives the empty list,
    and the option itself needs at least one value (a bare ``--cameras`` means nothing)."""
    repeat: bool = False
    """A list field with ``metadata={"repeat": True}``: the option may be given again, each
    time adding values (``--dataset A --dataset B``), instead of the last one winning."""


def option_flag(name: str) -> str:
    """The option string of a field: ``control_mode`` → ``--control-mode``."""
    return "--" + name.replace("_", "-")


def option_specs(cls: type) -> list[OptionSpec]:
    """One :class:`OptionSpec` per init field of the dataclass ``cls``.

    Raises ConfigError if ``cls`` is not a dataclass or a field type is not supported.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{cls!r} is not a dataclass type")
    hints = _type_hints(cls)
    docs = attribute_docs(cls)
    return [
        _option_spec(cls, f, hints[f.name], docs.get(f.name, ""))
        for f in dataclasses.fields(cls)
        if f.init
    ]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of the dataclass ``cls`` to ``parser``."""
    for spec in option_specs(cls):
        _add_option(parser, spec)


def parse_into(cls: type[C], namespace: argparse.Namespace) -> C:
    """Build ``cls`` from the options in ``namespace``; absent ones keep the field defaults.

    Errors the dataclass raises in ``__post_init__`` propagate unchanged.
    """
    values: dict[str, Any] = {}
    for spec in option_specs(cls):
        if hasattr(namespace, spec.name):
            value = getattr(namespace, spec.name)
            values[spec.name] = _finish(spec, value)
    return cls(**values)


def parse(cls: type[C], argv: Sequence[str] | None = None, prog: str | None = None) -> C:
    """Parse ``argv`` (``sys.argv[1:]`` when ``None``) into ``cls`` with a fresh parser."""
    parser = argparse.ArgumentParser(prog=prog, description=inspect.getdoc(cls))
    add_dataclass_arguments(parser, cls)
    return parse_into(cls, parser.parse_args(argv))


def attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (base classes first); empty if no source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object:
            docs.update(_own_attribute_docs(klass))
    return docs


def _own_attribute_docs(klass: type) -> dict[str, str]:
    """Attribute docstrings of the class body of ``klass`` alone."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body
    if not body or not isinstance(body[0], ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    stmts = body[0].body
    for stmt, nxt in itertools.pairwise(stmts):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of ``cls``; ConfigError naming the class if they cannot resolve."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError) as exc:
        raise ConfigError(f"cannot resolve the field types of {cls.__name__}: {exc}") from exc


def _option_spec(cls: type, f: dataclasses.Field[Any], hint: Any, doc: str) -> OptionSpec:
    """Map one field to an option; ConfigError if its type is not supported."""
    try:
        inner, optional = _strip_optional(hint)
        convert, choices, nargs, container = _parse_kind(inner)
    except ConfigError as exc:
        raise ConfigError(f"{cls.__name__}.{f.name}: {exc}") from None
    is_bool = inner is bool
    if is_bool and optional:
        optional = False  # --flag / --no-flag set True/False; None is the default only
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    default = _field_default(f)
    return OptionSpec(
        name=f.name,
        flag=str(f.metadata.get("flag", option_flag(f.name))),
        convert=None if is_bool else convert,
        choices=choices,
        nargs=nargs,
        container=container,
        is_bool=is_bool,
        optional=optional,
        required=required,
        default=default,
        help=str(f.metadata.get("help", "")) or doc,
        metavar=f.metadata.get("metavar"),
        none_flag=bool(f.metadata.get("none_flag", False)),
        repeat=bool(f.metadata.get("repeat", False)) and nargs == "*",
    )


def _field_default(f: dataclasses.Field[Any]) -> Any:
    """The default value of a field, or MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; ``X`` → ``(X, False)``; ConfigError for other unions."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint, False
    members = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(members) != 1:
        raise ConfigError(f"unions other than `X | None` are not supported: {hint}")
    return members[0], True


def _parse_kind(
    hint: Any,
) -> tuple[Callable[[str], Any], tuple[Any, ...] | None, int | str | None, type | None]:
    """``(convert, choices, nargs, container)`` for a non-optional annotation."""
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        return _parse_sequence(hint, origin)
    convert, choices = _parse_scalar(hint)
    return convert, choices, None, None


def _parse_sequence(
    hint: Any, origin: type
) -> tuple[Callable[[str], Any], tuple[Any, ...] | None, int | str | None, type | None]:
    """``tuple[X, ...]``, ``list[X]`` → any count; ``tuple[X, X]`` → exactly two."""
    args = typing.get_args(hint)
    nargs: int | str
    if origin is list or (len(args) == 2 and args[1] is Ellipsis):
        item, nargs = args[0], "*"
    elif args and all(a == args[0] for a in args):
        item, nargs = args[0], len(args)
    else:
        raise ConfigError(f"only homogeneous tuples/lists are supported, got {hint}")
    if item is bool or typing.get_origin(item) in (tuple, list):
        raise ConfigError(f"sequences of {item} are not supported")
    convert, choices = _parse_scalar(item)
    return convert, choices, nargs, origin


def _parse_scalar(hint: Any) -> tuple[Callable[[str], Any], tuple[Any, ...] | None]:
    """``(convert, choices)`` for str/int/float/bool/Path, an Enum or a Literal."""
    if hint is bool:
        return bool, None  # never called: bool fields become --flag/--no-flag
    if hint in _SCALARS:
        return hint, None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_converter(hint), tuple(hint)
    if typing.get_origin(hint) is Literal:
        return _literal_kind(typing.get_args(hint))
    raise ConfigError(f"unsupported field type {hint!r}")


def _literal_kind(values: tuple[Any, ...]) -> tuple[Callable[[str], Any], tuple[Any, ...]]:
    """Converter and choices for ``Literal[values]``; all values must share one scalar type."""
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or next(iter(kinds)) not in (str, int, float):
        raise ConfigError(f"Literal values must all be str, int or float, got {values!r}")
    return next(iter(kinds)), values


def _enum_converter(cls: type[enum.Enum]) -> Callable[[str], Any]:
    """Parse an enum member from its value (or, failing that, its name)."""

    def convert(text: str) -> enum.Enum:
        for member in cls:
            if text in (str(member.value), member.name):
                return member
        allowed = ", ".join(str(m.value) for m in cls)
        raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {allowed})")

    return convert


def _help_text(spec: OptionSpec) -> str:
    """The help line with the default (or "required") appended."""
    suffix = "(required)" if spec.required else f"(default: {_show(spec.default)})"
    text = f"{spec.help} {suffix}" if spec.help else suffix
    return text.replace("%", "%%")  # argparse %-formats help strings


def _show(value: Any) -> str:
    """A default as it would be typed on the command line."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return " ".join(_show(v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value)


def _metavar(spec: OptionSpec) -> str | None:
    """Metavar for the option; choices are shown as ``{a,b}``."""
    if spec.metavar is not None:
        return spec.metavar
    if spec.choices is not None:
        return "{" + ",".join(_show(c) for c in spec.choices) + "}"
    if spec.convert is not None and spec.convert in _TYPE_METAVARS:
        return _TYPE_METAVARS[spec.convert]
    return spec.name.upper()


def _add_option(parser: argparse.ArgumentParser, spec: OptionSpec) -> None:
    """Add the argparse option for one field."""
    common: dict[str, Any] = {
        "dest": spec.name,
        "default": argparse.SUPPRESS,
        "help": _help_text(spec),
        "required": spec.required,
    }
    if spec.is_bool:
        no_flag = "--no-" + spec.flag[2:]
        parser.add_argument(spec.flag, no_flag, action=_BoolFlag, **common)
        return
    assert spec.convert is not None
    emptiable = spec.nargs == "*" and spec.none_flag
    if spec.repeat:
        common["action"] = "extend"
    parser.add_argument(
        spec.flag,
        type=_none_aware(spec.convert) if spec.optional and spec.nargs is None else spec.convert,
        choices=_choices_with_none(spec),
        nargs="+" if emptiable or spec.repeat else spec.nargs,
        metavar=_metavar(spec),
        **common,
    )
    if emptiable:  # a bare --cameras is an error; --no-cameras asks for none
        parser.add_argument(
            "--no-" + spec.flag[2:],
            dest=spec.name,
            action="store_const",
            const=[],
            default=argparse.SUPPRESS,
            help=f"none (instead of {_show(spec.default)})",
        )


def _choices_with_none(spec: OptionSpec) -> tuple[Any, ...] | None:
    """Choices, with ``None`` allowed when the field is optional."""
    if spec.choices is None:
        return None
    return (*spec.choices, None) if spec.optional else spec.choices


def _none_aware(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap ``convert`` so that the string ``none`` parses to ``None``."""

    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse_or_none.__name__ = getattr(convert, "__name__", "value")
    return parse_or_none


def _finish(spec: OptionSpec, value: Any) -> Any:
    """Turn argparse's list for a sequence field into the field's container type."""
    if spec.container is not None and isinstance(value, list):
        return spec.container(value)
    return value


class _BoolFlag(argparse.Action):
    """``--flag`` stores True, ``--no-flag`` stores False."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))

    def format_usage(self) -> str:
        """Usage shows ``--flag | --no-flag``."""
        return " | ".join(self.option_strings)
