"""Strict mapping → dataclass config loading, shared by every ``from_dict``.

::

    cfg = config_from_dict(ResNet18Config, json.loads(text))   # unknown keys: ConfigError

Configs are saved with ``dataclasses.asdict`` (e.g. as JSON) and read back through
:func:`config_from_dict`: a key the dataclass has no field for is a :class:`ConfigError`
naming it and the known fields (a typo must not be silently ignored); missing keys take
their defaults. Conversions (lists back to tuples, nested configs) stay in each config's
``__post_init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from robolearn.core.types import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

UNKNOWN_KEYS = "{name}: unknown keys {unknown}; known keys: {known}"
"""The default message; ``{name}``, ``{unknown}`` and ``{known}`` (sorted lists) are filled in."""


def unknown_keys(cls: type[DataclassInstance], data: Mapping[str, Any]) -> list[str]:
    """The keys of ``data`` that dataclass ``cls`` has no field for, sorted."""
    return sorted(set(data) - {f.name for f in dataclasses.fields(cls)})


def config_from_dict(
    cls: type[C],
    data: Mapping[str, Any],
    *,
    name: str | None = None,
    message: str = UNKNOWN_KEYS,
) -> C:
    """Build dataclass ``cls`` from ``data`` (e.g. ``dataclasses.asdict`` output read from JSON).

    Keys ``cls`` has no field for are a :class:`ConfigError`: ``message`` formatted with
    ``name`` (default: the class name), the ``unknown`` keys and the ``known`` field names,
    both sorted. Missing keys take their defaults; the values go to ``cls`` as they are.
    """
    unknown = unknown_keys(cls, data)
    if unknown:
        known = sorted(f.name for f in dataclasses.fields(cls))
        raise ConfigError(message.format(name=name or cls.__name__, unknown=unknown, known=known))
    return cls(**data)
