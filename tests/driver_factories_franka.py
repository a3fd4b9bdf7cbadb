"""Driver-contract registry entries for the Franka driver on franky-sim (see ``conftest.py``)."""

from __future__ import annotations

from typing import Any

FACTORIES: list[Any] = []
"""``pytest.param(factory, id=...)`` entries appended to ``conftest.DRIVER_FACTORIES``."""
